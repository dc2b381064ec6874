"""Dataset loading: the LOADERS registry (one small function per PyG dataset family) and ``load_graph``.

A loader stages its raw files from the mirror into ``data_root`` and constructs the real PyG class
there; ``load_graph`` then applies the protocol steps shared by every family (geom-gcn masks, LCC,
feature normalisation, canonical edges). A new family is one loader function plus one LOADERS entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from filelock import FileLock
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset
from torch_geometric.datasets import Actor, Amazon, Coauthor, Planetoid, WebKB, WikipediaNetwork
from torch_geometric.io import read_npz

from grand_bench.config import DatasetCfg, SplitCfg
from grand_bench.data.errors import DataError, unknown_choice
from grand_bench.data.mirror import build_pyg, check_data_root, missing_raw_error, offline, stage_raw
from grand_bench.data.ogb_node import ensure_release_marker, ogb_layout, ogb_safe_load
from grand_bench.data.splits import (
    MASK_KEYS,
    check_split_cfg,
    geom_gcn_file,
    masks_from_indices,
    read_geom_gcn_masks,
)
from grand_bench.data.transforms import canonical_edges, largest_connected_component, normalize_features


@dataclass(frozen=True)
class LoadRequest:
    """What a loader gets: the configs and the (validated) writable root and read-only mirror."""

    dataset: DatasetCfg
    split: SplitCfg
    root: Path
    raw_mirror: Path | None


@dataclass(frozen=True)
class RawGraph:
    """What a loader returns: the full graph as PyG builds it, and where its geom-gcn split files are."""

    data: Data
    num_classes: int
    raw_dir: Path
    geom_gcn_prefix: str | None = None  # None: this family ships no geom-gcn split files
    official_split: dict[str, Tensor] | None = None  # OGB's get_idx_split(): {"train", "valid", "test"} indices


Loader = Callable[[LoadRequest], RawGraph]

PLANETOID_NAMES = ("Cora", "CiteSeer", "PubMed")
PLANETOID_RAW = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
PYG_GEOM_GCN_FILES = 10  # PyG's geom-gcn datasets always expect all ten split files
COAUTHOR_NAMES = ("CS", "Physics")
AMAZON_NAMES = ("Computers", "Photo")
WEBKB_NAMES = ("Texas", "Wisconsin", "Cornell")
WIKIPEDIA_NAMES = ("chameleon", "squirrel")  # crocodile has no geom-gcn files
ACTOR_NAMES = ("Actor",)
# The raw files of Pei et al.'s geom-gcn datasets, beside their ten split files.
GEOM_GCN_RAW = ("out1_node_feature_label.txt", "out1_graph_edges.txt")
# Zhu et al. 2020 (H2GCN) generated three syn-cora graphs at each of these edge-homophily levels.
SYN_CORA_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99, 1.0)
SYN_CORA_GRAPHS = (1, 2, 3)


def planetoid(req: LoadRequest) -> RawGraph:
    """Cora, CiteSeer, PubMed (Yang et al. 2016) via PyG ``Planetoid``, unnormalised features as in GRAND.

    For the geom_gcn protocol PyG keeps a separate raw folder ``<Name>/geom-gcn/raw`` holding the
    Planetoid files and the split files; the Planetoid files may come from the mirror's ``<Name>/raw``.
    """
    name = req.dataset.pyg_name
    if name not in PLANETOID_NAMES:
        raise unknown_choice("Planetoid dataset (dataset.pyg_name)", name, PLANETOID_NAMES)
    prefix = name.lower()
    files = [f"ind.{prefix}.{ext}" for ext in PLANETOID_RAW]
    geom = req.split.name == "geom_gcn"
    if geom:
        rel_dir = f"{name}/geom-gcn/raw"
        splits = [geom_gcn_file(Path(), prefix, k).name for k in range(PYG_GEOM_GCN_FILES)]
        missing = stage_raw(req.root, req.raw_mirror, rel_dir, splits)
        # PyG downloads (Planetoid and split files alike) only when a Planetoid file is absent, so
        # taking those from <Name>/raw while split files are missing would block that download.
        sources = (f"{name}/raw",) if not missing or offline() else ()
        missing += stage_raw(req.root, req.raw_mirror, rel_dir, files, sources=sources)
    else:
        rel_dir = f"{name}/raw"
        missing = stage_raw(req.root, req.raw_mirror, rel_dir, files)

    pyg_split = "geom-gcn" if geom else "public"
    ds = build_pyg(lambda: Planetoid(str(req.root), name, split=pyg_split), missing, req.raw_mirror)
    return RawGraph(ds[0], ds.num_classes, Path(ds.raw_dir), geom_gcn_prefix=prefix)


def coauthor(req: LoadRequest) -> RawGraph:
    """Coauthor CS (Shchur et al. 2018) via PyG ``Coauthor``; GRAND Table 2 (random splits on the LCC)."""
    name = _check_name(req, COAUTHOR_NAMES, "Coauthor")
    missing = stage_raw(req.root, req.raw_mirror, f"{name}/raw", [f"ms_academic_{name[:3].lower()}.npz"])
    ds = build_pyg(lambda: Coauthor(str(req.root), name), missing, req.raw_mirror)
    return RawGraph(ds[0], ds.num_classes, Path(ds.raw_dir))


def amazon(req: LoadRequest) -> RawGraph:
    """Amazon Computers / Photo (Shchur et al. 2018) via PyG ``Amazon``; GRAND Table 2 (random splits, LCC)."""
    name = _check_name(req, AMAZON_NAMES, "Amazon")
    raw_file = f"amazon_electronics_{name.lower()}.npz"
    missing = stage_raw(req.root, req.raw_mirror, f"{name}/raw", [raw_file])
    ds = build_pyg(lambda: Amazon(str(req.root), name), missing, req.raw_mirror)
    return RawGraph(ds[0], ds.num_classes, Path(ds.raw_dir))


def webkb(req: LoadRequest) -> RawGraph:
    """Texas, Wisconsin, Cornell (Pei et al. 2020) via PyG ``WebKB``, with their ten geom-gcn split files.

    PyG downloads Cornell's current files (upstream replaced them in July 2022); GRAFF's ``cornell_old``
    used the earlier ones.
    """
    name = _check_name(req, WEBKB_NAMES, "WebKB").lower()
    missing = stage_raw(req.root, req.raw_mirror, f"{name}/raw", _geom_gcn_raw_files(name))
    ds = build_pyg(lambda: WebKB(str(req.root), name), missing, req.raw_mirror)
    return RawGraph(ds[0], ds.num_classes, Path(ds.raw_dir), geom_gcn_prefix=name)


def wikipedia_network(req: LoadRequest) -> RawGraph:
    """Chameleon, Squirrel (Rozemberczki et al. 2021) in Pei et al.'s geom-gcn preprocessing.

    PyG ``WikipediaNetwork(geom_gcn_preprocess=True)`` reads ``<name>/geom_gcn/raw``: the geom-gcn node
    and edge files (5 label classes) and the ten split files. The raw graph is directed with self-loops;
    ``load_graph`` makes it undirected without them, as GRAFF's ``hetero_undir`` did.
    """
    name = _check_name(req, WIKIPEDIA_NAMES, "WikipediaNetwork").lower()
    missing = stage_raw(req.root, req.raw_mirror, f"{name}/geom_gcn/raw", _geom_gcn_raw_files(name))
    factory = partial(WikipediaNetwork, str(req.root), name, geom_gcn_preprocess=True)
    ds = build_pyg(factory, missing, req.raw_mirror)
    return RawGraph(ds[0], ds.num_classes, Path(ds.raw_dir), geom_gcn_prefix=name)


def actor(req: LoadRequest) -> RawGraph:
    """Actor / film (Pei et al. 2020) via PyG ``Actor(<root>/Actor)``; its split files are named ``film_*``."""
    name = _check_name(req, ACTOR_NAMES, "Actor")
    missing = stage_raw(req.root, req.raw_mirror, f"{name}/raw", _geom_gcn_raw_files("film"))
    ds = build_pyg(lambda: Actor(str(req.root / name)), missing, req.raw_mirror)
    return RawGraph(ds[0], ds.num_classes, Path(ds.raw_dir), geom_gcn_prefix="film")


def ogb_node(req: LoadRequest) -> RawGraph:
    """ogbn-arxiv (Hu et al. 2020) via ogb's ``PygNodePropPredDataset`` with its official (time) split.

    The raw layout is OGB's: ``<root>/ogbn_arxiv/raw/*.csv.gz``, ``split/time/{train,valid,test}.csv.gz``
    and ``RELEASE_v1.txt``. The graph is directed as shipped; ``load_graph`` makes it undirected, as GRAND
    did. ogb downloads the whole dataset only into an empty folder, so a mirror holding part of it is an error.
    """
    name = req.dataset.pyg_name
    layout = ogb_layout(name)
    missing = stage_raw(req.root, req.raw_mirror, layout.raw_dir, layout.raw_files)
    missing += stage_raw(req.root, req.raw_mirror, layout.split_dir, layout.split_files)
    total = len(layout.raw_files) + len(layout.split_files)
    if missing and len(missing) < total:
        raise missing_raw_error(missing, req.raw_mirror, why="ogb downloads a dataset only into an empty folder")
    stage_raw(req.root, req.raw_mirror, layout.dir_name, [Path(layout.release_marker).name])
    ensure_release_marker(req.root, layout)

    def open_dataset() -> tuple[InMemoryDataset, dict[str, Tensor]]:
        from ogb.nodeproppred import PygNodePropPredDataset  # pulls in pandas and scikit-learn: import on use

        with ogb_safe_load():
            ds = PygNodePropPredDataset(name, str(req.root))
            return ds, ds.get_idx_split()

    ds, idx = build_pyg(open_dataset, missing, req.raw_mirror)
    return RawGraph(ds[0], ds.num_classes, Path(ds.raw_dir), official_split=idx)


def syn_cora(req: LoadRequest) -> RawGraph:
    """syn-cora (Zhu et al. 2020, H2GCN): Cora features on generated graphs of controlled edge homophily.

    ``dataset.homophily`` picks the level and ``dataset.graph`` one of its three graphs; the file
    ``syn-cora/raw/h<level:.2f>-r<graph>.npz`` is read with PyG's ``read_npz`` (PyG has no class for it,
    so nothing downloads it). Splits: see conf/dataset/syn_cora.yaml.
    """
    level, graph = _syn_cora_choice(req.dataset)
    rel_dir = "syn-cora/raw"
    file_name = f"h{level:.2f}-r{graph}.npz"
    missing = stage_raw(req.root, req.raw_mirror, rel_dir, [file_name])
    if missing:
        raise missing_raw_error(missing, req.raw_mirror, why="PyG has no class for syn-cora, so none can download it")
    data = read_npz(str(req.root / rel_dir / file_name))
    return RawGraph(data, int(data.y.max()) + 1, req.root / rel_dir)


def _check_name(req: LoadRequest, valid: tuple[str, ...], family: str) -> str:
    name = req.dataset.pyg_name
    if name not in valid:
        raise unknown_choice(f"{family} dataset (dataset.pyg_name)", name, valid)
    return name


def _geom_gcn_raw_files(prefix: str) -> list[str]:
    return [*GEOM_GCN_RAW, *(geom_gcn_file(Path(), prefix, k).name for k in range(PYG_GEOM_GCN_FILES))]


def _syn_cora_choice(dataset: DatasetCfg) -> tuple[float, int]:
    levels = [f"{h:.2f}" for h in SYN_CORA_LEVELS]
    if dataset.homophily is None:
        raise DataError(f"dataset {dataset.name!r} needs dataset.homophily; valid: {', '.join(levels)}")
    level = next((h for h in SYN_CORA_LEVELS if math.isclose(h, dataset.homophily, abs_tol=1e-6)), None)
    if level is None:
        raise unknown_choice("syn-cora homophily level (dataset.homophily)", dataset.homophily, levels)
    if dataset.graph not in SYN_CORA_GRAPHS:
        raise unknown_choice("syn-cora graph (dataset.graph)", dataset.graph, map(str, SYN_CORA_GRAPHS))
    return level, dataset.graph


LOADERS: dict[str, Loader] = {
    "planetoid": planetoid,
    "coauthor": coauthor,
    "amazon": amazon,
    "webkb": webkb,
    "wikipedia_network": wikipedia_network,
    "actor": actor,
    "ogb_node": ogb_node,
    "syn_cora": syn_cora,
}


def load_raw(dataset: DatasetCfg, split: SplitCfg, data_root: str | Path, raw_mirror: str | Path | None) -> RawGraph:
    """Stage and build ``dataset`` with its loader: the full graph exactly as PyG (or ogb) builds it.

    Validates the loader name, the split config and the data root first; holds a per-dataset file lock
    while staging and processing. ``load_graph`` builds on this; the dataset report reads PyG's own counts
    from it.
    """
    if dataset.loader not in LOADERS:
        raise unknown_choice("dataset loader", dataset.loader, LOADERS)
    check_split_cfg(split)
    root = Path(data_root).expanduser()
    mirror = Path(raw_mirror).expanduser() if raw_mirror else None
    check_data_root(root, mirror)
    root.mkdir(parents=True, exist_ok=True)

    # Parallel runs (Ray trials, multirun) share data_root: one stages and processes, the rest wait.
    with FileLock(str(root / f".{dataset.loader}-{dataset.pyg_name}.lock")):
        return LOADERS[dataset.loader](LoadRequest(dataset, split, root, mirror))


def load_graph(dataset: DatasetCfg, split: SplitCfg, data_root: str | Path, raw_mirror: str | Path | None) -> Data:
    """Load ``dataset`` as one graph ready for ``split``.

    Returns a Data with ``x`` float32, ``y`` int64 [N], ``edge_index`` coalesced, without self-loops and
    undirected unless ``dataset.edge_direction`` says, ``num_classes``, and the masks the split protocol
    needs: the Planetoid public masks [N] (public), the geom-gcn masks [N, num_splits] read from the
    split files (geom_gcn), OGB's official split as [N] masks (official), none (random). With
    ``split.lcc`` the graph is restricted to its largest connected component after the geom-gcn masks
    are attached, so they are restricted with it (GRAFF's handling of Cora, reference §5.4).
    ``dataset.normalize_features`` row-normalises ``x``.
    """
    raw = load_raw(dataset, split, data_root, raw_mirror)
    data = Data(x=raw.data.x.float(), y=raw.data.y.view(-1).long(), num_nodes=raw.data.num_nodes)
    data.edge_index = canonical_edges(raw.data.edge_index, data.num_nodes, dataset.edge_direction)
    for key, mask in _split_masks(raw, dataset, split, data.num_nodes).items():
        data[key] = mask

    if split.lcc:
        data = _lcc_keeping_classes(data, raw.num_classes, dataset.name)
    if dataset.normalize_features:
        data = normalize_features(data)
    data.num_classes = int(raw.num_classes)
    _check_graph(data)
    return data


def _split_masks(raw: RawGraph, dataset: DatasetCfg, split: SplitCfg, num_nodes: int) -> dict[str, Tensor]:
    """The masks ``split`` needs on the full graph: none for random splits (drawn later, per split index)."""
    if split.name == "public":
        masks = {key: getattr(raw.data, key, None) for key in MASK_KEYS}
        # WebKB & co. carry [N, 10] geom-gcn masks under the same names: those are no public split.
        if any(m is None or m.dim() != 1 for m in masks.values()):
            raise DataError(f"dataset {dataset.name!r} has no public split masks; use split=random or split=geom_gcn")
        return masks
    if split.name == "geom_gcn":
        if raw.geom_gcn_prefix is None:
            raise DataError(
                f"dataset {dataset.name!r} (loader {dataset.loader!r}) has no geom-gcn split files; use split=random"
            )
        return read_geom_gcn_masks(raw.raw_dir, raw.geom_gcn_prefix, split.num_splits, num_nodes)
    if split.name == "official":
        if raw.official_split is None:
            raise DataError(
                f"dataset {dataset.name!r} has no official split (only OGB datasets ship one); use split=random"
            )
        return masks_from_indices(raw.official_split, num_nodes)
    return {}


def _lcc_keeping_classes(data: Data, num_classes: int, name: str) -> Data:
    # A component can hold whole classes only (syn-cora at homophily 1.00 is five one-class components);
    # a split on such an LCC cannot be drawn, so say so instead of failing later in the split.
    lcc = largest_connected_component(data)
    present = int(torch.unique(lcc.y).numel())
    if present < num_classes:
        raise DataError(
            f"dataset {name!r}: the largest connected component ({lcc.num_nodes} of {data.num_nodes} nodes) holds "
            f"{present} of {num_classes} classes; set split.lcc=false"
        )
    return lcc


def _check_graph(data: Data) -> None:
    # The contract the models rely on; cheap, and catches a loader that returned something odd.
    if data.x.dtype != torch.float32 or data.y.dtype != torch.long or data.y.dim() != 1:
        raise DataError(f"loader produced x {data.x.dtype} / y {data.y.dtype} {tuple(data.y.shape)}")
    if data.x.size(0) != data.num_nodes or data.y.size(0) != data.num_nodes:
        raise DataError(
            f"loader produced {data.x.size(0)} feature rows, {data.y.size(0)} labels, {data.num_nodes} nodes"
        )
