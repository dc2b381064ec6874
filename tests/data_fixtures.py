"""Helpers for the data-layer tests: locating the raw mirror, copying part of it, snapshotting a folder,
and writing tiny geom-gcn split files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def mirror_path() -> Path:
    """Where the shared raw mirror is: env GRAND_BENCH_RAW, else ``<repo>/../shared/data``."""
    env = os.environ.get("GRAND_BENCH_RAW")
    return Path(env) if env else REPO.parent / "shared" / "data"


def raw_mirror() -> Path:
    """The shared raw mirror; skip the test if it has no Cora/raw."""
    path = mirror_path()
    if not (path / "Cora" / "raw").is_dir():
        pytest.skip(f"raw mirror with Cora/raw not found at {path} (set GRAND_BENCH_RAW)")
    return path


def copy_mirror_part(mirror: Path, dest: Path, rel_dirs: list[str], skip: tuple[str, ...] = ()) -> Path:
    """Copy ``rel_dirs`` of the mirror (minus files named in ``skip``) into a private mirror ``dest``."""
    for rel in rel_dirs:
        shutil.copytree(mirror / rel, dest / rel, ignore=shutil.ignore_patterns(*skip))
    return dest


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime_ns) of every file and folder under ``folder``."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(folder))] = (st.st_size if p.is_file() else 0, st.st_mtime_ns)
    return out


def write_geom_gcn_files(
    raw_dir: Path, prefix: str, num_nodes: int, num_splits: int, seed: int = 0
) -> list[dict[str, np.ndarray]]:
    """Write geom-gcn-format split files (uint8 masks, 48/32/20 of all nodes, as in Pei et al.'s files)."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    written = []
    for k in range(num_splits):
        perm = rng.permutation(num_nodes)
        n_train, n_val = int(0.48 * num_nodes), int(0.32 * num_nodes)
        masks = {}
        for key, idx in (
            ("train_mask", perm[:n_train]),
            ("val_mask", perm[n_train : n_train + n_val]),
            ("test_mask", perm[n_train + n_val :]),
        ):
            mask = np.zeros(num_nodes, dtype=np.uint8)
            mask[idx] = 1
            masks[key] = mask
        np.savez(raw_dir / f"{prefix}_split_0.6_0.2_{k}.npz", **masks)
        written.append(masks)
    return written


def ring_with_chords(num_nodes: int) -> torch.Tensor:
    """A small connected undirected graph: a ring plus chords i -- i+3, both directions."""
    src = torch.arange(num_nodes)
    pairs = [(src, (src + 1) % num_nodes), (src, (src + 3) % num_nodes)]
    rows = torch.cat([torch.cat([a, b]) for a, b in pairs])
    cols = torch.cat([torch.cat([b, a]) for a, b in pairs])
    return torch.stack([rows, cols])
