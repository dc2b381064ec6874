"""Checks on the ``tuner`` settings, run before the data load and before Ray starts.

Like ``grand_bench.validate``: every problem at once, each naming the option, the value and what is allowed.
"""

from __future__ import annotations

import re

from omegaconf import DictConfig

from ..data.graph_level import is_graph_level
from ..errors import ConfigError, unknown_choice
from .scheduler import SCHEDULERS

# What each metric means for "better": the mode must agree, or ASHA would keep the worst trials.
METRIC_MODES = {"val": "max", "best_val": "max", "loss": "min"}
SWEEP_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # a folder name and a Hydra option name (experiment=sweep_<name>)


def default_sweep_name(cfg: DictConfig) -> str:
    return f"{cfg.model.name}_{cfg.dataset.name}"


def sweep_name(cfg: DictConfig) -> str:
    return cfg.tuner.sweep or default_sweep_name(cfg)


def max_t(cfg: DictConfig) -> int:
    return cfg.tuner.max_t if cfg.tuner.max_t is not None else cfg.train.epochs


def check_address(address: str) -> bool:
    return address in ("local", "auto") or address.startswith("ray://")


def check_tuner(cfg: DictConfig) -> None:
    """Raise ConfigError listing every invalid ``tuner`` value (and config values a sweep cannot take)."""
    t, problems = cfg.tuner, []
    if t.name == "none":
        problems.append("tune.py needs a tuner: tuner=asha or tuner=random")
    if t.scheduler not in SCHEDULERS:
        problems.append(unknown_choice("tuner.scheduler", t.scheduler, SCHEDULERS))
    if t.metric not in METRIC_MODES:
        problems.append(unknown_choice("tuner.metric", t.metric, METRIC_MODES))
    elif t.mode != METRIC_MODES[t.metric]:
        expected = METRIC_MODES[t.metric]
        problems.append(f"tuner.mode '{t.mode}' ranks tuner.metric '{t.metric}' backwards; valid: {expected}")
    if is_graph_level(cfg.dataset):
        problems.append(
            f"tune.py sweeps node-level datasets; dataset '{cfg.dataset.name}' is graph-level (mini-batch "
            "training): run it with train.py or scripts/reproduce.py"
        )
    name = sweep_name(cfg)
    if not SWEEP_NAME.match(name):
        problems.append(f"tuner.sweep '{name}' must use only letters, digits, '_' and '-'")
    for key in ("num_samples", "grace_period", "top_k"):
        if getattr(t, key) < 1:
            problems.append(f"tuner.{key} must be >= 1, got {getattr(t, key)}")
    if t.max_t is not None and t.max_t < 1:
        problems.append(f"tuner.max_t must be >= 1, got {t.max_t}")
    if t.scheduler == "asha":
        if t.reduction_factor < 2:
            problems.append(f"tuner.reduction_factor must be >= 2, got {t.reduction_factor}")
        if t.grace_period > max_t(cfg):
            last = max_t(cfg)
            problems.append(f"tuner.grace_period={t.grace_period} must be <= tuner.max_t (default train.epochs) {last}")
    if not t.cpus_per_trial > 0:
        problems.append(f"tuner.cpus_per_trial must be > 0, got {t.cpus_per_trial}")
    if t.gpus_per_trial < 0:
        problems.append(f"tuner.gpus_per_trial must be >= 0, got {t.gpus_per_trial}")
    if t.gpus_per_trial > 0 and cfg.device == "cpu":
        problems.append(f"tuner.gpus_per_trial={t.gpus_per_trial} needs device=cuda (or device=auto), got device=cpu")
    if t.checkpoint_every < 0:
        problems.append(f"tuner.checkpoint_every must be >= 0 (0 = never), got {t.checkpoint_every}")
    if t.max_concurrent_trials is not None and t.max_concurrent_trials < 1:
        problems.append(f"tuner.max_concurrent_trials must be >= 1, got {t.max_concurrent_trials}")
    if not 0 <= t.worker_niceness <= 19:
        problems.append(f"tuner.worker_niceness must be in 0..19 (a nice value), got {t.worker_niceness}")
    if not check_address(t.address):
        problems.append(f"unknown tuner.address '{t.address}'; valid: local, auto, ray://<host>:<port>")
    if problems:
        raise ConfigError("; ".join(problems))


def check_runs_per_trial(cfg: DictConfig, searched: list[str]) -> None:
    """``splits=[...]`` / ``seeds=[...]`` give every trial those runs; the space cannot also draw them."""
    for listed, key in (("splits", "split.index"), ("seeds", "seed")):
        if cfg[listed] is not None and key in searched:
            raise ConfigError(
                f"{listed}=[...] makes every trial run each of them, and the search space also draws '{key}': "
                f"drop one of the two"
            )
