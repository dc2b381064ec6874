"""Full-batch node classification: one optimiser step per epoch, test taken at the best validation epoch.

Selection follows the papers' code (reference §1.7): the reported test score is the one of the epoch
whose validation score is strictly higher than every earlier epoch's.
"""

from __future__ import annotations

import math
import random
import resource
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..config import EvalCfg, OptimCfg, TrainCfg
from ..errors import RunFailed
from .loggers import Logger, NullLogger
from .optim import build_optimizer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def accuracy(logits: Tensor, y: Tensor, index: Tensor) -> float:
    return (logits[index].argmax(-1) == y[index]).float().mean().item()


@dataclass
class RunOutcome:
    """What one training run measured; becomes part of the run record."""

    status: str = "ok"  # ok | failed
    error: str | None = None
    failed_epoch: int | None = None
    best_val: float = float("nan")
    test_at_best_val: float = float("nan")
    train_at_best_val: float = float("nan")
    best_epoch: int = 0
    best_time: float | None = None  # integration time chosen on validation (eval.time_selection only)
    epochs_run: int = 0
    train_seconds: float = 0.0
    seconds_per_epoch: float = 0.0
    nfe_forward: float = 0.0  # mean per epoch, training forward solve
    nfe_backward: float = 0.0  # mean per epoch, backward (adjoint) solve; 0 with plain backprop
    nfe_eval: float = 0.0  # mean per evaluation pass
    num_params: int = 0
    peak_memory_mb: float = 0.0
    history: dict[str, list[float]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class Trainer:
    """Trains one model on one split and keeps the test score of the best validation epoch."""

    def __init__(
        self,
        model: nn.Module,
        x: Tensor,
        y: Tensor,
        split,
        optim: OptimCfg,
        train: TrainCfg,
        evaluation: EvalCfg,
        logger: Logger | None = None,
        description: str = "",
    ) -> None:
        self.model, self.x, self.y, self.split = model, x, y, split
        self.optimizer = build_optimizer(optim, model.parameters())
        self.train_cfg, self.eval_cfg = train, evaluation
        self.logger = logger or NullLogger()
        self.description = description
        self.loss_fn = nn.CrossEntropyLoss()

    def train_step(self) -> tuple[float, int, int]:
        self.model.train()
        self.optimizer.zero_grad()
        self.model.ode.reset_nfe("forward")
        logits = self.model(self.x)
        nfe_forward = self.model.nfe
        loss = self.loss_fn(logits[self.split.train], self.y[self.split.train])
        if not torch.isfinite(loss):
            raise RunFailed(f"training loss became {loss.item()}")
        self.model.ode.reset_nfe("backward")
        loss.backward()
        nfe_backward = self.model.nfe
        self.optimizer.step()
        return loss.item(), nfe_forward, nfe_backward

    @torch.no_grad()
    def evaluate(self) -> tuple[dict[str, float], float | None, int]:
        """Scores on train/val/test; with time selection, at the best-validation integration time."""
        self.model.eval()
        self.model.ode.reset_nfe("evaluation")
        if not self.eval_cfg.time_selection:
            logits = self.model(self.x)
            scores = {name: accuracy(logits, self.y, getattr(self.split, name)) for name in ("train", "val", "test")}
            return scores, None, self.model.nfe
        end = self.eval_cfg.time_factor * self.model.ode.time
        times = torch.linspace(0.0, end, self.eval_cfg.time_points)
        logits = self.model.forward_at(self.x, times)
        val = [accuracy(step, self.y, self.split.val) for step in logits]
        best = int(np.argmax(val))
        scores = {name: accuracy(logits[best], self.y, getattr(self.split, name)) for name in ("train", "val", "test")}
        return scores, float(times[best]), self.model.nfe

    def fit(self) -> RunOutcome:
        out = RunOutcome(num_params=sum(p.numel() for p in self.model.parameters() if p.requires_grad))
        history: dict[str, list[float]] = {"loss": [], "train": [], "val": [], "test": [], "nfe_forward": []}
        nfe_f, nfe_b, nfe_e, since_best = [], [], [], 0
        bar = tqdm(
            range(1, self.train_cfg.epochs + 1),
            desc=self.description,
            disable=not self.train_cfg.progress,
            dynamic_ncols=True,
            leave=False,
        )
        start = time.perf_counter()
        epoch = 0
        try:
            for epoch in bar:
                loss, f, b = self.train_step()
                scores, best_time, e = self.evaluate()
                nfe_f.append(f), nfe_b.append(b), nfe_e.append(e)
                for key, value in (("loss", loss), ("nfe_forward", f), *scores.items()):
                    history[key].append(round(value, 6))
                out.epochs_run = epoch
                if scores["val"] > out.best_val or math.isnan(out.best_val):
                    out.best_val, out.test_at_best_val = scores["val"], scores["test"]
                    out.train_at_best_val, out.best_epoch, out.best_time = scores["train"], epoch, best_time
                    since_best = 0
                else:
                    since_best += 1
                bar.set_postfix(
                    loss=f"{loss:.3f}", val=f"{scores['val']:.3f}", best=f"{out.best_val:.3f}", nfe=f"{f}/{b}"
                )
                self.logger.log({"loss": loss, **scores, "nfe_forward": f, "nfe_backward": b}, step=epoch)
                if self.train_cfg.patience is not None and since_best >= self.train_cfg.patience:
                    break
        except RunFailed as err:
            out.status, out.error, out.failed_epoch = "failed", f"{type(err).__name__}: {err}", epoch
        finally:
            bar.close()
        out.train_seconds = time.perf_counter() - start
        out.seconds_per_epoch = out.train_seconds / max(len(nfe_f), 1)
        out.nfe_forward = float(np.mean(nfe_f)) if nfe_f else 0.0
        out.nfe_backward = float(np.mean(nfe_b)) if nfe_b else 0.0
        out.nfe_eval = float(np.mean(nfe_e)) if nfe_e else 0.0
        out.history = history
        return out
