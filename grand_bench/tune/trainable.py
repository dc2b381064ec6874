"""One sweep trial: the training run of ``train.py`` for one sampled config, reporting to Ray Tune.

The trial composes the same public pieces as ``grand_bench.run.run`` (split, seeding, model family,
``Trainer``, ``make_record``, ``append_record``); only a callback is added, which reports every epoch to
Tune, checkpoints every k epochs and honours the scheduler's stop. The graph data arrive once through
``tune.with_parameters``; the trial's working directory is Ray's, so every path in the config is absolute
(the driver made them so).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import ray
import torch
from omegaconf import DictConfig, OmegaConf
from ray import tune
from torch_geometric.data import Data

from ..config import MODEL_SCHEMAS, Config
from ..errors import RunFailed
from ..models import family
from ..report import append_record
from ..report.store import record_path
from ..run import resolve_device, train_one
from ..training import Trainer
from ..training.checkpoint import load_state
from ..validate import validate

STATE_FILE = "trainer.pt"
# Reported every epoch (plain floats): what ASHA, the progress table and the summary read.
REPORTED = ("loss", "train", "val", "test", "best_val", "nfe_forward", "nfe_backward")


class TrialFailed(RunFailed):
    """The trial's run diverged; its record (status failed) is written, and Ray marks the trial ERROR."""


def typed_config(container: dict[str, Any]) -> DictConfig:
    """Rebuild a typed, validated config from the plain dict Tune hands the trial (approach B, ecosystem §B2)."""
    model_schema = MODEL_SCHEMAS[container["model"]["family"]]
    return OmegaConf.merge(OmegaConf.structured(Config), {"model": OmegaConf.structured(model_schema)}, container)


def plain(value: Any) -> Any:
    """numpy scalars (some Tune domains) -> Python numbers, recursively, so OmegaConf accepts them."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value.item() if hasattr(value, "item") and not isinstance(value, torch.Tensor) else value


class TuneReport:
    """Trainer callback: report the epoch to Tune, checkpoint every ``every`` epochs, obey the stop board."""

    def __init__(self, every: int, board, trial_id: str) -> None:
        self.every, self.board, self.trial_id = every, board, trial_id
        self.stop_requested = False

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        result = {key: float(metrics[key]) for key in REPORTED}
        result.update(epoch=epoch, test_at_best_val=float(trainer.outcome.test_at_best_val))
        if self.every and epoch % self.every == 0 and epoch < trainer.train_cfg.epochs:
            with tempfile.TemporaryDirectory() as folder:
                torch.save(trainer.state_dict(), Path(folder) / STATE_FILE)
                # report() copies the folder to the sweep's storage before it returns.
                tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(result)
        if self.board is not None and ray.get(self.board.should_stop.remote(self.trial_id)):
            self.stop_requested = True
            trainer.should_stop = True


def restore(trainer: Trainer) -> int | None:
    """Load the trial's last checkpoint into ``trainer`` (a resumed sweep); the epoch it resumes from."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        state = load_state(Path(folder) / STATE_FILE)  # weights-only: tensors and plain values, no pickled objects
    trainer.load_state_dict(state)
    return trainer.epoch


def train_trial(config: dict[str, Any], data: Data, board: str | None = None) -> None:
    """Ray Tune function trainable: one run of ``config`` on ``data``; appends its record to the store."""
    # The same warnings pytest filters; in a trial they would be repeated by every worker.
    warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
    cfg = typed_config(plain(config))
    validate(cfg)
    torch.set_num_threads(max(1, int(cfg.tuner.cpus_per_trial)))
    context = tune.get_context()
    trial_id = context.get_trial_id()
    device = resolve_device(cfg.device)

    data = data.to(device)
    graph = family(cfg.model).graph(data, cfg.model)  # per trial: the space may vary self-loops or rewiring
    graph = graph.to(device) if hasattr(graph, "to") else graph
    report = TuneReport(cfg.tuner.checkpoint_every, ray.get_actor(board) if board else None, trial_id)
    resumed: dict[str, int | None] = {}
    record, trainer = train_one(
        cfg,
        data,
        graph,
        device,
        [report],
        before_fit=lambda t: resumed.update(epoch=restore(t)),
        name=f"{cfg.tag}/{trial_id}",
    )
    outcome = trainer.outcome
    record.update(
        sweep=cfg.tag,
        trial_id=trial_id,
        stopped_early=report.stop_requested and outcome.epochs_run < cfg.train.epochs,
        resumed_from=resumed.get("epoch"),
    )
    append_record(record_path(cfg.results_dir, cfg.model.name, cfg.dataset.name), record)
    if outcome.status != "ok":
        raise TrialFailed(f"{record['error']} (epoch {record['failed_epoch']})") from None
