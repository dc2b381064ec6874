"""Experiment loggers (config group ``logger/``): none, or wandb (offline/disabled need no network)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Protocol

from omegaconf import DictConfig, OmegaConf

from ..config import LoggerCfg
from ..errors import unknown_choice
from ..report.store import redact_secrets

LOGGERS = ("none", "wandb")


class Logger(Protocol):
    def log(self, metrics: dict[str, float], step: int) -> None: ...
    def finish(self, summary: dict[str, Any]) -> None: ...


class NullLogger:
    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def finish(self, summary: dict[str, Any]) -> None:
        pass


class WandbLogger:
    """One wandb run per training run. The mode is passed explicitly: it beats WANDB_MODE (ecosystem §B3)."""

    def __init__(self, cfg: LoggerCfg, name: str, config: dict[str, Any]) -> None:
        import wandb

        self.run = wandb.init(
            project=cfg.project,
            mode=cfg.mode,
            group=cfg.group,
            name=name,
            config=config,
            dir=cfg.dir,
            reinit="finish_previous",
        )

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def finish(self, summary: dict[str, Any]) -> None:
        for key, value in summary.items():
            self.run.summary[key] = value
        self.run.finish()


def make_logger(cfg: LoggerCfg, name: str, config: dict[str, Any]) -> Logger:
    if cfg.name == "none":
        return NullLogger()
    if cfg.name == "wandb":
        # Whatever reaches wandb (config, run name, group = the tag) carries no credential from the environment.
        plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else asdict(cfg)
        safe_cfg = OmegaConf.create(redact_secrets(plain))
        return WandbLogger(safe_cfg, redact_secrets(name), redact_secrets(config))
    raise ValueError(unknown_choice("logger", cfg.name, LOGGERS))
