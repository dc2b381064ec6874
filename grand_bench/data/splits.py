"""Train/validation/test split protocols: Planetoid public masks, Shchur-style random splits, the geom-gcn
fixed split files, class-stratified random fractions, and OGB's official split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from grand_bench.config import DatasetCfg, SplitCfg
from grand_bench.data.errors import DataError, unknown_choice

SPLITS: tuple[str, ...] = ("public", "random", "geom_gcn", "stratified", "official")
# Protocols whose masks are defined on the full graph as shipped, so the LCC must not be taken first.
FULL_GRAPH_SPLITS = ("public", "official")
MASK_KEYS = ("train_mask", "val_mask", "test_mask")


@dataclass(frozen=True, eq=False)  # eq=False: tensor fields make a generated __eq__ ambiguous
class Split:
    """Node indices of one split: sorted, unique, int64, pairwise disjoint (checked on construction)."""

    train: Tensor
    val: Tensor
    test: Tensor

    def __post_init__(self) -> None:
        for part in ("train", "val", "test"):
            idx = getattr(self, part)
            if idx.dtype != torch.long or idx.dim() != 1:
                shape = tuple(idx.shape)
                raise DataError(f"split part {part!r} must be a 1-D int64 index tensor, got {idx.dtype} {shape}")
            if idx.numel() > 1 and not bool((idx[1:] > idx[:-1]).all()):
                raise DataError(f"split part {part!r} must be sorted and without duplicates")
        every = torch.cat([self.train, self.val, self.test])
        if every.unique().numel() != every.numel():
            raise DataError("split parts overlap: train, val and test must be pairwise disjoint")

    def sizes(self) -> dict[str, int]:
        """Number of nodes in each part, e.g. ``{"train": 140, "val": 500, "test": 1000}``."""
        return {"train": self.train.numel(), "val": self.val.numel(), "test": self.test.numel()}


def check_split_cfg(split: SplitCfg) -> None:
    """Validate the split name and its settings (geom_gcn's index, stratified's fractions) before any data
    is loaded."""
    if split.name not in SPLITS:
        raise unknown_choice("split", split.name, SPLITS)
    if split.name in FULL_GRAPH_SPLITS and split.lcc:
        what = "Planetoid public masks" if split.name == "public" else "OGB official split indices"
        raise DataError(
            f"split {split.name!r} with lcc=true: the {what} are defined on the full graph; "
            "set split.lcc=false (or use split=random for LCC splits)"
        )
    if split.name == "geom_gcn":
        _check_geom_gcn_index(split.index, split.num_splits)
    if split.name == "stratified":
        train, val = split.train_fraction, split.val_fraction
        if not (0 < train < 1 and 0 < val < 1 and train + val < 1):
            raise DataError(
                f"split.train_fraction={train} and split.val_fraction={val} must be in (0, 1) and leave a test "
                "share (train_fraction + val_fraction < 1), e.g. 0.48 and 0.32"
            )


def make_split(data: Data, split: SplitCfg, dataset: DatasetCfg) -> Split:
    """The split ``split.name`` of the graph ``data`` as returned by ``load_graph``."""
    check_split_cfg(split)
    if split.name in FULL_GRAPH_SPLITS:
        return _from_masks(data, column=None, protocol=split.name)
    if split.name == "geom_gcn":
        return _from_masks(data, column=split.index, protocol="geom_gcn")
    if split.name == "stratified":
        return stratified_split(data.y, split.index, split.train_fraction, split.val_fraction)
    return random_split(data.y, split.index, dataset.dev_size, split.train_per_class)


def random_split(y: Tensor, seed: int, dev_size: int, train_per_class: int) -> Split:
    """Random split of GRAND Table 2 after Shchur et al. 2018 (reference §1.6, ``set_train_val_test_split``).

    With ``numpy.random.RandomState(seed)``: a development set of ``dev_size`` nodes uniformly without
    replacement; from it ``train_per_class`` nodes of each class for training; the rest of the
    development set is validation and every node outside it is test. Deterministic in ``seed``.
    """
    labels = y.view(-1).cpu().numpy()
    num_nodes = labels.shape[0]
    rng = _seeded_rng(seed, "random")
    if not 0 < dev_size <= num_nodes:
        raise DataError(f"dataset.dev_size {dev_size} must be in [1, {num_nodes}] (the number of nodes)")
    dev = rng.choice(num_nodes, dev_size, replace=False)
    # The reference code re-seeds for the per-class draw; kept so the same seed gives its split.
    rng = np.random.RandomState(seed)
    train = []
    for c in range(int(labels.max()) + 1):
        in_class = dev[labels[dev] == c]
        if in_class.shape[0] < train_per_class:
            raise DataError(
                f"class {c} has {in_class.shape[0]} nodes in the development set of {dev_size}, fewer than "
                f"split.train_per_class={train_per_class}; lower train_per_class or raise dataset.dev_size"
            )
        train.append(rng.choice(in_class, train_per_class, replace=False))
    train_idx = np.sort(np.concatenate(train))
    val_idx = np.setdiff1d(dev, train_idx)  # setdiff1d returns sorted unique values
    test_idx = np.setdiff1d(np.arange(num_nodes), dev)
    return _split_of(train_idx, val_idx, test_idx)


def stratified_split(y: Tensor, seed: int, train_fraction: float, val_fraction: float) -> Split:
    """Class-stratified random split: each class's nodes shuffled by ``numpy.random.RandomState(seed)``, the
    first ``round(train_fraction * n_c)`` trained on, the next ``round(val_fraction * n_c)`` validation, the
    rest test. Deterministic in ``seed``.

    At 0.48 / 0.32 these are the proportions of the geom-gcn split files (Pei et al. 2020: 60/20/20 per class,
    the 60 cut again 80/20), drawn the same way: a stand-in where the files are missing, not those splits.
    """
    labels = y.view(-1).cpu().numpy()
    rng = _seeded_rng(seed, "stratified")
    parts: tuple[list[np.ndarray], ...] = ([], [], [])
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_train = int(round(train_fraction * members.size))
        n_val = int(round(val_fraction * members.size))
        for part, chunk in zip(parts, np.split(members, [n_train, n_train + n_val]), strict=True):
            part.append(chunk)
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    for name, idx in (("train", train), ("val", val), ("test", test)):
        if idx.size == 0:
            raise DataError(
                f"stratified split leaves the {name} part empty ({labels.size} nodes); change the fractions"
            )
    return _split_of(train, val, test)


def _seeded_rng(seed: int, protocol: str) -> np.random.RandomState:
    if not 0 <= seed < 2**32:
        raise DataError(f"{protocol} split index {seed} must be in [0, 2**32) (it seeds numpy's RandomState)")
    return np.random.RandomState(seed)


def _split_of(train: np.ndarray, val: np.ndarray, test: np.ndarray) -> Split:
    return Split(*(torch.from_numpy(a.astype(np.int64)) for a in (train, val, test)))


def _from_masks(data: Data, column: int | None, protocol: str) -> Split:
    """Indices from boolean masks: 1-D (public, official) or column ``column`` of [N, num_splits] (geom_gcn)."""
    parts = []
    for key in MASK_KEYS:
        mask = getattr(data, key, None)
        if mask is None:
            raise DataError(f"split {protocol!r} needs data.{key}, which this graph lacks; load it for that split")
        if mask.size(0) != data.num_nodes:
            raise DataError(
                f"split {protocol!r}: data.{key} has length {mask.size(0)} but the graph has "
                f"{data.num_nodes} nodes (masks and graph out of step, e.g. split files of another node set)"
            )
        if column is None:
            if mask.dim() != 1:
                shape = tuple(mask.shape)
                raise DataError(f"split {protocol!r} needs 1-D masks, data.{key} has shape {shape}")
        else:
            if mask.dim() != 2:
                raise DataError(
                    f"split {protocol!r} needs [num_nodes, num_splits] masks, data.{key} has shape {tuple(mask.shape)}"
                )
            _check_geom_gcn_index(column, mask.size(1))
            mask = mask[:, column]
        parts.append(mask.bool().nonzero().view(-1))
    return Split(*parts)


def _check_geom_gcn_index(index: int, num_splits: int) -> None:
    if not 0 <= index < num_splits:
        raise DataError(
            f"geom_gcn split index {index} out of range: there are {num_splits} split files "
            f"(valid: 0..{num_splits - 1})"
        )


def geom_gcn_file(raw_dir: Path, prefix: str, k: int) -> Path:
    """Path of geom-gcn split file ``k`` (Pei et al. 2020): ``<raw_dir>/<prefix>_split_0.6_0.2_<k>.npz``."""
    return raw_dir / f"{prefix}_split_0.6_0.2_{k}.npz"


def read_geom_gcn_masks(raw_dir: Path, prefix: str, num_splits: int, num_nodes: int) -> dict[str, Tensor]:
    """Read the geom-gcn 48/32/20 split files (Pei et al. 2020) as [num_nodes, num_splits] bool masks.

    These are the files PyG's Planetoid(split='geom-gcn'), WebKB, WikipediaNetwork and Actor use;
    each holds ``train_mask``/``val_mask``/``test_mask`` over the full graph. A file whose masks are
    not ``num_nodes`` long belongs to another node set (the original GRAND-lineage code applied
    full-graph files after taking the LCC) and is refused.
    """
    columns: dict[str, list[Tensor]] = {key: [] for key in MASK_KEYS}
    for k in range(num_splits):
        path = geom_gcn_file(raw_dir, prefix, k)
        if not path.is_file():
            raise DataError(f"geom_gcn split file {path} not found (split.num_splits={num_splits})")
        with np.load(path) as npz:
            for key in MASK_KEYS:
                if key not in npz.files:
                    has = ", ".join(npz.files)
                    raise DataError(f"geom_gcn split file {path} lacks {key!r}; it has {has}")
                mask = torch.from_numpy(np.asarray(npz[key])).view(-1).bool()
                if mask.numel() != num_nodes:
                    raise DataError(
                        f"geom_gcn split file {path}: {key} has length {mask.numel()} but the graph has "
                        f"{num_nodes} nodes; the split files do not belong to this graph"
                    )
                columns[key].append(mask)
    return {key: torch.stack(cols, dim=1) for key, cols in columns.items()}


def masks_from_indices(indices: dict[str, Tensor], num_nodes: int) -> dict[str, Tensor]:
    """[num_nodes] bool masks from an index split ``{"train", "valid", "test"}`` (OGB's ``get_idx_split``).

    OGB names the validation part ``valid``; ``val`` is accepted too. Indices outside the graph are refused.
    """
    out = {}
    for key, names in zip(MASK_KEYS, (("train",), ("valid", "val"), ("test",)), strict=True):
        found = [indices[n] for n in names if n in indices]
        if not found:
            raise DataError(f"official split lacks part {names[0]!r}; it has {', '.join(indices)}")
        idx = torch.as_tensor(found[0]).view(-1).long()
        if idx.numel() and not (int(idx.min()) >= 0 and int(idx.max()) < num_nodes):
            raise DataError(f"official split part {names[0]!r} indexes nodes outside [0, {num_nodes})")
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[idx] = True
        out[key] = mask
    return out
