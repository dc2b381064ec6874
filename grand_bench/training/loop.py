"""Full-batch node classification: one optimiser step per epoch, test taken at the best validation epoch.

Selection follows the papers' code (reference §1.7): the reported test score is the one of the epoch
whose validation score is strictly higher than every earlier epoch's; with ``train.select=val_loss``, the
epoch whose validation loss is strictly lower than every earlier epoch's; with ``val_objective``, the same on
the validation loss plus the optimiser's L2 term (Shchur et al.'s early stopping watched that sum).
"""

from __future__ import annotations

import math
import random
import resource
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..config import EvalCfg, OptimCfg, TrainCfg
from ..errors import ConfigError, RunFailed, SolverError
from .loggers import Logger, NullLogger
from .optim import build_optimizer, l2_penalty

# train.select values that pick (and count patience on) the lowest validation loss rather than the metric
LOSS_SELECTIONS = ("val_loss", "val_objective")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_states() -> dict[str, Any]:
    """torch, CUDA, numpy and Python RNG states as tensors and plain values, so ``torch.load(weights_only=True)``
    reads them back (numpy's state holds an ndarray, which the weights-only unpickler refuses)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(key.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "python": random.getstate(),
    }


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, key, pos, has_gauss, cached = states["numpy"]
    key = key.numpy() if isinstance(key, Tensor) else np.asarray(key)
    np.random.set_state((kind, key.astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


def reset_nfe(model: nn.Module, phase: str) -> None:
    """Zero the model's function-evaluation counter; models without an ODE block (baselines) have none."""
    ode = getattr(model, "ode", None)
    if ode is not None:
        ode.reset_nfe(phase)


def nfe_of(model: nn.Module) -> int:
    return int(getattr(model, "nfe", 0))


def optimise(model: nn.Module, optimizer: torch.optim.Optimizer, loss: Tensor) -> int:
    """Backward pass and optimiser step for a finite ``loss``; returns the backward NFE (adjoint solves)."""
    if not torch.isfinite(loss):
        raise RunFailed(f"training loss became {loss.item()}")
    reset_nfe(model, "backward")
    try:
        loss.backward()
    except AssertionError as err:  # torchdiffeq's adjoint solve signals step-size underflow with assert
        raise SolverError(f"the backward (adjoint) ODE solve broke down: {err}") from err
    optimizer.step()
    return nfe_of(model)


def accuracy(logits: Tensor, y: Tensor, index: Tensor) -> float:
    return (logits[index].argmax(-1) == y[index]).float().mean().item()


@dataclass
class RunOutcome:
    """What one training run measured; becomes part of the run record."""

    status: str = "ok"  # ok | failed
    error: str | None = None
    failed_epoch: int | None = None
    best_val: float = float("nan")
    best_val_loss: float = float("nan")  # train.select=val_loss (val_objective: with the L2 term) only
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


