"""Shared fixtures: composing the real Hydra config, a private data root, small synthetic graphs."""

from __future__ import annotations

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

from .data_fixtures import mirror_path

register_configs()


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


@pytest.fixture(scope="session")
def node_data_root(tmp_path_factory):
    """A writable data root for the node-level datasets beyond Planetoid, shared by the whole session.

    ``node_data_root("texas/raw", ...)`` copies those raw folders of the mirror into it (once) and returns
    the root; a folder the mirror lacks skips the test. Copying on demand keeps ``-m "not slow"`` from
    copying the large Amazon/Coauthor files; each dataset is processed once per session.
    """
    mirror = mirror_path()
    root = tmp_path_factory.mktemp("node_data")

    def stage(*rel_dirs: str) -> Path:
        for rel in rel_dirs:
            if not (mirror / rel).is_dir():
                pytest.skip(f"raw folder {rel} not in the mirror at {mirror} (set GRAND_BENCH_RAW)")
            if not (root / rel).is_dir():
                shutil.copytree(mirror / rel, root / rel)
        return root

    return stage


@pytest.fixture
def node_run_cfg(node_data_root, tmp_path):
    """Like run_cfg, on node_data_root: ``node_run_cfg("texas/raw", "dataset=texas", ...)``."""

    def make(raw_dir: str, *overrides: str) -> DictConfig:
        base = [
            f"data_root={node_data_root(raw_dir)}",
            "raw_mirror=null",
            f"results_dir={tmp_path / 'runs'}",
            "train.progress=false",
        ]
        return compose_cfg(base + list(overrides))

    return make
