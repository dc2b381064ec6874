"""The sweep's summary: its records ranked, the top k as a Markdown table, failures with their reasons."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..report import read_records


@dataclass
class SweepSummary:
    """What a sweep produced, read back from the results store (so a resumed sweep counts every trial)."""

    sweep: str
    ranked: list[dict]  # ok trials (``trial_result``: their runs merged), best first
    failed: list[dict]  # diverged trials (a run with status failed), each with its reason
    errored: dict[str, str]  # trial id -> first line of the error, for trials that left no record
    unfinished: int  # trials an interruption left for tuner.resume=true
    stopped: str | None = None  # why Ray stopped the whole sweep (e.g. its out-of-memory killer), if it did
    header: list[str] = field(default_factory=list)

    @property
    def best(self) -> dict | None:
        return self.ranked[0] if self.ranked else None

    @property
    def stopped_early(self) -> int:
        return sum(bool(r.get("stopped_early")) for r in self.ranked)


def sweep_records(path: Path, sweep: str, trial_ids: set[str]) -> list[dict]:
    """This sweep's records, one per trial, its runs merged (``trial_result``). A run an interrupted trial
    wrote twice counts once, with its last record."""
    if not path.exists():
        return []
    latest: dict[tuple, dict] = {}
    for record in read_records(path):
        if record.get("sweep") == sweep and record.get("trial_id") in trial_ids:
            latest[record["trial_id"], record["split_index"], record["seed"]] = record
    by_trial: dict[str, list[dict]] = {}
    for (trial_id, _, _), record in latest.items():
        by_trial.setdefault(trial_id, []).append(record)
    return [trial_result(runs) for runs in by_trial.values()]


AVERAGED = ("best_val", "test_at_best_val", "best_epoch", "epochs_run", "seconds_per_epoch", "nfe_forward")


def trial_result(runs: list[dict]) -> dict:
    """One trial's runs (one per split and seed) as one record-like dict: the means of the scores and costs,
    ``runs`` (how many) and ``runs_of`` ((split index, seed) pairs); failed when any run failed, with its
    reason; stopped early when any run was. The config is the trial's (runs differ only in split and seed)."""
    runs = sorted(runs, key=lambda r: (r["split_index"], r["seed"]))
    merged = dict(runs[0])
    failed = [r for r in runs if r["status"] != "ok"]
    if failed:
        merged.update({k: failed[0][k] for k in ("status", "error", "failed_epoch")})
    ok = [r for r in runs if r["status"] == "ok"] or runs
    for key in AVERAGED:
        values = [r[key] for r in ok if r.get(key) is not None]
        merged[key] = sum(values) / len(values) if values else None
    merged["history"] = {}  # per-run histories stay in the records; a metric's best is averaged below
    merged["run_records"] = runs
    merged["runs"] = len(runs)
    merged["runs_of"] = [(r["split_index"], r["seed"]) for r in runs]
    merged["stopped_early"] = any(r.get("stopped_early") for r in runs)
    return merged


def score(record: dict, metric: str, mode: str) -> float:
    """The trial's value of ``metric`` for ranking: each run's best over its epochs (what Tune ranks with
    scope='all'), averaged over the trial's runs."""
    values = [run_score(run, metric, mode) for run in record.get("run_records") or [record]]
    return sum(values) / len(values)


def run_score(record: dict, metric: str, mode: str) -> float:
    if metric in ("val", "best_val"):
        value = record["best_val"]
    else:
        values = [v for v in record["history"].get(metric, []) if v is not None]
        value = (max if mode == "max" else min)(values) if values else None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return -math.inf if mode == "max" else math.inf
    return value


def rank(records: list[dict], metric: str, mode: str) -> list[dict]:
    ok = [r for r in records if r["status"] == "ok"]
    return sorted(ok, key=lambda r: score(r, metric, mode), reverse=mode == "max")


def dotted(config: dict, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "–" if value is None else str(value)


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def column_name(key: str) -> str:
    """optim.lr -> lr, model.attention.dim -> attention.dim: short enough for a table."""
    return key.split(".", 1)[1] if "." in key else key


def markdown(summary: SweepSummary, params: list[str], top_k: int) -> str:
    head = ["rank", "trial", "runs", "val %", "test %", "best epoch", "epochs", "stopped early", "s/epoch", "NFE fwd"]
    head += [column_name(k) for k in params]
    lines = [*summary.header, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for number, r in enumerate(summary.ranked[:top_k], 1):
        row = [
            str(number),
            r["trial_id"],
            str(r.get("runs", 1)),
            pct(r["best_val"]),
            pct(r["test_at_best_val"]),
            fmt(r["best_epoch"]),
            fmt(r["epochs_run"]),
            "yes" if r.get("stopped_early") else "",
            f"{r['seconds_per_epoch']:.3f}",
            f"{r['nfe_forward']:.0f}",
        ]
        row += [fmt(dotted(r["config"], k)) for k in params]
        lines.append("| " + " | ".join(row) + " |")
    if summary.failed or summary.errored:
        lines += ["", "Failed trials (the sweep went on):", ""]
        lines += [f"- `{r['trial_id']}` at epoch {r['failed_epoch']}: {r['error']}" for r in summary.failed[:top_k]]
        lines += [f"- `{tid}` (no record): {message}" for tid, message in list(summary.errored.items())[:top_k]]
    return "\n".join(lines) + "\n"
