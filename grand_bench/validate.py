"""Range and choice checks on a composed config, run before any data loads.

Composition already rejects unknown keys and wrong types (typed schemas); this catches values that
are well-typed but meaningless. Every problem is reported at once, each naming the option, the value
and what is allowed.
"""

from __future__ import annotations

import math

from .config import Config
from .data.datasets import LOADERS, PYG_GEOM_GCN_FILES, SYN_CORA_GRAPHS, SYN_CORA_LEVELS
from .data.graph_level import GRAPH_TASKS, check_graph_dataset_cfg, is_graph_level
from .data.splits import FULL_GRAPH_SPLITS, SPLITS
from .data.transforms import EDGE_DIRECTIONS
from .errors import ConfigError, unknown_choice
from .models import DIFFUSIVITIES, FAMILIES
from .models.attention import check_attention_cfg
from .models.baselines import check_baseline_cfg
from .models.graff import check_graff_cfg
from .models.graphcon import SELECTION_STATES, check_graphcon_cfg
from .models.reaction_diffusion import check_implicit_solver, check_reaction_diffusion_cfg
from .solvers import ADAMS_METHODS, ADAMS_ORDERS, TORCHDIFFEQ_METHODS, is_fixed_step, methods
from .solvers.implicit import LINEAR_SOLVERS
from .training import DECAY_SCOPES, LOGGERS, LOSS_SELECTIONS, OPTIMIZERS

DEVICES = ("cpu", "cuda", "auto")
MODEL_CHECKS = {
    "graff": check_graff_cfg,
    "graphcon": check_graphcon_cfg,
    "reaction_diffusion": check_reaction_diffusion_cfg,
}
WANDB_MODES = ("disabled", "offline", "online")
TRAIN_SELECT = ("val_metric", *LOSS_SELECTIONS)
SEED_LIMIT = 2**32  # numpy's seed range: seeds and random-split indices both seed numpy
REWIRING = {"method": ("none", "gdc"), "diffusion": ("ppr", "heat"), "sparsification": ("topk", "threshold")}


def _choice(problems: list[str], key: str, value: object, valid: tuple | list) -> None:
    if value not in valid:
        problems.append(unknown_choice(key, value, valid))


