"""Checkpoints of a training run: written atomically every k epochs, loaded weights-only, removed once recorded.

Any trainer with ``state_dict()`` / ``load_state_dict()`` / ``epoch`` works (the node-level ``Trainer``, a
graph-level trainer): the state is whatever the trainer says makes its run resumable exactly (weights,
optimiser, progress, best-so-far, RNG states). A checkpoint is written under a temporary name and renamed
(``os.replace``), so a run killed at any instant leaves either the previous checkpoint or the new one,
never a torn file. It is read with ``torch.load(weights_only=True)``: tensors and plain Python values only,
no arbitrary pickled objects, and only from the run's own checkpoint folder.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

import torch

from ..errors import GrandBenchError

CHECKPOINT_FILE = "trainer.pt"

log = logging.getLogger(__name__)


class CheckpointError(GrandBenchError):
    """A checkpoint exists but cannot be read; the message says which file and what to do."""


class Resumable(Protocol):
    epoch: int

    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """``torch.save(state)`` to ``path`` atomically: a temporary file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_state(path: str | Path) -> dict[str, Any]:
    """A state written by ``save_state``, loaded weights-only onto the CPU."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, OSError) as err:
        reason = " ".join(str(err).split())[:200]
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(err).__name__}: {reason}); "
            f"delete it to start that run over, or run without resume=true"
        ) from err


class Checkpointer:
    """Trainer callback: save the trainer's state to ``<folder>/trainer.pt`` after every ``every``-th epoch.

    ``every=0`` writes nothing. ``restore(trainer)`` loads the checkpoint if there is one (resume);
    ``clear()`` removes the folder once the run's record is stored.
    """

    def __init__(self, folder: str | Path, every: int) -> None:
        self.folder = Path(folder)
        self.every = every
        self.restored_epoch: int | None = None  # set by restore(): the epoch the run continued after

    @property
    def path(self) -> Path:
        return self.folder / CHECKPOINT_FILE

    def exists(self) -> bool:
        return self.path.is_file()

    def on_epoch_end(self, trainer: Resumable, epoch: int, metrics: dict[str, float]) -> None:
        if self.every and epoch % self.every == 0:
            try:
                save_state(self.path, trainer.state_dict())
            except OSError as err:  # a full disk or a vanished folder costs the checkpoint, not the run
                log.warning("could not write checkpoint %s (%s); training goes on", self.path, err)

    def restore(self, trainer: Resumable) -> int | None:
        """Load the checkpoint into ``trainer``; the epoch it continues after, or None without a checkpoint."""
        if not self.exists():
            return None
        trainer.load_state_dict(load_state(self.path))
        self.restored_epoch = trainer.epoch
        return trainer.epoch

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
