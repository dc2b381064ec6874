"""One ``train.py`` invocation: load the data once, then train every (split, seed) pair and record it.

``run(cfg)`` is what Hydra, Ray Tune and the tests call; it returns the run records it wrote.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from . import provenance
from .data import load_graph, make_split
from .errors import ConfigError
from .models import family
from .report import SCHEMA_VERSION, append_record, summarise
from .report.store import record_path
from .training import Callback, Trainer, make_logger, peak_memory_mb, seed_everything
from .validate import validate


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch sees no CUDA device; use device=cpu or device=auto")
    return torch.device(name)


def absolute(path: str | None) -> Path | None:
    """Paths in the config are relative to the project root (a Ray trial's cwd moves)."""
    if path is None:
        return None
    p = Path(path).expanduser()
    return p if p.is_absolute() else (provenance.PROJECT_ROOT / p).resolve()


def run_configs(cfg: DictConfig) -> list[DictConfig]:
    """One resolved config per (split index, seed): ``splits`` x ``seeds``."""
    seeds = list(cfg.seeds) if cfg.seeds is not None else [cfg.seed]
    splits = list(cfg.splits) if cfg.splits is not None else [None]
    configs = []
    for split_index in splits:
        for seed in seeds:
            one = copy.deepcopy(cfg)
            one.seed = seed
            if split_index is not None:
                one.split.index = split_index
            OmegaConf.resolve(one)
            configs.append(one)
    return configs


def make_record(cfg: DictConfig, outcome, split, device: torch.device) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": uuid.uuid4().hex[:12],
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "tag": cfg.tag,
        "model": cfg.model.name,
        "dataset": cfg.dataset.name,
        "split": cfg.split.name,
        "split_index": int(cfg.split.index),
        "split_sizes": split.sizes(),
        "seed": int(cfg.seed),
        "metric": cfg.dataset.metric,
        **{k: v for k, v in outcome.as_dict().items() if k != "history"},
        "peak_memory_mb": peak_memory_mb(device),
        "git": provenance.git_commit(),
        "versions": provenance.versions(),
        "machine": provenance.machine(str(device)),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "history": outcome.history,
    }


def train_one(
    cfg: DictConfig,
    data,
    graph,
    device: torch.device,
    callbacks: Sequence[Callback] = (),
    before_fit: Callable[[Trainer], object] | None = None,
    name: str | None = None,
) -> tuple[dict, Trainer]:
    """Train one resolved (split, seed) config on loaded data; its run record (not yet stored) and trainer.

    ``before_fit`` sees the trainer before training starts (a sweep trial restores its checkpoint there).
    """
    provenance.git_commit()  # cached now: the record names the code as it was when the run started
    split = make_split(data, cfg.split, cfg.dataset)
    split = type(split)(*(idx.to(device) for idx in (split.train, split.val, split.test)))
    seed_everything(cfg.seed)
    model = family(cfg.model).build(cfg.model, cfg.solver, data).to(device)
    name = name or f"{cfg.model.name} {cfg.dataset.name} {cfg.split.name}[{cfg.split.index}] seed {cfg.seed}"
    logger = make_logger(cfg.logger, name, OmegaConf.to_container(cfg, resolve=True))
    trainer = Trainer(model, data.x, graph, data.y, split, cfg.optim, cfg.train, cfg.eval, logger, name, callbacks)
    if before_fit is not None:
        before_fit(trainer)
    outcome = trainer.fit()
    record = make_record(cfg, outcome, split, device)
    logger.finish({k: record[k] for k in ("best_val", "test_at_best_val", "best_epoch", "status")})
    return record, trainer


def run(cfg: DictConfig) -> list[dict]:
    provenance.git_commit()  # cached at start, not when the first record is written
    validate(cfg)
    device = resolve_device(cfg.device)
    configs = run_configs(cfg)
    data = load_graph(cfg.dataset, cfg.split, absolute(cfg.data_root), absolute(cfg.raw_mirror)).to(device)
    model_family = family(cfg.model)
    graph = model_family.graph(data, cfg.model)
    graph = graph.to(device) if hasattr(graph, "to") else graph
    out_file = record_path(absolute(cfg.results_dir), cfg.model.name, cfg.dataset.name)
    records = []
    for number, one in enumerate(configs, 1):
        record, _ = train_one(one, data, graph, device)
        append_record(out_file, record)
        records.append(record)
        print(format_run(number, len(configs), record), flush=True)
    print(format_summary(records, out_file), flush=True)
    return records


def format_run(number: int, total: int, r: dict) -> str:
    head = f"[{number}/{total}] {r['model']} {r['dataset']} {r['split']}[{r['split_index']}] seed {r['seed']}:"
    if r["status"] != "ok":
        return f"{head} FAILED at epoch {r['failed_epoch']}: {r['error']}"
    return (
        f"{head} val {100 * r['best_val']:.2f} test {100 * r['test_at_best_val']:.2f} "
        f"(best epoch {r['best_epoch']}/{r['epochs_run']}, {r['seconds_per_epoch']:.3f} s/epoch, "
        f"NFE fwd {r['nfe_forward']:.1f} bwd {r['nfe_backward']:.1f})"
    )


def format_summary(records: list[dict], out_file: Path) -> str:
    ok = [r for r in records if r["status"] == "ok"]
    failed = len(records) - len(ok)
    test_mean, test_std, n = summarise(100 * r["test_at_best_val"] for r in ok)
    val_mean, val_std, _ = summarise(100 * r["best_val"] for r in ok)
    first = records[0]
    lines = [
        f"{first['model']} on {first['dataset']} ({first['split']} split), {first['metric']} over {n} run(s)"
        + (f", {failed} failed" if failed else "")
        + f": test {test_mean:.2f} ± {test_std:.2f}, val {val_mean:.2f} ± {val_std:.2f}",
        f"records appended to {out_file}",
    ]
    return "\n".join(lines)
