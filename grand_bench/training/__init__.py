"""Lightning-free training: optimiser, loop with best-validation selection, loggers."""

from .loggers import LOGGERS, make_logger
from .loop import RunOutcome, Trainer, peak_memory_mb, seed_everything
from .optim import OPTIMIZERS, build_optimizer

__all__ = [
    "LOGGERS",
    "OPTIMIZERS",
    "RunOutcome",
    "Trainer",
    "build_optimizer",
    "make_logger",
    "peak_memory_mb",
    "seed_everything",
]
