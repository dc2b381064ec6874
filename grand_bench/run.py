"""One ``train.py`` invocation: load the data once, then train every (split, seed) pair and record it.

``run(cfg)`` is what Hydra, Ray Tune and the tests call; it returns the records of its runs. Each run
checkpoints every ``train.checkpoint_every`` epochs to ``<checkpoint_dir>/<run key>/`` (``run_key.py``);
with ``resume=true`` a run already in the store is skipped (its stored record is returned) and an
interrupted one continues from its checkpoint, to exactly the numbers of an uninterrupted run on CPU.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch_geometric.data import Data

from . import provenance
from .allocator import keep_freed_memory
from .data import Split, load_graph, make_split
from .data.graph_level import ERROR_METRICS, is_graph_level, load_graph_dataset
from .diagnostics import BestModelDiagnostics
from .errors import ConfigError
from .models import family
from .report import SCHEMA_VERSION, append_record, summarise
from .report.store import record_path
from .run_key import finished_runs, run_key
from .training import Callback, Trainer, make_logger, peak_memory_mb, seed_everything
from .training.checkpoint import Checkpointer
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


def outcome_fields(outcome) -> dict:
    """The outcome's fields for a record: the history goes last (make_record), and the best validation loss
    only when the run selected its epoch on it (train.select=val_loss)."""
    fields = outcome.as_dict()
    del fields["history"]
    if math.isnan(fields["best_val_loss"]):
        del fields["best_val_loss"]
    return fields


def make_record(cfg: DictConfig, outcome, split, device: torch.device) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": uuid.uuid4().hex[:12],
        "run_key": run_key(cfg),
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "tag": cfg.tag,
        "model": cfg.model.name,
        "dataset": cfg.dataset.name,
        "split": cfg.split.name,
        "split_index": int(cfg.split.index),
        "split_sizes": split.sizes(),
        "seed": int(cfg.seed),
        "metric": cfg.dataset.metric,
        **outcome_fields(outcome),
        "peak_memory_mb": peak_memory_mb(device),
        **provenance.describe(str(device)),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "history": outcome.history,
    }


@dataclass
class NodeRun:
    """One node-level run set up and ready to train: its trainer, and what its record needs afterwards."""

    cfg: DictConfig
    trainer: Trainer
    split: Split
    device: torch.device
    diagnostics: BestModelDiagnostics | None
    data: Data
    graph: object

    def record(self) -> dict:
        """The run record of the finished trainer (not yet stored); closes the run's logger."""
        outcome, cfg = self.trainer.outcome, self.cfg
        record = make_record(cfg, outcome, self.split, self.device)
        if self.diagnostics is not None and outcome.status == "ok":
            model = self.trainer.model
            record["diagnostics"] = self.diagnostics.collect(model, self.data.x, self.graph, self.data.edge_index)
        self.trainer.logger.finish({k: record[k] for k in ("best_val", "test_at_best_val", "best_epoch", "status")})
        return record


