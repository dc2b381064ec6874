"""The benchmark harness behind ``make bench`` (cases in conf/bench/*.yaml; issue 7).

A case composes the same config as ``train.py`` and times the same ``Trainer`` code path. Per case:
median training-epoch time (one optimiser step), inference time (one evaluation pass), NFE per epoch,
the time per function evaluation (timed inside a bare forward solve), peak memory, parameter count, and
the **floor**: the unavoidable kernels of one evaluation (the sparse product(s) and dense projections of
the ODE function, ``GraphODEFunc.floor_kernels``) timed bare on the same tensors in the same process.
(time per evaluation) / floor is the overhead ratio, which does not depend on the machine's speed. The
solve's time per evaluation with the solver's own arithmetic included, and its ratio to the floor, are
reported beside it (``solve_and_floor``).

Each case runs in a fresh process so that peak RSS (CPU) is the case's own.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from . import provenance
from .allocator import keep_freed_memory
from .data import load_graph, make_split
from .models import family
from .run import absolute, resolve_device, run_configs
from .training import Trainer, peak_memory_mb, seed_everything

BENCH_DIR = provenance.PROJECT_ROOT / "conf" / "bench"


def compose_run_config(overrides: list[str]) -> DictConfig:
    """The config ``train.py <overrides>`` would run (first split/seed)."""
    from hydra import compose, initialize_config_dir

    from .cli import CONF_DIR
    from .config import register_configs

    register_configs()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, "train.progress=false", "logger=none"])
    return run_configs(cfg)[0]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


def median_time(fn: Callable[[], Any], repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    return statistics.median(timed(fn, device)[0] for _ in range(repeats))


def load_case_data(cfg: DictConfig, synthetic: dict | None, device: torch.device):
    """(data, split) of a case: the configured dataset, or a synthetic SBM graph."""
    if synthetic is None:
        data = load_graph(cfg.dataset, cfg.split, absolute(cfg.data_root), absolute(cfg.raw_mirror))
        split = make_split(data, cfg.split, cfg.dataset)
    else:
        from .data import Split
        from .data.synthetic import sbm_graph

        data = sbm_graph(**synthetic)
        split = Split(*(torch.nonzero(m).flatten() for m in (data.train_mask, data.val_mask, data.test_mask)))
    return data.to(device), type(split)(*(idx.to(device) for idx in (split.train, split.val, split.test)))


def measure(overrides: list[str], epochs: int, warmup: int, floor_repeats: int, synthetic: dict | None = None) -> dict:
    """Time one case in this process; the record written to results/bench/<device>.jsonl."""
    cfg = compose_run_config(overrides)
    keep_freed_memory(cfg.keep_freed_memory)  # as train_one does, before the data is built
    device = resolve_device(cfg.device)
    data, split = load_case_data(cfg, synthetic, device)
    model_family = family(cfg.model)
    graph = model_family.graph(data, cfg.model)
    graph = graph.to(device) if hasattr(graph, "to") else graph
    seed_everything(cfg.seed)
    model = model_family.build(cfg.model, cfg.solver, data).to(device)
    trainer = Trainer(model, data.x, graph, data.y, split, cfg.optim, cfg.train, cfg.eval)
    for _ in range(warmup):
        trainer.run_epoch()
    train_s, eval_s, nfe_f, nfe_b, nfe_e = [], [], [], [], []
    for _ in range(epochs):
        seconds, (_, forward, backward) = timed(trainer.train_step, device)
        train_s.append(seconds)
        nfe_f.append(forward)
        nfe_b.append(backward)
        seconds, (_, _, evaluations) = timed(trainer.evaluate, device)
        eval_s.append(seconds)
        nfe_e.append(evaluations)
    record = {
        "epoch_seconds": statistics.median(train_s),
        "inference_seconds": statistics.median(eval_s),
        "nfe_forward": statistics.median(nfe_f),
        "nfe_backward": statistics.median(nfe_b),
        "nfe_eval": statistics.median(nfe_e),
        "num_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "num_nodes": int(data.num_nodes),
        "num_edges": int(data.edge_index.size(1)),
        "hidden_dim": int(cfg.model.hidden_dim),
    }
    record.update(solve_and_floor(model, data.x, graph, floor_repeats, device))
    record["peak_memory_mb"] = peak_memory_mb(device)
    record["config"] = OmegaConf.to_container(cfg, resolve=True)
    return record


@torch.no_grad()
def solve_and_floor(model, x: torch.Tensor, graph, repeats: int, device: torch.device) -> dict:
    """Per-evaluation timings of a bare forward solve (eval mode), and the floor of one evaluation.

    ``seconds_per_evaluation``: wall time inside the ODE function's evaluations, timed in the solve itself
    (the solver's arithmetic between evaluations excluded): this over the floor is the overhead ratio.
    ``solve_seconds_per_evaluation``: (solve - prepare) / NFE, i.e. with the solver's own arithmetic (Runge-Kutta
    stage combinations, error norms); over the floor it is the solve overhead ratio. ``prepare_seconds``:
    what is built once per forward pass before the solve (GRAND-l's attention, GRAFF's W).
    """
    ode = getattr(model, "ode", None)
    if ode is None:
        return {}
    model.eval()
    x0 = model.encode(x)
    ode.reset_nfe("evaluation")
    ode(x0, graph)
    nfe = max(ode.nfe, 1)
    solves = max(repeats // 10, 3)
    solve = median_time(lambda: ode(x0, graph), solves, device)
    state = ode.initial_state(x0)
    prepare = median_time(lambda: ode.func.prepare(state, graph), solves, device)
    ode.func.prepare(state, graph)
    kernels = ode.func.floor_kernels(state)
    # Rounds of (one solve's evaluations, then the floor), so that both halves of each ratio see the same
    # machine state: the median of the paired ratios is far steadier than a ratio of two separate medians
    # on a shared, frequency-scaled CPU.
    per_evaluation, floors, ratios = [], [], []
    rounds = max(repeats // 5, 5)
    ode.counted.timing = True
    try:
        for _ in range(rounds):
            ode.counted.seconds = 0.0
            ode.reset_nfe("evaluation")
            ode(x0, graph)
            per_evaluation.append(ode.counted.seconds / max(ode.nfe, 1))
            if kernels is not None:
                ode.counted.timing = False
                floors.append(median_time(kernels, 5, device))
                ratios.append(per_evaluation[-1] / floors[-1])
                ode.counted.timing = True
    finally:
        ode.counted.timing = False
    out = {
        "solve_seconds": solve,
        "prepare_seconds": prepare,
        "seconds_per_evaluation": statistics.median(per_evaluation),
        "solve_seconds_per_evaluation": max(solve - prepare, 0.0) / nfe,
    }
    if kernels is not None:
        out["floor_seconds"] = statistics.median(floors)
        out["overhead_ratio"] = statistics.median(ratios)
        out["solve_overhead_ratio"] = out["solve_seconds_per_evaluation"] / out["floor_seconds"]
    return out


def _measure_in_child(queue, kwargs: dict) -> None:
    try:
        queue.put(("ok", measure(**kwargs)))
    except Exception as err:  # reported as a failed case; the bench goes on
        queue.put(("failed", f"{type(err).__name__}: {err}"))


def measure_isolated(**kwargs) -> dict:
    """``measure`` in a fresh process (peak RSS is then the case's own); failures come back as records."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_measure_in_child, args=(queue, kwargs))
    child.start()
    status, payload = queue.get()
    child.join()
    return {"status": "ok", **payload} if status == "ok" else {"status": "failed", "error": payload}


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return "cuda-" + torch.cuda.get_device_name(0).lower().replace(" ", "-")
    return "cpu"


def bench_record(case: str, result: dict, device: str) -> dict:
    return {
        "case": case,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **result,
        **provenance.describe(device),
    }


NUMBER_FORMATS = {
    "epoch_seconds": ".3f",
    "inference_seconds": ".3f",
    "prepare_seconds": ".2e",
    "seconds_per_evaluation": ".2e",
    "solve_seconds_per_evaluation": ".2e",
    "floor_seconds": ".2e",
    "overhead_ratio": ".2f",
    "solve_overhead_ratio": ".2f",
}


def formatted(record: dict) -> dict[str, str]:
    """The record's numbers as the tables print them ("-" where absent)."""
    return {
        key: format(record[key], fmt) if record.get(key) is not None else "-" for key, fmt in NUMBER_FORMATS.items()
    }


def oldest_first(records: list[dict]) -> list[dict]:
    """Records by measurement time (a stable sort: same-second records keep their file order)."""
    return sorted(records, key=lambda r: str(r.get("timestamp", "")))


def markdown_table(records: list[dict]) -> str:
    """The latest record of each case (by timestamp) as a Markdown table."""
    latest: dict[str, dict] = {}
    for record in oldest_first(records):
        latest[record["case"]] = record
    head = (
        "| case | epoch s | inference s | NFE fwd/bwd/eval | prepare s | s per eval | floor s | overhead | "
        "solve s/NFE | solve overhead | peak MB | params |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [head]
    for name, r in latest.items():
        if r.get("status") != "ok":
            rows.append(f"| {name} | failed: {r.get('error', '?')} ||||||||||")
            continue
        nums = formatted(r)
        rows.append(
            f"| {name} | {nums['epoch_seconds']} | {nums['inference_seconds']} | "
            f"{r['nfe_forward']:.0f}/{r['nfe_backward']:.0f}/{r['nfe_eval']:.0f} | "
            f"{nums['prepare_seconds']} | {nums['seconds_per_evaluation']} | {nums['floor_seconds']} | "
            f"{nums['overhead_ratio']} | {nums['solve_seconds_per_evaluation']} | {nums['solve_overhead_ratio']} | "
            f"{r['peak_memory_mb']:.0f} | {r['num_params']} |"
        )
    return "\n".join(rows) + "\n"


def history_table(records: list[dict]) -> str:
    """Every measurement of each case, oldest first, with the commit it measured: the before/after of each
    change that was benchmarked on its own commit (a ``+`` marks uncommitted changes on top of it)."""
    rows = [
        "| case | measured | commit | epoch s | s per eval | overhead | solve s/NFE | solve overhead |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by_case: dict[str, list[dict]] = {}
    for record in oldest_first(records):
        if record.get("status") == "ok":
            by_case.setdefault(record["case"], []).append(record)
    for name, measured in by_case.items():
        for r in measured:
            git = r.get("git") or {}
            commit = str(git.get("commit", "?"))[:7] + ("+" if git.get("dirty") else "")
            nums = formatted(r)
            rows.append(
                f"| {name} | {str(r.get('timestamp', '?'))[:16]} | {commit} | {nums['epoch_seconds']} | "
                f"{nums['seconds_per_evaluation']} | {nums['overhead_ratio']} | "
                f"{nums['solve_seconds_per_evaluation']} | {nums['solve_overhead_ratio']} |"
            )
    return "\n".join(rows) + "\n"


def results_dir() -> Path:
    return provenance.PROJECT_ROOT / "results" / "bench"
