"""Lightning-free training: optimiser, loop with best-validation selection, loggers."""

from .loggers import LOGGERS, make_logger
from .loop import LOSS_SELECTIONS, Callback, RunOutcome, Trainer, peak_memory_mb, seed_everything
from .optim import DECAY_SCOPES, OPTIMIZERS, build_optimizer

__all__ = [
    "DECAY_SCOPES",
    "LOGGERS",
    "LOSS_SELECTIONS",
    "Callback",
    "OPTIMIZERS",
    "RunOutcome",
    "Trainer",
    "build_optimizer",
    "make_logger",
    "peak_memory_mb",
    "seed_everything",
]
