"""Where a number came from: git commit, library versions, machine."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "torch",
    "torch_geometric",
    "torchdiffeq",
    "hydra-core",
    "omegaconf",
    "numpy",
    "scipy",
    "ray",
    "wandb",
)


# Paths the project itself writes (run records, tables, figures): changes there do not make the code dirty.
OUTPUT_PATHS = ("results",)


@functools.cache
def git_commit() -> dict[str, object]:
    """HEAD commit of the project and whether its code (tracked files outside results/) had uncommitted changes.

    Cached per process: ``run`` calls it first, so it describes the code the process started with.
    """
    return git_state(PROJECT_ROOT)


def git_state(root: Path) -> dict[str, object]:
    """HEAD of the repository at ``root`` and whether its tracked files, outside ``OUTPUT_PATHS``, differ from it.

    Records appended to results/ by earlier runs are not code changes: a long reproduction in one checkout would
    otherwise call every run after its first dirty.
    """

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    excluded = [f":(exclude){path}" for path in OUTPUT_PATHS]
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", *excluded))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


@functools.cache
def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine(device: str) -> dict[str, object]:
    import os

    import torch

    info: dict[str, object] = {
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "torch_threads": torch.get_num_threads(),
    }
    if hasattr(os, "nice"):  # the process's scheduling priority: a niced run's timings are not comparable
        info["niceness"] = os.nice(0)
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def describe(device: str) -> dict[str, object]:
    """The provenance block of every record the project writes: git commit, library versions, machine."""
    return {"git": git_commit(), "versions": versions(), "machine": machine(device)}
