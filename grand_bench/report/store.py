"""The results store: one JSON record per run, appended to ``<results_dir>/<model>_<dataset>.jsonl``.

An append is one ``write`` of one whole line under a file lock, flushed to disk before the lock is
released, so concurrent runs never tear or interleave lines; should a process die mid-write anyway (power
loss), the next append starts on a fresh line, so the torn fragment costs only itself. A line that does not
parse as a JSON object is reported (file and line number) and skipped. Values of credential-like
environment variables (``*KEY*``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``) never reach a record, and
absolute paths inside or beside the project (the data root, the ``../shared`` raw mirror) are stored relative
to the project root, so committed records name no machine's folders.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from filelock import FileLock

from ..provenance import PROJECT_ROOT

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


SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
MIN_SECRET_LENGTH = 8  # shorter values ("1", "true") would redact ordinary words


def _secrets() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH
    }


def map_strings(value, fn: Callable[[str], str]):
    """``value`` (nested dicts/lists of JSON values) with ``fn`` applied to every string in it."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [map_strings(v, fn) for v in value]
    return value


def redact_secrets(value, secrets: dict[str, str] | None = None):
    """``value`` with every credential-like env value replaced by its name."""
    secrets = _secrets() if secrets is None else secrets
    if not secrets:
        return value

    def redact(text: str) -> str:
        for name, secret in secrets.items():
            text = text.replace(secret, f"<redacted ${name}>")
        return text

    return map_strings(value, redact)


def portable_paths(value, root: Path = PROJECT_ROOT):
    """``value`` with every absolute path string under the project's parent folder made relative to ``root``."""
    if root.parent == Path(root.anchor):  # a project at /repo: "beside it" would be every path
        return value

    def relative(text: str) -> str:
        beside = os.path.isabs(text) and Path(text).is_relative_to(root.parent)
        return os.path.relpath(text, root) if beside else text

    return map_strings(value, relative)


def append_record(path: str | Path, record: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(portable_paths(redact_secrets(_finite(record))), sort_keys=False, allow_nan=False) + "\n"
    with FileLock(str(path) + ".lock"), open(path, "a+b") as handle:
        if handle.tell() > 0:  # "a+" opens at the end: isolate a fragment a dead writer left unterminated
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = "\n" + line
        handle.write(line.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


def read_records(paths: str | Path | Iterable[str | Path]) -> list[dict]:
    """Records from one file, a folder of ``*.jsonl`` files, or a list of either; bad lines are skipped."""
    if isinstance(paths, str | Path):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(p.rglob("*.jsonl")) if p.is_dir() else [p])
    records = []
    for file in files:
        with open(file, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as err:
                    _skip(file, number, f"not UTF-8 at byte {err.start}")
                    continue
                except json.JSONDecodeError as err:
                    _skip(file, number, err.msg)
                    continue
                if not isinstance(record, dict):
                    _skip(file, number, f"a JSON {type(record).__name__}, not an object")
                    continue
                records.append(record)
    return records


def _skip(file: Path, number: int, why: str) -> None:
    warnings.warn(f"{file}:{number}: skipping corrupt record ({why})", stacklevel=3)


def summarise(values: Iterable[float]) -> tuple[float, float, int]:
    """Mean, population std (ddof=0, as the papers report) and count."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan"), 0
    return float(arr.mean()), float(arr.std()), int(arr.size)
