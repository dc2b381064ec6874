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
    ranked: list[dict]  # ok records, best first
    failed: list[dict]  # diverged trials (status failed), each with its reason
    errored: dict[str, str]  # trial id -> first line of the error, for trials that left no record
    unfinished: int  # trials an interruption left for tuner.resume=true
    header: list[str] = field(default_factory=list)

    @property
    def best(self) -> dict | None:
        return self.ranked[0] if self.ranked else None

    @property
    def stopped_early(self) -> int:
        return sum(bool(r.get("stopped_early")) for r in self.ranked)


def sweep_records(path: Path, sweep: str, trial_ids: set[str]) -> list[dict]:
    """This sweep's records, one per trial (the last, should an interrupted trial have written twice)."""
    if not path.exists():
        return []
    latest: dict[str, dict] = {}
    for record in read_records(path):
        if record.get("sweep") == sweep and record.get("trial_id") in trial_ids:
            latest[record["trial_id"]] = record
    return list(latest.values())


def score(record: dict, metric: str, mode: str) -> float:
    """The trial's best value of ``metric`` over its epochs (what Tune ranks with scope='all')."""
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
    head = ["rank", "trial", "val %", "test %", "best epoch", "epochs", "stopped early", "s/epoch", "NFE fwd"]
    head += [column_name(k) for k in params]
    lines = [*summary.header, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for number, r in enumerate(summary.ranked[:top_k], 1):
        row = [
            str(number),
            r["trial_id"],
            pct(r["best_val"]),
            pct(r["test_at_best_val"]),
            str(r["best_epoch"]),
            str(r["epochs_run"]),
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
