"""Dataset loading: the LOADERS registry (one small function per PyG dataset family) and ``load_graph``.

A loader stages its raw files from the mirror into ``data_root`` and constructs the real PyG class
there; ``load_graph`` then applies the protocol steps shared by every family (geom-gcn masks, LCC,
feature normalisation, canonical edges). A new family is one loader function plus one LOADERS entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock
from torch_geometric.data import Data
from torch_geometric.datasets import Planetoid

from grand_bench.config import DatasetCfg, SplitCfg
from grand_bench.data.errors import DataError, unknown_choice
from grand_bench.data.mirror import build_pyg, check_data_root, offline, stage_raw
from grand_bench.data.splits import MASK_KEYS, check_split_cfg, geom_gcn_file, read_geom_gcn_masks
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


Loader = Callable[[LoadRequest], RawGraph]

PLANETOID_NAMES = ("Cora", "CiteSeer", "PubMed")
PLANETOID_RAW = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
PYG_GEOM_GCN_FILES = 10  # PyG's geom-gcn datasets always expect all ten split files


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


LOADERS: dict[str, Loader] = {
    "planetoid": planetoid,
}


def load_graph(dataset: DatasetCfg, split: SplitCfg, data_root: str | Path, raw_mirror: str | Path | None) -> Data:
    """Load ``dataset`` as one graph ready for ``split``.

    Returns a Data with ``x`` float32, ``y`` int64 [N], ``edge_index`` undirected/coalesced/without
    self-loops, ``num_classes``, and the masks the split protocol needs: the Planetoid public masks
    [N] (public), the geom-gcn masks [N, num_splits] read from the split files (geom_gcn), none
    (random). With ``split.lcc`` the graph is restricted to its largest connected component after
    the geom-gcn masks are attached, so they are restricted with it (GRAFF's handling of Cora,
    reference §5.4). ``dataset.normalize_features`` row-normalises ``x``.
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
        raw = LOADERS[dataset.loader](LoadRequest(dataset, split, root, mirror))
    data = Data(x=raw.data.x.float(), y=raw.data.y.view(-1).long(), num_nodes=raw.data.num_nodes)
    data.edge_index = canonical_edges(raw.data.edge_index, data.num_nodes)

    if split.name == "public":
        for key in MASK_KEYS:
            if getattr(raw.data, key, None) is None:
                raise DataError(f"dataset {dataset.name!r} has no public split masks; use split=random")
            data[key] = getattr(raw.data, key)
    elif split.name == "geom_gcn":
        if raw.geom_gcn_prefix is None:
            raise DataError(
                f"dataset {dataset.name!r} (loader {dataset.loader!r}) has no geom-gcn split files; use split=random"
            )
        masks = read_geom_gcn_masks(raw.raw_dir, raw.geom_gcn_prefix, split.num_splits, data.num_nodes)
        for key, mask in masks.items():
            data[key] = mask

    if split.lcc:
        data = largest_connected_component(data)
    if dataset.normalize_features:
        data = normalize_features(data)
    data.num_classes = int(raw.num_classes)
    _check_graph(data)
    return data


def _check_graph(data: Data) -> None:
    # The contract the models rely on; cheap, and catches a loader that returned something odd.
    if data.x.dtype != torch.float32 or data.y.dtype != torch.long or data.y.dim() != 1:
        raise DataError(f"loader produced x {data.x.dtype} / y {data.y.dtype} {tuple(data.y.shape)}")
    if data.x.size(0) != data.num_nodes or data.y.size(0) != data.num_nodes:
        raise DataError(
            f"loader produced {data.x.size(0)} feature rows, {data.y.size(0)} labels, {data.num_nodes} nodes"
        )
