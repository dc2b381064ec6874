"""OGB node-property-prediction datasets (Hu et al. 2020) through ogb's own ``PygNodePropPredDataset``.

Covers what the loader needs besides the class itself: the raw layout ogb reads (so it can be staged from
the mirror), the ``RELEASE_v<version>.txt`` marker, the torch >= 2.6 ``weights_only`` workaround, and
OGB's official evaluator. The facts come from ogb 1.3.6's ``nodeproppred/master.csv`` (the table ogb
itself reads), so the staged file list is exactly what ``PygNodePropPredDataset.process`` opens.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ogb
import torch
from torch import Tensor
from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
from torch_geometric.data.storage import GlobalStorage

from grand_bench.data.errors import unknown_choice

# Only ogbn-arxiv is served (GRAND Table 2); the other homogeneous OGB node datasets share the layout but
# are far beyond what this project trains full-batch on a CPU.
OGB_NODE_NAMES = ("ogbn-arxiv",)
SPLIT_PARTS = ("train", "valid", "test")


@dataclass(frozen=True)
class OgbLayout:
    """Where ogb expects one dataset's files, relative to the ``root`` handed to the dataset class."""

    dir_name: str  # ogbn-arxiv -> ogbn_arxiv
    raw_files: tuple[str, ...]  # under <dir_name>/raw
    split_dir: str  # <dir_name>/split/<split name>, e.g. split/time
    release_marker: str  # <dir_name>/RELEASE_v<version>.txt

    @property
    def raw_dir(self) -> str:
        return f"{self.dir_name}/raw"

    @property
    def split_files(self) -> tuple[str, ...]:
        return tuple(f"{part}.csv.gz" for part in SPLIT_PARTS)


def ogb_layout(name: str) -> OgbLayout:
    """The raw layout of OGB node dataset ``name`` as ogb 1.3.6 reads it (``read_csv_graph_raw``)."""
    if name not in OGB_NODE_NAMES:
        raise unknown_choice("OGB node dataset (dataset.pyg_name)", name, OGB_NODE_NAMES)
    import pandas as pd  # ogb's own dependency; imported here so that importing grand_bench stays fast

    master_csv = Path(ogb.__file__).parent / "nodeproppred" / "master.csv"
    meta = pd.read_csv(master_csv, index_col=0, keep_default_na=False)[name]
    files = ["edge", "num-node-list", "num-edge-list", "node-label"]
    if meta["has_node_attr"] == "True":
        files.append("node-feat")
    if meta["has_edge_attr"] == "True":
        files.append("edge-feat")
    for key in ("additional node files", "additional edge files"):
        if meta[key] != "None":
            files.extend(meta[key].split(","))
    dir_name = "_".join(name.split("-"))
    return OgbLayout(
        dir_name=dir_name,
        raw_files=tuple(f"{f}.csv.gz" for f in files),
        split_dir=f"{dir_name}/split/{meta['split']}",
        release_marker=f"{dir_name}/RELEASE_v{meta['version']}.txt",
    )


def ensure_release_marker(root: Path, layout: OgbLayout) -> None:
    """Write ogb's release marker into an existing dataset folder that lacks it.

    ogb asks on stdin whether to delete and re-download a dataset folder without
    ``RELEASE_v<version>.txt`` (``input()``, which fails in a batch job). Such a folder holds files staged
    from a mirror without the marker (the release the mirror holds), or is the empty folder a failed
    download left, which ogb then downloads into as usual.
    """
    folder = root / layout.dir_name
    marker = root / layout.release_marker
    if folder.is_dir() and not marker.is_file():
        marker.write_text("written by grand_bench after staging the raw files from the raw mirror\n")


@contextmanager
def ogb_safe_load() -> Iterator[None]:
    """Let ogb 1.3.6 ``torch.load`` its processed file on torch >= 2.6 (weights-only loading by default).

    ogb's ``PygNodePropPredDataset`` calls ``torch.load`` without ``weights_only``; the collated PyG Data
    references these three classes, which the weights-only unpickler refuses unless allow-listed
    (ecosystem.md B4; fixed on ogb master, unreleased).
    """
    with torch.serialization.safe_globals([DataEdgeAttr, DataTensorAttr, GlobalStorage]):
        yield


def ogb_accuracy(name: str, y_true: Tensor, y_pred: Tensor) -> float:
    """OGB's official metric for node dataset ``name`` (``Evaluator(name)``; accuracy for ogbn-arxiv).

    ``y_true`` and ``y_pred`` are class indices of the evaluated nodes, any shape with one entry per node.
    For ogbn-arxiv this equals plain accuracy, which is what the training loop computes.
    """
    from ogb.nodeproppred import Evaluator  # pulls in pandas and scikit-learn: import on use

    evaluator = Evaluator(name)
    out = evaluator.eval({"y_true": y_true.reshape(-1, 1).cpu(), "y_pred": y_pred.reshape(-1, 1).cpu()})
    return float(out[evaluator.eval_metric])
