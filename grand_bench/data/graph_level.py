"""Graph-level datasets: many graphs, each a training example (or, for PPI, a set of labelled nodes).

* ``zinc``: PyG ``ZINC(subset=True)``, 10,000 / 1,000 / 1,000 molecules, regression (MAE).
* ``ppi``: PyG ``PPI``, inductive 20 / 2 / 2 graphs, 121 labels per node (micro-F1).
* ``mnist_superpixels``: superpixel graphs built here from the raw MNIST images (data/superpixels.py).
* ``mnist_superpixels_pyg``: PyG ``MNISTSuperpixels`` from its own raw file, when one is available.

Raw files are staged from the read-only mirror into ``data_root`` exactly as for the node datasets
(data/mirror.py), and PyG's classes process them there. A loader returns a ``GraphDataset``: the three
parts as indexable collections of ``Data`` (what PyG's ``DataLoader`` batches), plus the sizes a model needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock
from torch_geometric.data import Data
from torch_geometric.datasets import PPI, ZINC, MNISTSuperpixels

from grand_bench.config import DatasetCfg, SplitCfg
from grand_bench.data.datasets import LoadRequest
from grand_bench.data.errors import DataError, unknown_choice
from grand_bench.data.mirror import build_pyg, check_data_root, stage_raw
from grand_bench.data.superpixels import MNIST_FILES, PackedGraphs, SuperpixelParams, build_split
from grand_bench.errors import unknown_choice as choice_message

# Each graph-level task: its metric (the run record's `metric`) and whether the model pools per graph.
TASK_METRIC = {"graph_regression": "mae", "graph_classification": "accuracy", "node_multilabel": "micro_f1"}
GRAPH_TASKS = tuple(TASK_METRIC)
ERROR_METRICS = ("mae",)  # lower is better: best-validation selection keeps the minimum
READOUTS = ("sum", "mean", "none")
ATOM_FEATURES = ("onehot", "scalar")
PARTS = ("train", "val", "test")
ZINC_ATOM_TYPES = 28  # benchmarking-gnns' atom dictionary (ZINC 12k uses types 0..27)
MNIST_VAL = 5000  # GraphCON / Dwivedi et al.: 5,000 of the 60,000 training images for validation
MNIST_TRAIN_IMAGES = 60000
MNIST_VAL_SEED = 0  # the validation images are a fixed draw: numpy RandomState(0) shuffles the training images
PYG_MNIST_FILE = "MNISTSuperpixels.pt"  # PyG MNISTSuperpixels' raw file: (train, test) lists of dicts


@dataclass(frozen=True)
class GraphSplit:
    """The three parts of a graph-level dataset, each an indexable collection of ``Data``."""

    train: Sequence[Data]
    val: Sequence[Data]
    test: Sequence[Data]

    def sizes(self) -> dict[str, int]:
        """Number of graphs in each part (the run record's ``split_sizes``)."""
        return {part: len(getattr(self, part)) for part in PARTS}


@dataclass(frozen=True)
class GraphDataset:
    """A loaded graph-level dataset: its split and the input / output sizes of the task."""

    name: str
    task: str
    split: GraphSplit
    num_features: int
    num_outputs: int  # 1 (regression), classes, or labels per node (multi-label)


GraphLoader = Callable[[LoadRequest], GraphDataset]


def zinc(req: LoadRequest) -> GraphDataset:
    """ZINC 12k via PyG ``ZINC(<root>/ZINC, subset=True)``: raw ``ZINC/raw/{train,val,test}.{pickle,index}``.

    Bond types are dropped; ``x`` is the atom type one-hot over 28 types (``atom_features=onehot``) or the
    type index as one float (``scalar``, GraphCON's ZINC code); ``y`` is one float per graph.
    """
    if req.dataset.atom_features not in ATOM_FEATURES:
        raise unknown_choice("dataset.atom_features", req.dataset.atom_features, ATOM_FEATURES)
    files = [f"{part}.{ext}" for ext in ("pickle", "index") for part in PARTS]
    missing = stage_raw(req.root, req.raw_mirror, "ZINC/raw", files)
    parts = build_pyg(
        lambda: {part: ZINC(str(req.root / "ZINC"), subset=True, split=part) for part in PARTS},
        missing,
        req.raw_mirror,
    )
    onehot = req.dataset.atom_features == "onehot"

    def convert(data: Data) -> Data:
        atoms = data.x.view(-1)
        if onehot and int(atoms.max()) >= ZINC_ATOM_TYPES:
            raise DataError(f"ZINC atom type {int(atoms.max())} outside the {ZINC_ATOM_TYPES} known types")
        x = F.one_hot(atoms, ZINC_ATOM_TYPES).float() if onehot else atoms.float().view(-1, 1)
        return Data(x=x, edge_index=data.edge_index, y=data.y.float().view(1))

    split = GraphSplit(*(_first(parts[p], req.dataset.limit, convert) for p in PARTS))
    return GraphDataset(req.dataset.name, req.dataset.task, split, ZINC_ATOM_TYPES if onehot else 1, 1)


def ppi(req: LoadRequest) -> GraphDataset:
    """PPI via PyG ``PPI(<root>/PPI, split)``: raw ``PPI/raw/{train,valid,test}_{graph.json,feats.npy,...}``."""
    files = [f"{part}_{name}" for part in ("train", "valid", "test") for name in PPI_FILES]
    missing = stage_raw(req.root, req.raw_mirror, "PPI/raw", files)
    parts = build_pyg(lambda: {p: PPI(str(req.root / "PPI"), split=p) for p in PARTS}, missing, req.raw_mirror)

    def convert(data: Data) -> Data:
        return Data(x=data.x.float(), edge_index=data.edge_index, y=data.y.float())

    split = GraphSplit(*(_first(parts[p], req.dataset.limit, convert) for p in PARTS))
    sample = split.train[0]
    return GraphDataset(req.dataset.name, req.dataset.task, split, sample.x.size(1), sample.y.size(1))


PPI_FILES = ("graph.json", "feats.npy", "graph_id.npy", "labels.npy")


def mnist_superpixels(req: LoadRequest) -> GraphDataset:
    """Superpixel graphs built from ``MNIST/raw/`` (data/superpixels.py), cached under ``MNIST/processed/``."""
    params = SuperpixelParams(max_segments=req.dataset.superpixels, knn=req.dataset.knn)
    files = [name for pair in MNIST_FILES.values() for name in pair]
    missing = stage_raw(req.root, req.raw_mirror, "MNIST/raw", files)
    if missing:  # no PyG class reads raw MNIST: fetch the idx files ourselves (or say which are missing)
        build_pyg(lambda: _download_mnist(req.root / "MNIST/raw", missing), missing, req.raw_mirror)
    raw_dir, cache_dir = req.root / "MNIST/raw", req.root / "MNIST/processed" / params.tag
    built = {}
    for file_split in MNIST_FILES:
        built[file_split], _ = build_split(
            raw_dir, cache_dir, file_split, params, req.dataset.limit, req.dataset.build_workers
        )
    train, val = holdout(built["train"])
    split = GraphSplit(train, val, built["test"])
    return GraphDataset(req.dataset.name, req.dataset.task, split, 3, 10)


def mnist_superpixels_pyg(req: LoadRequest) -> GraphDataset:
    """PyG ``MNISTSuperpixels(<root>/MNISTSuperpixels, train)`` from ``MNISTSuperpixels.pt``; x = [x, pos / 28]."""
    missing = stage_raw(req.root, req.raw_mirror, "MNISTSuperpixels/raw", [PYG_MNIST_FILE], sources=("MNIST/raw",))
    root = str(req.root / "MNISTSuperpixels")
    train, test = build_pyg(
        lambda: (MNISTSuperpixels(root, train=True), MNISTSuperpixels(root, train=False)), missing, req.raw_mirror
    )

    def convert(data: Data) -> Data:
        x = torch.cat([data.x.float().view(-1, 1), data.pos.float() / 28.0], dim=1)
        return Data(x=x, edge_index=data.edge_index, y=data.y.long().view(1))

    train_part, val_part = holdout(_first(train, req.dataset.limit, convert))
    split = GraphSplit(train_part, val_part, _first(test, req.dataset.limit, convert))
    return GraphDataset(req.dataset.name, req.dataset.task, split, 3, 10)


def holdout(graphs: Sequence[Data], seed: int = MNIST_VAL_SEED) -> tuple[Sequence[Data], Sequence[Data]]:
    """(train, val) of MNIST's training graphs: shuffled with ``RandomState(seed)``, the first 1/12 validation.

    All 60,000 give GraphCON's 55,000 / 5,000; a ``limit`` keeps the same ratio.
    """
    n = len(graphs)
    n_val = round(n * MNIST_VAL / MNIST_TRAIN_IMAGES)
    if n_val < 1 or n_val >= n:
        raise DataError(f"MNIST needs at least 12 training graphs for a validation set, got {n} (dataset.limit)")
    order = torch.from_numpy(np.random.RandomState(seed).permutation(n))
    val, train = order[:n_val].sort().values, order[n_val:].sort().values
    if isinstance(graphs, PackedGraphs):
        return graphs.subset(train), graphs.subset(val)
    return [graphs[i] for i in train.tolist()], [graphs[i] for i in val.tolist()]


def _first(dataset, limit: int | None, convert: Callable[[Data], Data]) -> list[Data]:
    count = len(dataset) if limit is None else min(limit, len(dataset))
    return [convert(dataset[i]) for i in range(count)]


def _download_mnist(raw_dir: Path, missing: Sequence[Path]) -> None:
    """Fetch the missing idx files (gzipped) from the mirror torchvision uses, and unpack them."""
    import gzip
    import shutil

    from torch_geometric.data import download_url

    for path in missing:
        archive = download_url(f"{MNIST_URL}/{path.name}.gz", str(raw_dir), log=False)
        with gzip.open(archive, "rb") as src, open(path, "wb") as dest:
            shutil.copyfileobj(src, dest)
        Path(archive).unlink()


MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist"

GRAPH_LOADERS: dict[str, GraphLoader] = {
    "zinc": zinc,
    "ppi": ppi,
    "mnist_superpixels": mnist_superpixels,
    "mnist_superpixels_pyg": mnist_superpixels_pyg,
}


def is_graph_level(dataset: DatasetCfg) -> bool:
    """True for the datasets trained in mini-batches of graphs (training/graph_loop.py)."""
    return dataset.task in GRAPH_TASKS


def check_graph_dataset_cfg(dataset: DatasetCfg, split: SplitCfg) -> list[str]:
    """Problems with a graph-level dataset config (for validate.py), each one line naming the option."""
    problems = []
    if dataset.loader not in GRAPH_LOADERS:
        problems.append(choice_message("graph-level dataset loader (dataset.loader)", dataset.loader, GRAPH_LOADERS))
    expected = TASK_METRIC[dataset.task]
    if dataset.metric != expected:
        problems.append(f"dataset.metric must be '{expected}' for task '{dataset.task}', got '{dataset.metric}'")
    if dataset.readout not in READOUTS:
        problems.append(choice_message("dataset.readout", dataset.readout, READOUTS))
    elif (dataset.readout == "none") != (dataset.task == "node_multilabel"):
        need = "none (labels per node)" if dataset.task == "node_multilabel" else "sum or mean (one output per graph)"
        problems.append(f"dataset.readout for task '{dataset.task}' must be {need}, got '{dataset.readout}'")
    for key in ("batch_size", "superpixels", "knn", "build_workers"):
        if getattr(dataset, key) < 1:
            problems.append(f"dataset.{key} must be >= 1, got {getattr(dataset, key)}")
    if dataset.limit is not None and dataset.limit < 1:
        problems.append(f"dataset.limit must be >= 1 or null, got {dataset.limit}")
    if dataset.atom_features not in ATOM_FEATURES:
        problems.append(choice_message("dataset.atom_features", dataset.atom_features, ATOM_FEATURES))
    if split.name != "official":
        problems.append(
            f"split must be 'official' for graph-level dataset '{dataset.name}' (its own parts), got '{split.name}'"
        )
    return problems


def load_graph_dataset(
    dataset: DatasetCfg, split: SplitCfg, data_root: str | Path, raw_mirror: str | Path | None
) -> GraphDataset:
    """Stage, build and convert ``dataset`` with its graph-level loader, under a per-dataset file lock."""
    if dataset.loader not in GRAPH_LOADERS:
        raise unknown_choice("graph-level dataset loader (dataset.loader)", dataset.loader, GRAPH_LOADERS)
    root = Path(data_root).expanduser()
    mirror = Path(raw_mirror).expanduser() if raw_mirror else None
    check_data_root(root, mirror)
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{dataset.loader}-{dataset.pyg_name}.lock")):
        loaded = GRAPH_LOADERS[dataset.loader](LoadRequest(dataset, split, root, mirror))
    for part, size in loaded.split.sizes().items():
        if size == 0:
            raise DataError(f"dataset {dataset.name!r} has no {part} graphs (dataset.limit={dataset.limit})")
    return loaded
