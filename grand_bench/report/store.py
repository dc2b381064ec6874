"""The results store: one JSON record per run, appended to ``<results_dir>/<model>_<dataset>.jsonl``.

An append is one ``write`` of one whole line under a file lock, so concurrent runs never tear or
interleave lines. A line that does not parse is reported (file and line number) and skipped.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from filelock import FileLock

SCHEMA_VERSION = 1


def record_path(results_dir: str | Path, model: str, dataset: str) -> Path:
    return Path(results_dir) / f"{model}_{dataset}.jsonl"


def _finite(value):
    """JSON has no NaN: store non-finite floats as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def append_record(path: str | Path, record: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(_finite(record), sort_keys=False, allow_nan=False) + "\n"
    with FileLock(str(path) + ".lock"), open(path, "a", encoding="utf-8") as handle:
        handle.write(line)


def read_records(paths: str | Path | Iterable[str | Path]) -> list[dict]:
    """Records from one file, a folder of ``*.jsonl`` files, or a list of either; bad lines are skipped."""
    if isinstance(paths, str | Path):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.rglob("*.jsonl")) if p.is_dir() else [p])
    records = []
    for file in files:
        with open(file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as err:
                    warnings.warn(f"{file}:{number}: skipping corrupt record ({err.msg})", stacklevel=2)
    return records


def summarise(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, population std (ddof=0, as the papers report) and count."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan"), 0
    return float(arr.mean()), float(arr.std()), int(arr.size)
