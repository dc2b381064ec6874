"""MNIST images as superpixel graphs (Monti et al. 2017), built here from the raw MNIST idx files.

Recipe (Knyazev et al. 2019, ``extract_superpixels.py``, which Dwivedi et al.'s benchmark also uses):

* the image is scaled to [0, 1] and segmented by SLIC (scikit-image, ``compactness`` 0.25, no smoothing);
  SLIC is asked for ``max_segments + 20`` segments and the request is lowered by one until it returns at
  most ``max_segments`` (75), so graphs have at most 75 nodes (SLIC rarely returns exactly what it is asked);
* node i = segment i (SLIC's label order), features ``[intensity, x, y]``: the mean intensity of its pixels
  in [0, 1], and the centroid of its pixels as column / 28 and row / 28, in [0, 1);
* edges: every node is joined to its ``knn`` (8) nearest centroids (Euclidean, ties by node index), and the
  graph is made undirected (the union of both directions), without self-loops.

Everything is deterministic: SLIC has no randomness, the k-NN sort is stable. Graphs are built in chunks of
``CHUNK`` consecutive images, each cached as one file under ``<data_root>/MNIST/processed/<tag>/``; an
interrupted build resumes with the chunks still missing, and a ``limit`` builds only the first images.

``python -m grand_bench.data.superpixels --data-root data`` builds the whole set and prints its statistics.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from skimage.segmentation import slic
from torch.utils.data import Dataset
from torch_geometric.data import Data
from tqdm.auto import tqdm

from grand_bench.data.errors import DataError

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_SIZE = 28
CHUNK = 1000  # images per cache file: the unit of resumption


@dataclass(frozen=True)
class SuperpixelParams:
    """How an image becomes a graph; ``tag`` names the cache folder, so other values never share a cache."""

    max_segments: int = 75
    knn: int = 8
    compactness: float = 0.25
    query_extra: int = 20  # SLIC is first asked for max_segments + query_extra segments (Knyazev: 20 for MNIST)

    @property
    def tag(self) -> str:
        return f"superpixels_slic{self.max_segments}_c{self.compactness:g}_knn{self.knn}"


def read_idx(path: Path) -> np.ndarray:
    """An idx file (LeCun's MNIST format): big-endian header, magic 0x0000 08 <ndim>, then uint8 data."""
    raw = path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an uncompressed uint8 idx file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: header says {shape} but holds {data.size} values (truncated file?)")
    return data.reshape(shape)


def segment(image: np.ndarray, params: SuperpixelParams) -> np.ndarray:
    """SLIC label map [28, 28] (labels 0..n-1) with n <= ``params.max_segments``."""
    scaled = image.astype(np.float64) / 255.0
    query = params.max_segments + params.query_extra
    while True:
        labels = slic(scaled, n_segments=query, compactness=params.compactness, channel_axis=None, start_label=0)
        if labels.max() + 1 <= params.max_segments or query <= 1:
            return labels
        query -= 1


def knn_edges(pos: np.ndarray, k: int) -> np.ndarray:
    """Undirected k-nearest-neighbour edges of points ``pos`` [n, 2]: int64 [2, E], sorted, no self-loops."""
    n = pos.shape[0]
    if n < 2:
        return np.zeros((2, 0), dtype=np.int64)
    dist = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    nearest = np.argsort(dist, axis=1, kind="stable")[:, : min(k, n - 1)]
    src = nearest.reshape(-1)
    dst = np.repeat(np.arange(n), nearest.shape[1])
    pairs = np.unique(np.concatenate([src * n + dst, dst * n + src]))  # both directions, sorted, deduplicated
    return np.stack([pairs // n, pairs % n])


def image_graph(image: np.ndarray, params: SuperpixelParams) -> tuple[np.ndarray, np.ndarray]:
    """Node features float32 [n, 3] = [intensity, x, y] and edges int64 [2, E] of one 28x28 uint8 image."""
    labels = segment(image, params).ravel()
    count = np.bincount(labels)
    rows, cols = np.divmod(np.arange(labels.size), IMAGE_SIZE)
    intensity = np.bincount(labels, weights=image.ravel() / 255.0) / count
    x = np.bincount(labels, weights=cols) / count / IMAGE_SIZE
    y = np.bincount(labels, weights=rows) / count / IMAGE_SIZE
    features = np.stack([intensity, x, y], axis=1).astype(np.float32)
    return features, knn_edges(features[:, 1:].astype(np.float64), params.knn)


def _graph_task(args: tuple[np.ndarray, SuperpixelParams]) -> tuple[np.ndarray, np.ndarray]:
    return image_graph(*args)


class PackedGraphs(Dataset):
    """Many small graphs in flat tensors; item i is a PyG ``Data`` (x, edge_index, y [1]) made on access.

    70,000 graphs as 70,000 ``Data`` objects would cost far more memory than their tensors; here node features
    and edges (local indices, uint8) are concatenated, with per-graph offsets. ``subset`` is a view.
    """

    def __init__(
        self,
        x: torch.Tensor,
        num_nodes: torch.Tensor,
        edge_index: torch.Tensor,
        num_edges: torch.Tensor,
        y: torch.Tensor,
        index: torch.Tensor | None = None,
    ) -> None:
        self.x, self.num_nodes, self.edge_index, self.num_edges, self.y = x, num_nodes, edge_index, num_edges, y
        self.node_ptr = torch.cat([torch.zeros(1, dtype=torch.long), num_nodes.long().cumsum(0)])
        self.edge_ptr = torch.cat([torch.zeros(1, dtype=torch.long), num_edges.long().cumsum(0)])
        self.index = torch.arange(y.numel()) if index is None else index

    def __len__(self) -> int:
        return self.index.numel()

    def __getitem__(self, i: int) -> Data:
        j = int(self.index[i])
        a, b = int(self.node_ptr[j]), int(self.node_ptr[j + 1])
        c, d = int(self.edge_ptr[j]), int(self.edge_ptr[j + 1])
        return Data(x=self.x[a:b], edge_index=self.edge_index[:, c:d].long(), y=self.y[j : j + 1])

    def subset(self, index: torch.Tensor) -> PackedGraphs:
        view = object.__new__(PackedGraphs)
        view.__dict__.update(self.__dict__)
        view.index = self.index[index]
        return view

    @classmethod
    def concat(cls, parts: Sequence[dict[str, torch.Tensor]]) -> PackedGraphs:
        keys = ("x", "num_nodes", "edge_index", "num_edges", "y")
        dims = {"edge_index": 1}
        return cls(*(torch.cat([p[k] for p in parts], dim=dims.get(k, 0)) for k in keys))


def pack(graphs: Sequence[tuple[np.ndarray, np.ndarray]], labels: np.ndarray) -> dict[str, torch.Tensor]:
    """One chunk's graphs as flat tensors (the PackedGraphs fields)."""
    return {
        "x": torch.from_numpy(np.concatenate([g[0] for g in graphs])),
        "num_nodes": torch.tensor([g[0].shape[0] for g in graphs], dtype=torch.int16),
        "edge_index": torch.from_numpy(np.concatenate([g[1] for g in graphs], axis=1).astype(np.uint8)),
        "num_edges": torch.tensor([g[1].shape[1] for g in graphs], dtype=torch.int32),
        "y": torch.from_numpy(labels.astype(np.int64)),
    }


def chunk_ranges(total: int, chunk: int = CHUNK) -> list[tuple[int, int]]:
    return [(start, min(start + chunk, total)) for start in range(0, total, chunk)]


class SuperpixelCache:
    """The chunk files of one parameter set: ``<cache_dir>/<split>_<start>_<end>.pt``."""

    def __init__(self, cache_dir: Path, params: SuperpixelParams) -> None:
        self.dir, self.params = cache_dir, params

    def path(self, split: str, start: int, end: int) -> Path:
        return self.dir / f"{split}_{start:05d}_{end:05d}.pt"

    def find(self, split: str, start: int, end: int) -> Path | None:
        """A cached chunk starting at ``start`` that covers at least up to ``end`` (a larger one is sliced)."""
        exact = self.path(split, start, end)
        if exact.is_file():
            return exact
        for candidate in sorted(self.dir.glob(f"{split}_{start:05d}_*.pt")):
            if int(candidate.stem.rsplit("_", 1)[1]) >= end:
                return candidate
        return None

    def save(self, split: str, start: int, end: int, chunk: dict, timing: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        target = self.path(split, start, end)
        tmp = target.with_suffix(".tmp")
        torch.save({**chunk, **timing, "params": asdict(self.params)}, tmp)
        os.replace(tmp, target)  # a chunk file is complete or absent, never half-written
        for smaller in self.dir.glob(f"{split}_{start:05d}_*.pt"):  # a larger chunk replaces shorter ones
            if int(smaller.stem.rsplit("_", 1)[1]) < end:
                smaller.unlink()


def load_images(raw_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    image_file, label_file = MNIST_FILES[split]
    images, labels = read_idx(raw_dir / image_file), read_idx(raw_dir / label_file)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or labels.shape != images.shape[:1]:
        raise DataError(f"MNIST {split} files in {raw_dir}: images {images.shape}, labels {labels.shape}")
    return images, labels


def build_split(
    raw_dir: Path,
    cache_dir: Path,
    split: str,
    params: SuperpixelParams,
    limit: int | None = None,
    workers: int = 1,
    progress: bool = True,
    chunk: int = CHUNK,
) -> tuple[PackedGraphs, list[dict]]:
    """The first ``limit`` (default all) images of ``split`` as graphs, building the chunks not yet cached.

    Chunks are ``chunk`` consecutive images (the last one shorter); a cached chunk with the same start that
    covers more images is sliced. Returns the graphs and one info dict per chunk (build ``seconds``, ``workers``).
    """
    images, labels = load_images(raw_dir, split)
    total = len(labels) if limit is None else min(limit, len(labels))
    cache = SuperpixelCache(cache_dir, params)
    ranges = chunk_ranges(total, chunk)
    todo = [(s, e) for s, e in ranges if cache.find(split, s, e) is None]
    if todo:
        _build_chunks(cache, split, images, labels, todo, workers, progress)
    parts, infos = [], []
    for start, end in ranges:
        stored = torch.load(cache.find(split, start, end), weights_only=True)
        parts.append(_slice_chunk(stored, end - start))
        infos.append({key: stored[key] for key in ("seconds", "cpu_seconds", "workers")} | {"graphs": end - start})
    return PackedGraphs.concat(parts), infos


def _build_chunks(
    cache: SuperpixelCache,
    split: str,
    images: np.ndarray,
    labels: np.ndarray,
    todo: list[tuple[int, int]],
    workers: int,
    progress: bool,
) -> None:
    count = sum(e - s for s, e in todo)
    bar = tqdm(total=count, desc=f"MNIST {split} superpixels", unit="img", disable=not progress, dynamic_ncols=True)
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        for start, end in todo:
            began, began_cpu = time.perf_counter(), time.process_time()
            tasks = ((images[i], cache.params) for i in range(start, end))
            results = pool.imap(_graph_task, tasks, chunksize=25) if pool else map(_graph_task, tasks)
            graphs = []
            for graph in results:
                graphs.append(graph)
                bar.update()
            chunk = pack(graphs, labels[start:end])
            # CPU seconds of this process: the build's own CPU time when serial (workers' time is not counted)
            cpu = time.process_time() - began_cpu if pool is None else float("nan")
            cache.save(
                split,
                start,
                end,
                chunk,
                {"seconds": time.perf_counter() - began, "cpu_seconds": cpu, "workers": workers},
            )
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()


def _slice_chunk(stored: dict, graphs: int) -> dict[str, torch.Tensor]:
    if stored["y"].numel() == graphs:
        return {k: stored[k] for k in ("x", "num_nodes", "edge_index", "num_edges", "y")}
    nodes = int(stored["num_nodes"][:graphs].long().sum())
    edges = int(stored["num_edges"][:graphs].long().sum())
    return {
        "x": stored["x"][:nodes],
        "num_nodes": stored["num_nodes"][:graphs],
        "edge_index": stored["edge_index"][:, :edges],
        "num_edges": stored["num_edges"][:graphs],
        "y": stored["y"][:graphs],
    }


def statistics(graphs: PackedGraphs, infos: list[dict]) -> dict[str, float]:
    """Graphs, mean nodes and edges (directed edge_index entries, PyG's count) per graph, build seconds.

    ``build_seconds`` is wall-clock time; ``build_cpu_seconds`` the CPU time of serial builds (NaN if any chunk was
    built in parallel), the one-core cost whatever else the machine was doing.
    """
    return {
        "graphs": len(graphs),
        "mean_nodes": float(graphs.num_nodes.float().mean()),
        "min_nodes": int(graphs.num_nodes.min()),
        "max_nodes": int(graphs.num_nodes.max()),
        "mean_edges": float(graphs.num_edges.float().mean()),
        "build_seconds": sum(i["seconds"] for i in infos),
        "build_cpu_seconds": sum(i["cpu_seconds"] for i in infos),
        "workers": max((i["workers"] for i in infos), default=1),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Build (or reuse) the superpixel cache under a data root and print its statistics as JSON."""
    from grand_bench.data.mirror import check_data_root, missing_raw_error, stage_raw

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=os.environ.get("GRAND_BENCH_DATA", "data"))
    parser.add_argument("--raw-mirror", default=os.environ.get("GRAND_BENCH_RAW"))
    parser.add_argument("--workers", type=int, default=1, help="processes for the SLIC build")
    parser.add_argument("--limit", type=int, default=None, help="only the first LIMIT images of each file")
    args = parser.parse_args(argv)
    root, mirror = Path(args.data_root), Path(args.raw_mirror) if args.raw_mirror else None
    check_data_root(root, mirror)
    files = [name for pair in MNIST_FILES.values() for name in pair]
    missing = stage_raw(root, mirror, "MNIST/raw", files)
    if missing:
        raise SystemExit(str(missing_raw_error(missing, mirror, why="no download from this command")))
    params = SuperpixelParams()
    out = {"params": asdict(params)}
    cache_dir = root / "MNIST/processed" / params.tag
    for split in MNIST_FILES:
        graphs, infos = build_split(root / "MNIST/raw", cache_dir, split, params, args.limit, args.workers)
        out[split] = statistics(graphs, infos)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