class Callback(Protocol):
    """Called after every epoch with that epoch's metrics (Ray Tune reporting, checkpointing)."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None: ...


class Trainer:
    """Trains one model on one split and keeps the test score of the best validation epoch.

    All progress lives on the trainer (``outcome``, ``history``, NFE lists, the epoch counter), so
    ``state_dict`` / ``load_state_dict`` can checkpoint and resume a run exactly, RNG states included.
    """

    def __init__(
        self,
        model: nn.Module,
        x: Tensor,
        graph: Any,
        y: Tensor,
        split,
        optim: OptimCfg,
        train: TrainCfg,
        evaluation: EvalCfg,
        logger: Logger | None = None,
        description: str = "",
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.model, self.x, self.graph, self.y, self.split = model, x, graph, y, split
        self.optimizer = build_optimizer(optim, model)
        self.train_cfg, self.eval_cfg = train, evaluation
        self.logger = logger or NullLogger()
        self.description = description
        self.callbacks = list(callbacks)
        self.loss_fn = nn.CrossEntropyLoss()
        self.outcome = RunOutcome(num_params=sum(p.numel() for p in model.parameters() if p.requires_grad))
        self.history: dict[str, list[float]] = {k: [] for k in ("loss", "train", "val", "test", "nfe_forward")}
        self.nfe: dict[str, list[int]] = {"forward": [], "backward": [], "eval": []}
        self.epoch = 0  # last completed epoch
        self.since_best = 0
        self.should_stop = False  # a callback sets this to end fit() cleanly after the current epoch
        self.higher_is_better = True  # best-validation selection keeps the highest score (False: lowest, e.g. MAE)
        self.elapsed = 0.0  # seconds spent in completed epochs (a resumed run: its earlier ones included)
        self._epoch_began: float | None = None

    def train_step(self) -> tuple[float, int, int]:
        self.model.train()
        self.optimizer.zero_grad()
        reset_nfe(self.model, "forward")
        logits = self.model(self.x, self.graph)
        nfe_forward = nfe_of(self.model)
        batch = self.training_nodes()
        loss = self.loss_fn(logits[batch], self.y[batch])
        nfe_backward = optimise(self.model, self.optimizer, loss)
        return loss.item(), nfe_forward, nfe_backward

    def training_nodes(self) -> Tensor:
        """The training nodes this step's loss is taken on: all of them, or ``train.nodes_per_step`` drawn
        without replacement (a fresh draw per step, as graphsage-simple's reshuffled mini-batches)."""
        train, size = self.split.train, self.train_cfg.nodes_per_step
        if size is None or size >= train.numel():
            return train
        return train[torch.randperm(train.numel(), device=train.device)[:size]]

    def _scores(self, logits: Tensor) -> dict[str, float]:
        scores = {name: accuracy(logits, self.y, getattr(self.split, name)) for name in ("train", "val", "test")}
        if self.train_cfg.select in LOSS_SELECTIONS:
            scores["val_loss"] = self.loss_fn(logits[self.split.val], self.y[self.split.val]).item()
            if self.train_cfg.select == "val_objective":
                scores["val_loss"] += l2_penalty(self.optimizer)
        return scores

    @torch.no_grad()
    def evaluate(self) -> tuple[dict[str, float], float | None, int]:
        """Scores on train/val/test; with time selection, at the best-validation integration time."""
        self.model.eval()
        reset_nfe(self.model, "evaluation")
        if not self.eval_cfg.time_selection:
            return self._scores(self.model(self.x, self.graph)), None, nfe_of(self.model)
        if not hasattr(self.model, "forward_at"):
            raise ConfigError("eval.time_selection=true needs a continuous-depth model (one with an ODE block)")
        end = self.eval_cfg.time_factor * self.model.ode.time
        points = self.eval_cfg.time_points or round(end / self.model.ode.cfg.step_size) + 1  # null: every step
        times = torch.linspace(0.0, end, points)
        if self.eval_cfg.state == "velocity":  # X at the end, then Y at every time (reference §4.3);
            # X first so that it wins ties, as the code keeps the in-integrator best only when strictly better
            states = self.model.forward_at(self.x, self.graph, times, half="both")  # X at each time, then Y
            logits, times = torch.cat([states[points - 1 : points], states[points:]]), torch.cat([times[-1:], times])
        else:
            logits = self.model.forward_at(self.x, self.graph, times)
        val = [accuracy(step, self.y, self.split.val) for step in logits]
        best = int(np.argmax(val))
        return self._scores(logits[best]), float(times[best]), nfe_of(self.model)

    def run_epoch(self) -> dict[str, float]:
        """One optimiser step and one evaluation; updates the best-validation record."""
        loss, nfe_f, nfe_b = self.train_step()
        scores, best_time, nfe_e = self.evaluate()
        self.epoch += 1
        for key, value in (("forward", nfe_f), ("backward", nfe_b), ("eval", nfe_e)):
            self.nfe[key].append(value)
        for key, value in (("loss", loss), ("nfe_forward", nfe_f), *scores.items()):
            self.history.setdefault(key, []).append(round(value, 6))
        out = self.outcome
        out.epochs_run = self.epoch
        if self.improved(scores):
            out.best_val, out.best_val_loss = scores["val"], scores.get("val_loss", math.nan)
            out.test_at_best_val = scores["test"]
            out.train_at_best_val, out.best_epoch, out.best_time = scores["train"], self.epoch, best_time
            self.since_best = 0
        else:
            self.since_best += 1
        return {"loss": loss, **scores, "best_val": out.best_val, "nfe_forward": nfe_f, "nfe_backward": nfe_b}

    def fit(self) -> RunOutcome:
        """Train until ``train.epochs`` (from the current epoch, so a resumed trainer continues)."""
        for _ in self.epochs():
            pass
        return self.outcome

    def epochs(self) -> Iterator[dict[str, float]]:
        """``fit`` one epoch at a time: yields each epoch's metrics after the callbacks have seen them, and
        fills ``outcome`` when it ends (so several runs can train in lockstep, as a multi-split sweep trial).
        Setting ``should_stop`` before the next step ends it cleanly."""
        out = self.outcome
        bar = tqdm(
            total=self.train_cfg.epochs,
            initial=self.epoch,
            desc=self.description,
            disable=not self.train_cfg.progress,
            dynamic_ncols=True,
            leave=False,
        )
        try:
            # Patience is checked before each epoch, so a run resumed at its stopping epoch stops there too.
            while self.epoch < self.train_cfg.epochs and not self.patience_exhausted() and not self.should_stop:
                self._epoch_began = time.perf_counter()
                metrics = self.run_epoch()
                bar.update()
                bar.set_postfix(
                    loss=f"{metrics['loss']:.3f}",
                    val=f"{metrics['val']:.3f}",
                    best=f"{out.best_val:.3f}",
                    nfe=f"{metrics['nfe_forward']}/{metrics['nfe_backward']}",
                )
                self.logger.log(metrics, step=self.epoch)
                for callback in self.callbacks:
                    callback.on_epoch_end(self, self.epoch, metrics)
                self.elapsed = self.seconds_trained()
                self._epoch_began = None  # not timed while suspended: lockstep runs train in turn
                yield metrics
        except RunFailed as err:
            out.status, out.error, out.failed_epoch = "failed", f"{type(err).__name__}: {err}", self.epoch + 1
        finally:
            bar.close()
            self.elapsed, self._epoch_began = self.seconds_trained(), None  # a failed epoch's time counts too
        out.train_seconds = self.elapsed
        out.seconds_per_epoch = out.train_seconds / max(len(self.nfe["forward"]), 1)
        out.nfe_forward, out.nfe_backward, out.nfe_eval = (
            float(np.mean(self.nfe[k])) if self.nfe[k] else 0.0 for k in ("forward", "backward", "eval")
        )
        out.history = self.history

    def seconds_trained(self) -> float:
        """Seconds spent training this run so far, the running epoch included."""
        return self.elapsed + (time.perf_counter() - self._epoch_began if self._epoch_began is not None else 0.0)

    def improved(self, scores: dict[str, float]) -> bool:
        """Strictly better than the best epoch so far on ``train.select``: the validation metric in its
        direction (MAE: lower) or the validation loss (lower)."""
        if self.train_cfg.select in LOSS_SELECTIONS:
            val, best, higher_is_better = scores["val_loss"], self.outcome.best_val_loss, False
        else:
            val, best, higher_is_better = scores["val"], self.outcome.best_val, self.higher_is_better
        if math.isnan(best):
            return True
        return val > best if higher_is_better else val < best

    def patience_exhausted(self) -> bool:
        return self.train_cfg.patience is not None and self.since_best >= self.train_cfg.patience

    def state_dict(self) -> dict:
        """Everything needed to continue this run exactly: weights, optimiser, progress and RNG states."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "since_best": self.since_best,
            "outcome": self.outcome.as_dict(),
            "history": self.history,
            "nfe": self.nfe,
            "elapsed": self.seconds_trained(),
            "rng": rng_states(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.since_best, self.elapsed = state["epoch"], state["since_best"], state["elapsed"]
        self.outcome = RunOutcome(**state["outcome"])
        self.history, self.nfe = state["history"], state["nfe"]
        set_rng_states(state["rng"])
