"""Mini-batch training for graph-level tasks (ZINC, PPI, MNIST superpixels) with any model family.

The model is the family's node model with ``out_dim = hidden_dim``, followed by a readout (``GraphReadout``):

    y_G = MLP( pool_{i in G} h_i ),   h = node_model(x, graph(batch))      (sum or mean pooling)
    y_i = MLP( h_i )                                                      (readout none: PPI, per node)

where MLP = Linear(d, d) -> ReLU -> Linear(d, out). The family's graph builder (``FAMILIES[...].graph``, for
GRAND ``models/grand.py diffusion_graph``) runs once per mini-batch, on the batch's disjoint union of graphs.

``GraphTrainer`` is the full-batch ``Trainer`` (training/loop.py) with the epoch's optimiser steps and the
evaluation replaced: epochs, best-validation selection (in the metric's direction: MAE lower is better),
patience, callbacks, ``should_stop``, ``state_dict`` / ``load_state_dict`` and the ``RunOutcome`` are the
Trainer's own. Per epoch: one pass over the shuffled training graphs (its running score is the epoch's
train score, as benchmarking-gnns reports it), then val and test in eval mode. NFE are means per mini-batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader
from torch_geometric.nn import global_add_pool, global_mean_pool

from ..data.graph_level import GraphDataset
from ..models import family
from .loggers import Logger
from .loop import Callback, Trainer, nfe_of, optimise, reset_nfe, seed_everything

POOLS = {"sum": global_add_pool, "mean": global_mean_pool}


class GraphReadout(nn.Module):
    """A node model, then sum / mean pooling per graph (or none), then a two-layer MLP head (module docstring)."""

    def __init__(self, node_model: nn.Module, hidden_dim: int, out_dim: int, readout: str) -> None:
        super().__init__()
        self.node_model = node_model
        self.pool = POOLS.get(readout)  # None: outputs per node
        self.head = nn.Sequential(nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim))

    def forward(self, x: Tensor, graph: Any, batch: Tensor, num_graphs: int) -> Tensor:
        h = self.node_model(x, graph)
        if self.pool is not None:
            h = self.pool(h, batch, size=num_graphs)
        return self.head(h)

    @property
    def ode(self) -> nn.Module | None:  # the Trainer counts NFE through model.ode / model.nfe when present
        return getattr(self.node_model, "ode", None)

    @property
    def nfe(self) -> int:
        return nfe_of(self.node_model)


class MeanAbsoluteError:
    """Mean |prediction - y| over every graph seen (the ZINC metric)."""

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0

    def update(self, out: Tensor, y: Tensor) -> None:
        self.total += (out.view(-1) - y.view(-1)).abs().sum().item()
        self.count += y.numel()

    def value(self) -> float:
        return self.total / max(self.count, 1)


class Accuracy:
    """Share of graphs whose arg-max class is the label."""

    def __init__(self) -> None:
        self.correct, self.count = 0, 0

    def update(self, out: Tensor, y: Tensor) -> None:
        self.correct += int((out.argmax(-1) == y.view(-1)).sum())
        self.count += y.numel()

    def value(self) -> float:
        return self.correct / max(self.count, 1)


class MicroF1:
    """Micro-averaged F1 over every (node, label) pair, logits thresholded at 0: 2TP / (2TP + FP + FN)."""

    def __init__(self) -> None:
        self.tp = self.fp = self.fn = 0

    def update(self, out: Tensor, y: Tensor) -> None:
        pred, true = out > 0, y > 0.5
        self.tp += int((pred & true).sum())
        self.fp += int((pred & ~true).sum())
        self.fn += int((~pred & true).sum())

    def value(self) -> float:
        return 2 * self.tp / max(2 * self.tp + self.fp + self.fn, 1)


@dataclass(frozen=True)
class Task:
    """A graph-level task: its training loss, its metric and the direction of model selection."""

    loss: Callable[[Tensor, Tensor], Tensor]
    metric: type
    higher_is_better: bool


TASKS: dict[str, Task] = {
    "graph_regression": Task(lambda out, y: F.l1_loss(out.view(-1), y.view(-1)), MeanAbsoluteError, False),
    "graph_classification": Task(lambda out, y: F.cross_entropy(out, y.view(-1)), Accuracy, True),
    "node_multilabel": Task(F.binary_cross_entropy_with_logits, MicroF1, True),
}


class GraphTrainer(Trainer):
    """The Trainer on mini-batches of graphs: one epoch = one pass over ``loaders['train']``."""

    def __init__(
        self,
        model: GraphReadout,
        loaders: dict[str, DataLoader],
        graph_fn: Callable[[Batch], Any],
        task: Task,
        cfg: DictConfig,
        device: torch.device,
        logger: Logger | None = None,
        description: str = "",
        callbacks: Sequence[Callback] = (),
    ) -> None:
        super().__init__(model, None, None, None, None, cfg.optim, cfg.train, cfg.eval, logger, description, callbacks)
        self.loaders, self.graph_fn, self.task, self.device = loaders, graph_fn, task, device
        self.higher_is_better = task.higher_is_better
        self.train_score = float("nan")

    def forward(self, batch: Batch) -> tuple[Tensor, Tensor]:
        batch = batch.to(self.device)
        out = self.model(batch.x, self.graph_fn(batch), batch.batch, batch.num_graphs)
        return out, batch.y

    def train_step(self) -> tuple[float, float, float]:
        """One pass over the training graphs: mean loss (per graph, or per node for PPI) and mean NFE per batch."""
        self.model.train()
        metric, total, count = self.task.metric(), 0.0, 0
        nfe_forward, nfe_backward = [], []
        for batch in self.loaders["train"]:
            self.optimizer.zero_grad()
            reset_nfe(self.model, "forward")
            out, y = self.forward(batch)
            nfe_forward.append(nfe_of(self.model))
            loss = self.task.loss(out, y)
            nfe_backward.append(optimise(self.model, self.optimizer, loss))
            metric.update(out.detach(), y)
            total += loss.item() * y.size(0)
            count += y.size(0)
        self.train_score = metric.value()
        return total / max(count, 1), _mean(nfe_forward), _mean(nfe_backward)

    @torch.no_grad()
    def evaluate(self) -> tuple[dict[str, float], None, float]:
        """Val and test scores in eval mode; the train score is the training pass's running score."""
        self.model.eval()
        scores, nfe = {"train": self.train_score}, []
        for part in ("val", "test"):
            metric = self.task.metric()
            for batch in self.loaders[part]:
                reset_nfe(self.model, "evaluation")
                out, y = self.forward(batch)
                nfe.append(nfe_of(self.model))
                metric.update(out, y)
            scores[part] = metric.value()
        return scores, None, _mean(nfe)


