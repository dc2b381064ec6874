"""Shared fixtures: composing the real Hydra config, a private data root, small synthetic graphs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from grand_bench.cli import CONF_DIR
from grand_bench.config import register_configs

REPO = Path(__file__).resolve().parents[1]
register_configs()


def mirror_path() -> Path:
    env = os.environ.get("GRAND_BENCH_RAW")
    return Path(env) if env else REPO.parent / "shared" / "data"


def compose_cfg(overrides: list[str] | None = None) -> DictConfig:
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose("config", overrides=list(overrides or []))


@pytest.fixture(scope="session")
def planetoid_root(tmp_path_factory) -> Path:
    """A writable data root holding copies of the Planetoid raw files (processed once per session)."""
    mirror = mirror_path()
    if not (mirror / "Cora" / "raw").is_dir():
        pytest.skip(f"raw mirror not found at {mirror} (set GRAND_BENCH_RAW)")
    root = tmp_path_factory.mktemp("data")
    for name in ("Cora", "CiteSeer"):
        shutil.copytree(mirror / name / "raw", root / name / "raw")
    return root


@pytest.fixture
def run_cfg(planetoid_root, tmp_path):
    """Compose a config that trains on the private data root and writes records under tmp_path."""

    def make(*overrides: str) -> DictConfig:
        base = [
            f"data_root={planetoid_root}",
            "raw_mirror=null",
            f"results_dir={tmp_path / 'runs'}",
            "train.progress=false",
        ]
        return compose_cfg(base + list(overrides))

    return make


def ring_graph(num_nodes: int = 30, features: int = 8, classes: int = 3, seed: int = 0) -> Data:
    """A ring plus random chords: small, connected, undirected, with features and labels."""
    gen = torch.Generator().manual_seed(seed)
    ring = torch.stack([torch.arange(num_nodes), (torch.arange(num_nodes) + 1) % num_nodes])
    chords = torch.randint(0, num_nodes, (2, num_nodes), generator=gen)
    chords = chords[:, chords[0] != chords[1]]
    edge_index = to_undirected(torch.cat([ring, chords], 1), num_nodes=num_nodes)
    x = torch.randn(num_nodes, features, generator=gen)
    y = torch.randint(0, classes, (num_nodes,), generator=gen)
    return Data(x=x, y=y, edge_index=edge_index, num_classes=classes)


@pytest.fixture
def ring() -> Data:
    return ring_graph()
