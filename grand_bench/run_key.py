"""The identity of one training run: a short hash of everything in its resolved config that shapes its numbers.

``run_key(cfg)`` is what ``train.py resume=true`` (and ``scripts/reproduce.py``) use to recognise a run that
is already in the results store, and what names the run's checkpoint folder (``<checkpoint_dir>/<key>/``).
Two runs have the same key exactly when their resolved configs agree on every key outside ``VOLATILE``:
the dataset, split and split index, seed, model, solver, optimiser, training and evaluation settings, and
the device. ``VOLATILE`` holds what cannot change a number: where files live, labels, the progress bar,
the logger, sweep settings, how often to checkpoint, and the ``seeds`` / ``splits`` lists (one run's own
seed and split index are part of the key). The code version is not part of the key: a record made by an
older commit still counts as that run (its record names the commit).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .report.store import read_records

# Dotted config keys left out of the identity: none of them changes what a run computes.
VOLATILE = (
    "seeds",
    "splits",
    "tag",
    "resume",
    "data_root",
    "raw_mirror",
    "results_dir",
    "checkpoint_dir",
    "logger",
    "tuner",
    "train.progress",
    "train.checkpoint_every",
    "keep_freed_memory",  # the allocator's policy: speed and RSS, not numbers
    "dataset.build_workers",  # processes building MNIST superpixels once: the graphs do not depend on it
)
# Keys added after runs were recorded, with the default that computes what those runs computed: at that
# value the key is left out of the identity, so a run recorded before the key existed keeps its key (and
# is not run again by resume / reproduce). A new option whose default changes nothing is listed here.
ADDED_WITH_DEFAULT = {
    "solver.reverse_pass": True,  # the same gradients as autograd (solvers/rk_backprop.py)
    "model.norm_degree": "with_loops",  # GRAFF: the normalisation used before the option existed
    "model.source": False,  # GraphCON: the paper's system, as before the option existed
    "dataset.edge_direction": "undirected",  # every loader's graph before the option existed
    "train.select": "val_metric",  # best-validation-metric selection, as before the option existed
    "model.attention": None,  # GraphCON: no grand_attention coupling (GRAND's attention is always a mapping)
    "model.input_dropout": None,  # baselines: the input features dropped at `dropout`, as before the option existed
    "optim.decay_scope": "all",  # every parameter decayed, as before the option existed
    "model.value_dropout": 0.0,  # GAT: PyG's GATConv, as before the option existed
    "model.conv_batch_norm": "none",  # GRAFF: no normalisation of the right-hand side, as before the option existed
    "model.pool_dim": 32,  # baselines: only layer=sage_pool reads it, added with it
    "model.attention.frozen": False,  # GRAND attention trained, as before the option existed
    "model.self_weight": False,  # GCN: no separate self weight, as before the option existed
    "model.num_samples": 5,  # baselines: only layer=sage_sampled reads it, added with it
    "train.nodes_per_step": None,  # node-level: full-batch steps, as before the option existed
    "model.shared_weights": True,  # GCNII: one weight, as before the option (GCNII*) existed
    "eval.state": "position",  # time selection decodes GraphCON's position, as before the option existed
    "split.train_fraction": 0.48,  # only split=stratified reads it, added with it
    "split.val_fraction": 0.32,  # only split=stratified reads it, added with it
    "solver.max_order": None,  # explicit/implicit Adams at torchdiffeq's order 12, as before the option existed
    "model.detach_source": False,  # GRAND: the gradient through X(0) in beta X(0), as before the option existed
}
# Options read only while another option is on: left out of the identity while it is off, so that a new
# default for them changes no key of a run that never read them.
READ_ONLY_WITH = {
    "model.detach_source": "model.add_source",  # no source term, nothing to detach
}
KEY_LENGTH = 16  # hex digits of sha256: collisions are out of reach for any realistic store
# What tells apart the runs of one setting (a table cell): which initialisation and split, and where it ran.
RUN_OF_SETTING = ("seed", "split.index", "device")


def _parent(plain: dict[str, Any], dotted: str) -> tuple[dict[str, Any] | None, str]:
    """The dict holding a dotted key's leaf (None where a parent is missing), and the leaf's name."""
    *parents, leaf = dotted.split(".")
    node: Any = plain
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), leaf


def run_identity(cfg: DictConfig | Mapping[str, Any], leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """The resolved config of one run (a DictConfig, or a record's ``config`` dict) without ``VOLATILE`` keys
    (and without the dotted keys ``leave_out``)."""
    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else copy.deepcopy(dict(cfg))
    for dotted, switch in READ_ONLY_WITH.items():
        node, leaf = _parent(plain, dotted)
        switch_node, switch_leaf = _parent(plain, switch)
        if node is not None and not (switch_node or {}).get(switch_leaf):
            node.pop(leaf, None)
    for dotted in (*VOLATILE, *leave_out, *ADDED_WITH_DEFAULT):
        node, leaf = _parent(plain, dotted)
        if node is None or leaf not in node:
            continue
        if dotted not in ADDED_WITH_DEFAULT or node[leaf] == ADDED_WITH_DEFAULT[dotted]:
            node.pop(leaf)
    return _json_safe(plain)


def _hash(identity: dict[str, Any]) -> str:
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def run_key(cfg: DictConfig | Mapping[str, Any]) -> str:
    """A 16-hex-digit key naming one run: sha256 of its identity as canonical JSON (sorted keys)."""
    return _hash(run_identity(cfg))


def setting_key(cfg: DictConfig | Mapping[str, Any]) -> str:
    """The key of a run's setting: its run key without the seed, the split index and the device. The runs a
    table cell pools (its preset's seeds x splits, on any device) share one setting key."""
    return _hash(run_identity(cfg, leave_out=RUN_OF_SETTING))


def replicate_key(cfg: DictConfig | Mapping[str, Any]) -> str:
    """The key of one run wherever it ran: its run key without the device. A table cell counts each seed and
    split of its setting once, and ``reproduce.py`` does not run again on a CPU what a GPU has recorded."""
    return _hash(run_identity(cfg, leave_out=("device",)))


def finished_runs(
    records: str | Path | Iterable[dict], key: Callable[[Mapping[str, Any]], str] = run_key
) -> dict[str, dict]:
    """Run key (or ``key``, e.g. ``replicate_key``) -> the latest stored record of that run, from a results
    file/folder or a list of records.

    A record counts whatever its status: a failed (diverged) run fails again the same way, so it is
    finished too. The key is computed from the record's ``config``, so records written before keys existed
    count as well.
    """
    if isinstance(records, str | Path):
        path = Path(records)
        records = read_records(path) if path.exists() else []
    found: dict[str, dict] = {}
    for record in records:
        config = record.get("config")
        if isinstance(config, dict):
            found[key(config)] = record
    return found


def _json_safe(value: Any) -> Any:
    # The store writes non-finite floats as null (JSON has no NaN); hash them the same way so that a
    # config and the record made from it give the same key.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