def _positive(problems: list[str], key: str, value: float | None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or not value > 0:
        problems.append(f"{key} must be > 0, got {value}")


def _probability(problems: list[str], key: str, value: float) -> None:
    if not 0 <= value < 1:
        problems.append(f"{key} must be in [0, 1), got {value}")


def _check_diffusion_net(cfg, problems: list[str]) -> None:
    """The keys GRAND's and CGNN's schemas share: encoder width, integration time, dropouts, self-loop weight."""
    _positive(problems, "model.hidden_dim", cfg.hidden_dim)
    _positive(problems, "model.time", cfg.time)
    _probability(problems, "model.input_dropout", cfg.input_dropout)
    _probability(problems, "model.dropout", cfg.dropout)
    if cfg.self_loop_weight < 0:
        problems.append(f"model.self_loop_weight must be >= 0, got {cfg.self_loop_weight}")


def check_model(cfg, problems: list[str]) -> None:
    _choice(problems, "model.family", cfg.family, list(FAMILIES))
    if cfg.family == "baseline":
        problems.extend(check_baseline_cfg(cfg))
    if cfg.family == "cgnn":
        _check_diffusion_net(cfg, problems)
    if cfg.family not in ("grand", "reaction_diffusion"):  # reaction_diffusion extends GRAND's schema
        return
    _choice(problems, "model.diffusivity", cfg.diffusivity, DIFFUSIVITIES)
    _check_diffusion_net(cfg, problems)
    if not 0 < cfg.edge_sampling <= 1:
        problems.append(f"model.edge_sampling must be in (0, 1], got {cfg.edge_sampling}")
    if cfg.edge_sampling < 1 and cfg.diffusivity == "laplacian":
        problems.append("model.edge_sampling < 1 needs attention; model.diffusivity 'laplacian' has none")
    problems.extend(check_attention_cfg(cfg.attention))
    for key, valid in REWIRING.items():
        _choice(problems, f"model.rewiring.{key}", getattr(cfg.rewiring, key), valid)
    if cfg.rewiring.method == "gdc":
        if cfg.rewiring.diffusion == "heat":
            _positive(problems, "model.rewiring.heat_time", cfg.rewiring.heat_time)
        _positive(problems, "model.rewiring.k", cfg.rewiring.k)
        _positive(problems, "model.rewiring.eps", cfg.rewiring.eps)
        if not 0 < cfg.rewiring.ppr_alpha < 1:
            problems.append(f"model.rewiring.ppr_alpha must be in (0, 1), got {cfg.rewiring.ppr_alpha}")


def check_data(cfg: Config, problems: list[str]) -> None:
    """Dataset loader and options, split protocol and every split index the invocation will use."""
    dataset, split = cfg.dataset, cfg.split
    _choice(problems, "dataset.task", dataset.task, ["node_classification", *GRAPH_TASKS])
    if is_graph_level(dataset):  # ZINC, PPI, MNIST superpixels: mini-batches of graphs (data/graph_level.py)
        problems.extend(check_graph_dataset_cfg(dataset, split))
        if cfg.model.family == "cgnn":
            problems.append(
                f"model.family 'cgnn' learns one diffusion speed per node of one graph; dataset {dataset.name!r} is "
                "graph-level: use a node-level dataset (e.g. dataset=cora)"
            )
        if cfg.eval.time_selection:
            problems.append("eval.time_selection=true is for node-level datasets; set it false for graph-level ones")
        if cfg.diagnostics.dirichlet:
            problems.append("diagnostics.dirichlet=true is for node-level datasets; set it false for graph-level ones")
        model_readout = getattr(cfg.model, "readout", "node")
        if model_readout != "node" and dataset.readout != "none":
            problems.append(
                f"model.readout={model_readout} and dataset.readout={dataset.readout} would pool each graph twice; "
                "keep one (model.readout=node leaves pooling to the graph-level trainer)"
            )
    else:
        _choice(problems, "dataset.loader", dataset.loader, list(LOADERS))
        if getattr(cfg.model, "readout", "node") != "node":
            problems.append(
                f"model.readout={cfg.model.readout} pools per graph; dataset '{dataset.name}' is node-level: "
                "use model.readout=node"
            )
    _choice(problems, "dataset.edge_direction", dataset.edge_direction, EDGE_DIRECTIONS)
    if dataset.dev_size < 1:
        problems.append(f"dataset.dev_size must be >= 1, got {dataset.dev_size}")
    if dataset.loader == "syn_cora":  # homophily=null is reported by the loader with the valid levels
        levels = [f"{h:.2f}" for h in SYN_CORA_LEVELS]
        if dataset.homophily is not None and not any(math.isclose(h, dataset.homophily) for h in SYN_CORA_LEVELS):
            problems.append(unknown_choice("dataset.homophily", dataset.homophily, levels))
        _choice(problems, "dataset.graph", dataset.graph, SYN_CORA_GRAPHS)
    _choice(problems, "split.name", split.name, SPLITS)
    if split.name in FULL_GRAPH_SPLITS and split.lcc:
        problems.append(
            f"split.lcc=true does not go with split '{split.name}' (defined on the full graph); set it false"
        )
    if split.train_per_class < 1:
        problems.append(f"split.train_per_class must be >= 1, got {split.train_per_class}")
    if split.name == "geom_gcn" and not 1 <= split.num_splits <= PYG_GEOM_GCN_FILES:
        problems.append(
            f"split.num_splits must be in [1, {PYG_GEOM_GCN_FILES}] (the geom-gcn split files), got {split.num_splits}"
        )
    key, indices = ("splits", list(cfg.splits)) if cfg.splits else ("split.index", [split.index])
    for index in indices:
        valid = _split_indices(split)
        if valid is not None and not 0 <= index < valid[0]:
            problems.append(f"{key}: split index {index} out of range; {valid[1]}")
    key, seeds = ("seeds", list(cfg.seeds)) if cfg.seeds else ("seed", [cfg.seed])
    for seed in seeds:
        if not 0 <= seed < SEED_LIMIT:
            problems.append(f"{key}: seed {seed} out of range (valid: 0..2**32-1, numpy's seed range)")


def _split_indices(split) -> tuple[int, str] | None:
    """(number of split indices, what is allowed) for the split protocol; None for an unknown protocol."""
    if split.name == "geom_gcn":
        n = split.num_splits
        return n, f"split 'geom_gcn' has {n} split files (valid: 0..{n - 1})"
    if split.name in FULL_GRAPH_SPLITS:
        return 1, f"split '{split.name}' has one split (valid: 0)"
    if split.name == "random":
        return SEED_LIMIT, "a random split index seeds numpy (valid: 0..2**32-1)"
    return None


def check_run(cfg: Config, problems: list[str]) -> None:
    """Optimiser, training length, checkpoints, logger and output paths."""
    if not 0 <= cfg.optim.momentum < 1:
        problems.append(f"optim.momentum must be in [0, 1), got {cfg.optim.momentum}")
    if cfg.train.checkpoint_every < 0:
        problems.append(f"train.checkpoint_every must be >= 0 (0 = no checkpoints), got {cfg.train.checkpoint_every}")
    if cfg.logger.name == "wandb":
        _choice(problems, "logger.mode", cfg.logger.mode, WANDB_MODES)
    for key in ("data_root", "results_dir", "checkpoint_dir"):
        if not str(getattr(cfg, key)).strip():
            problems.append(f"{key} must name a folder, got an empty string")


def check_solver(cfg, problems: list[str], model_step: float | None = None) -> None:
    """``model_step``: the model's own step (GraphCON, GRAFF ``model.dt``), the default step_size."""
    _choice(problems, "solver.method", cfg.method, methods())
    _choice(problems, "solver.backend", cfg.backend, ("native", "torchdiffeq"))
    if is_fixed_step(cfg.method) and cfg.step_size is None and model_step is None:
        problems.append(f"solver.method '{cfg.method}' is fixed-step: set solver.step_size (> 0)")
    _positive(problems, "solver.step_size", cfg.step_size, allow_none=True)
    _choice(problems, "solver.linear_solver", cfg.linear_solver, LINEAR_SOLVERS)
    for key in ("rtol", "atol", "adjoint_rtol", "adjoint_atol", "max_nfe", "max_iters"):
        _positive(problems, f"solver.{key}", getattr(cfg, key))
    for key in ("linear_tol", "linear_max_iters"):  # implicit schemes (solvers/implicit.py)
        _positive(problems, f"solver.{key}", getattr(cfg, key))
    for key in ("tol_scale", "adjoint_tol_scale", "adjoint_step_size"):
        _positive(problems, f"solver.{key}", getattr(cfg, key), allow_none=True)
    if cfg.max_order is not None:
        low, high = ADAMS_ORDERS
        if cfg.method not in ADAMS_METHODS and not (cfg.adjoint and cfg.adjoint_method in ADAMS_METHODS):
            problems.append(f"solver.max_order is for {' / '.join(ADAMS_METHODS)}; solver.method is '{cfg.method}'")
        if not low <= cfg.max_order <= high:
            problems.append(
                f"solver.max_order must be in [{low}, {high}] (torchdiffeq's Adams orders), got {cfg.max_order}"
            )
    if cfg.adjoint:
        adjoint_method = cfg.adjoint_method or cfg.method
        _choice(problems, "solver.adjoint_method", adjoint_method, TORCHDIFFEQ_METHODS)
        if cfg.method not in TORCHDIFFEQ_METHODS:
            problems.append(f"solver.adjoint=true needs a torchdiffeq method; '{cfg.method}' is a grand_bench scheme")
        if is_fixed_step(adjoint_method) and (cfg.adjoint_step_size or cfg.step_size) is None:
            problems.append(f"solver.adjoint_method '{adjoint_method}' is fixed-step: set solver.adjoint_step_size")


def validate(cfg: Config) -> None:
    """Raise ConfigError listing every invalid value in ``cfg``."""
    problems: list[str] = []
    check_data(cfg, problems)
    check_run(cfg, problems)
    check_model(cfg.model, problems)
    check_solver(cfg.solver, problems, getattr(cfg.model, "dt", None))
    if cfg.model.family in MODEL_CHECKS:  # checks of model options that depend on the solver
        problems.extend(MODEL_CHECKS[cfg.model.family](cfg.model, cfg.solver))
    problems.extend(check_implicit_solver(cfg.model, cfg.solver))  # implicit schemes need linear dynamics
    _choice(problems, "optim.name", cfg.optim.name, OPTIMIZERS)
    _choice(problems, "optim.decay_scope", cfg.optim.decay_scope, DECAY_SCOPES)
    if cfg.optim.decay_scope == "first_layer" and cfg.model.family != "baseline":
        problems.append(f"optim.decay_scope=first_layer is for the baseline models, not {cfg.model.name!r}")
    _positive(problems, "optim.lr", cfg.optim.lr)
    if cfg.optim.weight_decay < 0:
        problems.append(f"optim.weight_decay must be >= 0, got {cfg.optim.weight_decay}")
    _positive(problems, "train.epochs", cfg.train.epochs)
    _positive(problems, "train.patience", cfg.train.patience, allow_none=True)
    _choice(problems, "train.select", cfg.train.select, TRAIN_SELECT)
    _positive(problems, "train.nodes_per_step", cfg.train.nodes_per_step, allow_none=True)
    if cfg.train.nodes_per_step is not None and is_graph_level(cfg.dataset):
        problems.append("train.nodes_per_step is for node-level datasets; graph-level runs batch by dataset.batch_size")
    if cfg.train.select in LOSS_SELECTIONS and is_graph_level(cfg.dataset):
        problems.append(
            f"train.select={cfg.train.select} is for node-level datasets; graph-level runs select on val_metric"
        )
    _choice(problems, "logger.name", cfg.logger.name, LOGGERS)
    _choice(problems, "device", cfg.device, DEVICES)
    if cfg.eval.time_selection:
        _positive(problems, "eval.time_factor", cfg.eval.time_factor)
        if cfg.eval.time_points is None and not is_fixed_step(cfg.solver.method):
            problems.append(
                f"eval.time_points=null reads every solver step; solver.method '{cfg.solver.method}' is adaptive:"
                " set eval.time_points (>= 2)"
            )
        elif cfg.eval.time_points is not None and cfg.eval.time_points < 2:
            problems.append(f"eval.time_points must be >= 2, got {cfg.eval.time_points}")
    _choice(problems, "eval.state", cfg.eval.state, SELECTION_STATES)
    if cfg.eval.state == "velocity" and not (cfg.eval.time_selection and cfg.model.family == "graphcon"):
        problems.append(
            "eval.state=velocity decodes GraphCON's velocity during the time selection: it needs"
            f" eval.time_selection=true and a graphcon model (got eval.time_selection={cfg.eval.time_selection},"
            f" model.family '{cfg.model.family}')"
        )
    if cfg.seeds is not None and not cfg.seeds:
        problems.append("seeds must list at least one seed, got []")
    if cfg.splits is not None and not cfg.splits:
        problems.append("splits must list at least one split index, got []")
    if problems:
        raise ConfigError("; ".join(problems))
