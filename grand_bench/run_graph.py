"""One graph-level (split, seed) run: ``run.train_one`` hands graph-level datasets here.

The same record (``run.make_record``), logger, callbacks and ``before_fit`` hook as a node-level run; the
trainer is training/graph_loop.py's ``GraphTrainer`` on mini-batches of the dataset's graphs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from .data.graph_level import GraphDataset
from .report.store import redact_secrets
from .run import make_record
from .training import Callback, make_logger
from .training.graph_loop import GraphTrainer, graph_trainer


def train_graph_one(
    cfg: DictConfig,
    dataset: GraphDataset,
    device: torch.device,
    callbacks: Sequence[Callback] = (),
    before_fit: Callable[[GraphTrainer], object] | None = None,
    name: str | None = None,
) -> tuple[dict, GraphTrainer]:
    """Train one resolved config on a loaded graph-level dataset; its run record (not yet stored) and trainer."""
    name = name or f"{cfg.model.name} {cfg.dataset.name} seed {cfg.seed}"
    logger = make_logger(cfg.logger, name, redact_secrets(OmegaConf.to_container(cfg, resolve=True)))
    trainer = graph_trainer(cfg, dataset, device, logger, name, callbacks)
    if before_fit is not None:
        before_fit(trainer)
    outcome = trainer.fit()
    record = make_record(cfg, outcome, dataset.split, device)
    logger.finish({k: record[k] for k in ("best_val", "test_at_best_val", "best_epoch", "status")})
    return record, trainer
