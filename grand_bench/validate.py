"""Range and choice checks on a composed config, run before any data loads.

Composition already rejects unknown keys and wrong types (typed schemas); this catches values that
are well-typed but meaningless. Every problem is reported at once, each naming the option, the value
and what is allowed.
"""

from __future__ import annotations

from .config import Config
from .errors import ConfigError, unknown_choice
from .models import DIFFUSIVITIES, FAMILIES
from .models.attention import check_attention_cfg
from .solvers import TORCHDIFFEQ_METHODS, is_fixed_step, methods
from .training import LOGGERS, OPTIMIZERS

DEVICES = ("cpu", "cuda", "auto")
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


def check_model(cfg, problems: list[str]) -> None:
    _choice(problems, "model.family", cfg.family, list(FAMILIES))
    if cfg.family != "grand":
        return
    _choice(problems, "model.diffusivity", cfg.diffusivity, DIFFUSIVITIES)
    _positive(problems, "model.hidden_dim", cfg.hidden_dim)
    _positive(problems, "model.time", cfg.time)
    _probability(problems, "model.input_dropout", cfg.input_dropout)
    _probability(problems, "model.dropout", cfg.dropout)
    if not 0 < cfg.edge_sampling <= 1:
        problems.append(f"model.edge_sampling must be in (0, 1], got {cfg.edge_sampling}")
    if cfg.edge_sampling < 1 and cfg.diffusivity == "laplacian":
        problems.append("model.edge_sampling < 1 needs attention; model.diffusivity 'laplacian' has none")
    if cfg.self_loop_weight < 0:
        problems.append(f"model.self_loop_weight must be >= 0, got {cfg.self_loop_weight}")
    problems.extend(check_attention_cfg(cfg.attention))
    for key, valid in REWIRING.items():
        _choice(problems, f"model.rewiring.{key}", getattr(cfg.rewiring, key), valid)
    if cfg.rewiring.method == "gdc":
        _positive(problems, "model.rewiring.k", cfg.rewiring.k)
        _positive(problems, "model.rewiring.eps", cfg.rewiring.eps)
        if not 0 < cfg.rewiring.ppr_alpha < 1:
            problems.append(f"model.rewiring.ppr_alpha must be in (0, 1), got {cfg.rewiring.ppr_alpha}")


def check_solver(cfg, problems: list[str]) -> None:
    _choice(problems, "solver.method", cfg.method, methods())
    if is_fixed_step(cfg.method) and cfg.step_size is None:
        problems.append(f"solver.method '{cfg.method}' is fixed-step: set solver.step_size (> 0)")
    _positive(problems, "solver.step_size", cfg.step_size, allow_none=True)
    for key in ("rtol", "atol", "adjoint_rtol", "adjoint_atol", "max_nfe", "max_iters"):
        _positive(problems, f"solver.{key}", getattr(cfg, key))
    for key in ("tol_scale", "adjoint_tol_scale", "adjoint_step_size"):
        _positive(problems, f"solver.{key}", getattr(cfg, key), allow_none=True)
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
    check_model(cfg.model, problems)
    check_solver(cfg.solver, problems)
    _choice(problems, "optim.name", cfg.optim.name, OPTIMIZERS)
    _positive(problems, "optim.lr", cfg.optim.lr)
    if cfg.optim.weight_decay < 0:
        problems.append(f"optim.weight_decay must be >= 0, got {cfg.optim.weight_decay}")
    _positive(problems, "train.epochs", cfg.train.epochs)
    _positive(problems, "train.patience", cfg.train.patience, allow_none=True)
    _choice(problems, "logger.name", cfg.logger.name, LOGGERS)
    _choice(problems, "device", cfg.device, DEVICES)
    if cfg.eval.time_selection:
        _positive(problems, "eval.time_factor", cfg.eval.time_factor)
        if cfg.eval.time_points < 2:
            problems.append(f"eval.time_points must be >= 2, got {cfg.eval.time_points}")
    if cfg.seeds is not None and not cfg.seeds:
        problems.append("seeds must list at least one seed, got []")
    if cfg.splits is not None and not cfg.splits:
        problems.append("splits must list at least one split index, got []")
    if problems:
        raise ConfigError("; ".join(problems))
