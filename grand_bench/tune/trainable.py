"""One sweep trial: the training runs of ``train.py`` for one sampled config, reporting to Ray Tune.

A trial is one run, or with ``splits=[...]`` / ``seeds=[...]`` on the command line one run per (split,
seed), trained in lockstep as GRAND's ray_tune.py did with ``--num_splits``: every epoch each run takes
one step, and Tune sees the mean over the runs, so ASHA compares configs on all the splits at once (the
small validation sets of the geom-gcn splits make one split a noisy judge). Each run keeps its own RNG
state, so it trains exactly as ``train.py`` would train it alone, and writes its own record.

The trial composes the same public pieces as ``grand_bench.run.run`` (``run_configs``,
``start_node_run``, ``append_record``). The graph data arrive once through ``tune.with_parameters``; the
trial's working directory is Ray's, so every path in the config is absolute (the driver made them so).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from statistics import mean
from typing import Any

import ray
import torch
from omegaconf import DictConfig, OmegaConf
from ray import tune
from torch_geometric.data import Data

from .. import provenance
from ..allocator import keep_freed_memory
from ..config import MODEL_SCHEMAS, Config
from ..errors import RunFailed
from ..models import family
from ..report import append_record
from ..report.store import record_path
from ..run import NodeRun, resolve_device, run_configs, start_node_run
from ..training.checkpoint import load_state
from ..training.loop import rng_states, set_rng_states
from ..validate import validate

STATE_FILE = "trainer.pt"
# Reported every epoch (plain floats, the mean over the trial's runs): what ASHA and the progress table read.
REPORTED = ("loss", "train", "val", "test", "best_val", "nfe_forward", "nfe_backward")


class TrialFailed(RunFailed):
    """A run of the trial diverged; every run's record is written (that one with status failed), and Ray marks
    the trial ERROR."""


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
    """After each lockstep epoch: report the runs' mean to Tune, checkpoint every ``every`` epochs, read the
    stop board."""

    def __init__(self, every: int, board, trial_id: str) -> None:
        self.every, self.board, self.trial_id = every, board, trial_id
        self.stop_requested = False

    def after_epoch(self, group: Lockstep, metrics: list[dict[str, float]]) -> bool:
        """Report; True when the scheduler has stopped this trial."""
        trainers = [run.trainer for run in group.runs]
        result = {key: mean(float(m[key]) for m in metrics) for key in REPORTED}
        epoch = max(t.epoch for t in trainers)
        result.update(epoch=epoch, test_at_best_val=mean(float(t.outcome.test_at_best_val) for t in trainers))
        if self.every and epoch % self.every == 0 and epoch < trainers[0].train_cfg.epochs:
            with tempfile.TemporaryDirectory() as folder:
                torch.save({"runs": group.state_dicts()}, Path(folder) / STATE_FILE)
                # report() copies the folder to the sweep's storage before it returns.
                tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(result)
        if self.board is not None and ray.get(self.board.should_stop.remote(self.trial_id)):
            self.stop_requested = True
        return self.stop_requested


class Lockstep:
    """Several runs trained one epoch at a time each, every run with its own RNG state (so each trains as it
    would alone); runs that end early (patience, divergence) drop out while the others go on."""

    def __init__(self, runs: list[NodeRun], rng: list[dict]) -> None:
        self.runs, self.rng = runs, rng  # rng[i]: run i's RNG state between its epochs

    def state_dicts(self) -> list[dict]:
        return [{**run.trainer.state_dict(), "rng": rng} for run, rng in zip(self.runs, self.rng, strict=True)]

    def load_state_dicts(self, states: list[dict]) -> None:
        for run, state in zip(self.runs, states, strict=True):
            run.trainer.load_state_dict(state)
        self.rng = [state["rng"] for state in states]

    def _advance(self, index: int, step) -> dict[str, float] | None:
        set_rng_states(self.rng[index])
        metrics = next(step, None)
        self.rng[index] = rng_states()
        return metrics

    def train(self, report: TuneReport) -> None:
        steps = [run.trainer.epochs() for run in self.runs]
        last: list[dict[str, float] | None] = [None] * len(steps)
        live = list(range(len(steps)))
        while live:
            for index in list(live):
                metrics = self._advance(index, steps[index])
                if metrics is None:
                    live.remove(index)
                else:
                    last[index] = metrics
            failed = any(run.trainer.outcome.status != "ok" for run in self.runs)
            if live and (failed or report.after_epoch(self, [m for m in last if m is not None])):
                for index in live:  # end cleanly: the generator fills the run's outcome
                    self.runs[index].trainer.should_stop = True
                    self._advance(index, steps[index])
                return


def restore(group: Lockstep) -> int | None:
    """Load the trial's last checkpoint into its runs (a resumed sweep); the epoch it resumes from."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        state = load_state(Path(folder) / STATE_FILE)  # weights-only: tensors and plain values, no pickled objects
    group.load_state_dicts(state.get("runs", [state]))  # [state]: a one-run checkpoint of an older sweep
    return max(run.trainer.epoch for run in group.runs)


def run_name(cfg: DictConfig, trial_id: str, many: bool) -> str:
    return f"{cfg.tag}/{trial_id}" + (f" {cfg.split.name}[{cfg.split.index}] seed {cfg.seed}" if many else "")


def train_trial(config: dict[str, Any], data: Data, board: str | None = None) -> None:
    """Ray Tune function trainable: the runs of ``config`` on ``data``; appends one record per run."""
    # The same warnings pytest filters; in a trial they would be repeated by every worker.
    warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
    cfg = typed_config(plain(config))
    validate(cfg)
    torch.set_num_threads(max(1, int(cfg.tuner.cpus_per_trial)))
    provenance.git_commit()  # cached now: the records name the code as it was when the trial started
    keep_freed_memory(cfg.keep_freed_memory)
    trial_id = tune.get_context().get_trial_id()
    device = resolve_device(cfg.device)

    data = data.to(device)
    graph = family(cfg.model).graph(data, cfg.model)  # per trial: the space may vary self-loops or rewiring
    graph = graph.to(device) if hasattr(graph, "to") else graph
    configs = run_configs(cfg)
    runs, rng = [], []
    for one in configs:
        runs.append(start_node_run(one, data, graph, device, name=run_name(one, trial_id, len(configs) > 1)))
        rng.append(rng_states())  # right after the run's seeding and model initialisation
    group = Lockstep(runs, rng)
    resumed_from = restore(group)
    report = TuneReport(cfg.tuner.checkpoint_every, ray.get_actor(board) if board else None, trial_id)
    group.train(report)

    errors = []
    for run in runs:
        record, outcome = run.record(), run.trainer.outcome
        record.update(
            sweep=cfg.tag,
            trial_id=trial_id,
            stopped_early=report.stop_requested and outcome.epochs_run < cfg.train.epochs,
            resumed_from=resumed_from,
        )
        append_record(record_path(cfg.results_dir, cfg.model.name, cfg.dataset.name), record)
        if outcome.status != "ok":
            errors.append(f"{record['error']} (epoch {record['failed_epoch']})")
    if errors:
        raise TrialFailed(errors[0]) from None