def _mean(values: list[int]) -> float:
    return round(float(np.mean(values)), 2) if values else 0.0


def build_graph_model(cfg: DictConfig, dataset: GraphDataset) -> GraphReadout:
    """The family's node model (input: the dataset's features, output: ``model.hidden_dim``) with a readout."""
    hidden = int(cfg.model.hidden_dim)
    sizes = dataset.split.train[0].clone()  # what a family builder reads: num_features, num_classes, a graph
    sizes.num_classes = hidden
    node_model = family(cfg.model).build(cfg.model, cfg.solver, sizes)
    return GraphReadout(node_model, hidden, dataset.num_outputs, cfg.dataset.readout)


def graph_trainer(
    cfg: DictConfig,
    dataset: GraphDataset,
    device: torch.device,
    logger: Logger | None = None,
    description: str = "",
    callbacks: Sequence[Callback] = (),
) -> GraphTrainer:
    """Seed, build the model and the mini-batch loaders (``dataset.batch_size``; training graphs shuffled)."""
    seed_everything(cfg.seed)
    model = build_graph_model(cfg, dataset).to(device)
    size = int(cfg.dataset.batch_size)
    loaders = {
        part: DataLoader(getattr(dataset.split, part), batch_size=size, shuffle=part == "train")
        for part in ("train", "val", "test")
    }
    model_family, model_cfg = family(cfg.model), cfg.model

    def graph_fn(batch: Batch) -> Any:
        return model_family.graph(batch, model_cfg)

    task = TASKS[cfg.dataset.task]
    return GraphTrainer(model, loaders, graph_fn, task, cfg, device, logger, description, callbacks)