def start_node_run(
    cfg: DictConfig, data, graph, device: torch.device, callbacks: Sequence[Callback] = (), name: str | None = None
) -> NodeRun:
    """Split, seed, model, logger and trainer of one resolved node-level (split, seed) config."""
    split = make_split(data, cfg.split, cfg.dataset)
    split = type(split)(*(idx.to(device) for idx in (split.train, split.val, split.test)))
    seed_everything(cfg.seed)
    model = family(cfg.model).build(cfg.model, cfg.solver, data).to(device)
    for module in model.modules():  # models that read which nodes are labelled (GRAND++'s source term)
        if hasattr(module, "set_train_nodes"):
            module.set_train_nodes(split.train)
    name = name or f"{cfg.model.name} {cfg.dataset.name} {cfg.split.name}[{cfg.split.index}] seed {cfg.seed}"
    logger = make_logger(cfg.logger, name, OmegaConf.to_container(cfg, resolve=True))
    diagnostics = BestModelDiagnostics(cfg.diagnostics) if cfg.diagnostics.dirichlet else None
    callbacks = [*callbacks, diagnostics] if diagnostics is not None else callbacks
    trainer = Trainer(model, data.x, graph, data.y, split, cfg.optim, cfg.train, cfg.eval, logger, name, callbacks)
    return NodeRun(cfg, trainer, split, device, diagnostics, data, graph)


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

    ``before_fit`` sees the trainer before training starts (``train.py``'s resume restores its checkpoint there).
    """
    provenance.git_commit()  # cached now: the record names the code as it was when the run started
    keep_freed_memory(cfg.keep_freed_memory)
    if is_graph_level(cfg.dataset):  # `data` is a GraphDataset, trained in mini-batches of graphs
        from .run_graph import train_graph_one  # imports this module

        return train_graph_one(cfg, data, device, callbacks, before_fit, name)
    run = start_node_run(cfg, data, graph, device, callbacks, name)
    if before_fit is not None:
        before_fit(run.trainer)
    run.trainer.fit()
    return run.record(), run.trainer


def load_data(cfg: DictConfig, device: torch.device) -> tuple:
    """The dataset and the model family's graph on ``device``, shared by every run of the invocation."""
    if is_graph_level(cfg.dataset):  # many graphs: the family's graph is built per mini-batch
        return load_graph_dataset(cfg.dataset, cfg.split, absolute(cfg.data_root), absolute(cfg.raw_mirror)), None
    data = load_graph(cfg.dataset, cfg.split, absolute(cfg.data_root), absolute(cfg.raw_mirror)).to(device)
    graph = family(cfg.model).graph(data, cfg.model)
    return data, graph.to(device) if hasattr(graph, "to") else graph


def run(cfg: DictConfig) -> list[dict]:
    provenance.git_commit()  # cached at start, not when the first record is written
    validate(cfg)
    device = resolve_device(cfg.device)
    configs = run_configs(cfg)
    out_file = record_path(absolute(cfg.results_dir), cfg.model.name, cfg.dataset.name)
    done = finished_runs(out_file) if cfg.resume else {}
    data = graph = None  # loaded on the first run that is not already recorded
    records = []
    for number, one in enumerate(configs, 1):
        key = run_key(one)
        checkpointer = Checkpointer(absolute(cfg.checkpoint_dir) / key, one.train.checkpoint_every)
        if key in done:
            checkpointer.clear()  # left behind if a run was killed between its record and the clean-up
            records.append(done[key])
            print(format_run(number, len(configs), done[key], skipped=True), flush=True)
            continue
        if data is None:
            data, graph = load_data(cfg, device)
        if not cfg.resume and checkpointer.exists():
            print(f"note: starting over; resume=true would continue from {checkpointer.path}", flush=True)
        before_fit = checkpointer.restore if cfg.resume else None
        record, _ = train_one(one, data, graph, device, [checkpointer], before_fit=before_fit)
        record["resumed_from"] = checkpointer.restored_epoch
        append_record(out_file, record)
        checkpointer.clear()  # after the record: a kill in between leaves a checkpoint, never a lost run
        records.append(record)
        print(format_run(number, len(configs), record), flush=True)
    print(format_summary(records, out_file), flush=True)
    return records


def score_format(metric: str) -> tuple[float, int]:
    """How scores print: fractions as percentages with 2 decimals, errors (ZINC's MAE) as they are with 4."""
    return (1.0, 4) if metric in ERROR_METRICS else (100.0, 2)


def format_run(number: int, total: int, r: dict, skipped: bool = False) -> str:
    head = f"[{number}/{total}] {r['model']} {r['dataset']} {r['split']}[{r['split_index']}] seed {r['seed']}:"
    if skipped:
        return f"{head} already recorded ({r['status']}, run {r['run_id']}), skipped"
    if r.get("resumed_from"):
        head += f" (resumed after epoch {r['resumed_from']})"
    if r["status"] != "ok":
        return f"{head} FAILED at epoch {r['failed_epoch']}: {r['error']}"
    scale, digits = score_format(r["metric"])
    # NFE only for models that integrate an ODE: discrete baselines evaluate no function
    nfe = f", NFE fwd {r['nfe_forward']:.1f} bwd {r['nfe_backward']:.1f}" if r["nfe_forward"] else ""
    return (
        f"{head} val {scale * r['best_val']:.{digits}f} test {scale * r['test_at_best_val']:.{digits}f} "
        f"(best epoch {r['best_epoch']}/{r['epochs_run']}, {r['seconds_per_epoch']:.3f} s/epoch{nfe})"
    )


def format_summary(records: list[dict], out_file: Path) -> str:
    ok = [r for r in records if r["status"] == "ok"]
    failed = len(records) - len(ok)
    scale, digits = score_format(records[0]["metric"])
    test_mean, test_std, n = summarise(scale * r["test_at_best_val"] for r in ok)
    val_mean, val_std, _ = summarise(scale * r["best_val"] for r in ok)
    first = records[0]
    lines = [
        f"{first['model']} on {first['dataset']} ({first['split']} split), {first['metric']} over {n} run(s)"
        + (f", {failed} failed" if failed else "")
        + f": test {test_mean:.{digits}f} ± {test_std:.{digits}f}, val {val_mean:.{digits}f} ± {val_std:.{digits}f}",
        f"records appended to {out_file}",
    ]
    return "\n".join(lines)
