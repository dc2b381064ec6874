"""The sweep driver behind ``tune.py``: compose once, search with Ray Tune, record, summarise, export.

Flow: check the tuner settings and the search space (before anything slow); load the data once; start or
join Ray (``tuner.address``); run a new ``tune.Tuner`` or restore an interrupted one (``tuner.resume``);
then read this sweep's records back from the results store, print and write the top-k summary beside
them, and export the best trial as ``conf/experiment/sweep_<name>.yaml``.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..data import load_graph
from ..errors import ConfigError, GrandBenchError
from ..report.store import portable_paths, record_path
from ..run import absolute
from ..validate import validate
from .checks import check_runs_per_trial, check_tuner, max_t, sweep_name
from .export import export_preset, preset_name
from .scheduler import board_name, make_scheduler, open_board
from .space import build_param_space, searched_keys, space_name
from .summary import SweepSummary, column_name, markdown, rank, sweep_records
from .trainable import TrialFailed, train_trial

# The progress table: these metrics beside the searched parameters (Ray's full table is dozens of columns).
PROGRESS_METRICS = {"epoch": "epoch", "val": "val", "best_val": "best val", "test_at_best_val": "test@best"}


@dataclass
class SweepOutcome:
    summary: SweepSummary
    preset: Path | None  # the exported best config (None when interrupted, stopped or nothing finished ok)
    summary_file: Path
    seconds: float

    @property
    def interrupted(self) -> bool:
        return self.summary.unfinished > 0


def trial_container(cfg: DictConfig, sweep: str) -> dict:
    """The resolved config every trial starts from: tag = sweep, absolute paths, no progress bar."""
    base = copy.deepcopy(cfg)
    base.tag = sweep  # before resolving: logger.group is ${tag}
    base.train.progress = False
    for key in ("data_root", "raw_mirror", "results_dir"):
        path = absolute(base[key])
        base[key] = str(path) if path is not None else None
    base.logger.dir = str(absolute(base.logger.dir))
    return OmegaConf.to_container(base, resolve=True)


class OneLineDivergence(logging.Filter):
    """A diverged trial is an expected outcome: Ray's error line gets its reason instead of a long traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, TrialFailed):  # Ray's RayTaskError(TrialFailed) subclasses the cause
            record.msg, record.args = f"{record.getMessage()}: {getattr(error, 'cause', error)}", ()
            record.exc_info, record.exc_text = None, None
        return True


def quiet_divergences() -> None:
    ray_logger = logging.getLogger("ray.tune.execution.tune_controller")
    if not any(isinstance(f, OneLineDivergence) for f in ray_logger.filters):
        ray_logger.addFilter(OneLineDivergence())


def connect(address: str, worker_niceness: int) -> None:
    """Start an embedded Ray (``local``: always a fresh one, never a stale cluster) or join a running one."""
    import ray

    try:
        if address == "local":
            # worker_niceness: a raylet setting, so it reaches only the Ray this call starts.
            ray.init(address="local", include_dashboard=False, _system_config={"worker_niceness": worker_niceness})
        else:
            ray.init(address=address)
    except ConnectionError as err:
        raise GrandBenchError(
            f"tuner.address={address}: no Ray cluster there ({str(err).splitlines()[0]}); start one with "
            "`ray start --head` (and `ray start --address=<head>:6379` on the other nodes), or use tuner.address=local"
        ) from None


def trial_dirname(trial) -> str:
    """Trial folders named by trial id only: the id in every record finds its folder, and names stay short."""
    return trial.trial_id


def make_tuner(cfg: DictConfig, sweep: str, storage: Path, param_space: dict, params: list[str], trainable, callbacks):
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    t = cfg.tuner
    reporter = tune.CLIReporter(
        metric_columns=PROGRESS_METRICS,
        parameter_columns={key.replace(".", "/"): column_name(key) for key in params},
        max_report_frequency=20,
        sort_by_metric=True,  # metric and mode come from TuneConfig (giving them twice is an error)
    )
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=t.metric,
            mode=t.mode,
            scheduler=make_scheduler(t, sweep, max_t(cfg)),
            num_samples=t.num_samples,
            search_alg=BasicVariantGenerator(random_state=t.search_seed, max_concurrent=t.max_concurrent_trials or 0),
            trial_dirname_creator=trial_dirname,
            reuse_actors=True,  # a trial ends by returning (never killed mid-epoch), so its worker can run the next
        ),
        run_config=tune.RunConfig(
            name=sweep,
            storage_path=str(storage),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=0),  # a diverged trial stays failed; the sweep goes on
            progress_reporter=reporter,
            verbose=1,
            callbacks=list(callbacks),
        ),
    )


def with_fixed_values(cfg: DictConfig, entries: dict) -> DictConfig:
    """``cfg`` with the space's fixed values (entries that are not domains): what every trial runs."""
    fixed = copy.deepcopy(cfg)
    for key, spec in entries.items():
        if not isinstance(spec, dict):
            OmegaConf.update(fixed, key, spec, merge=False)
    return fixed


def run_sweep(cfg: DictConfig, callbacks: Sequence = ()) -> SweepOutcome:
    """Run (or resume) the sweep ``cfg`` describes. ``callbacks``: extra Ray Tune callbacks (tests)."""
    start = time.perf_counter()
    check_tuner(cfg)
    validate(cfg)
    sweep, t = sweep_name(cfg), cfg.tuner
    storage = absolute(t.storage_path)
    experiment = storage / sweep
    space = space_name(cfg)
    container = trial_container(cfg, sweep)
    param_space, entries = build_param_space(cfg, container, space)
    cfg = with_fixed_values(cfg, entries)
    check_tuner(cfg)  # again, on what the trials run: a space that fixes train.epochs sets ASHA's max_t
    params = searched_keys(entries)
    check_runs_per_trial(cfg, list(entries))
    if t.resume and not experiment.is_dir():
        raise ConfigError(f"tuner.resume=true but there is no sweep '{sweep}' at {experiment}; run it without resume")
    if not t.resume and experiment.exists():
        raise ConfigError(
            f"sweep '{sweep}' already exists at {experiment}: continue it with tuner.resume=true, "
            "or start another with tuner.sweep=<new name>"
        )
    data = load_graph(cfg.dataset, cfg.split, absolute(cfg.data_root), absolute(cfg.raw_mirror))

    # The classic CLIReporter honours our column choice; Ray's newer console output ignores it.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Keeping one checkpoint per trial forces a state snapshot at each; Ray warns about that every few
    # seconds on short trials, though it costs milliseconds here.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    import ray
    from ray import tune

    connect(t.address, t.worker_niceness)
    quiet_divergences()
    try:
        # Only ASHA stops trials; the handle is held for the whole sweep (the board lives while it is held).
        board = open_board(sweep) if t.scheduler == "asha" else None
        trainable = tune.with_resources(
            tune.with_parameters(train_trial, data=data, board=board_name(sweep) if board else None),
            {"cpu": t.cpus_per_trial, "gpu": t.gpus_per_trial},
        )
        if t.resume:
            if not tune.Tuner.can_restore(str(experiment)):
                raise ConfigError(f"tuner.resume=true but {experiment} holds no restorable Ray Tune state")
            # Finished and failed trials stay as they are (a divergence would only repeat); unfinished ones
            # continue from their last checkpoint.
            tuner = tune.Tuner.restore(str(experiment), trainable=trainable, resume_unfinished=True)
        else:
            tuner = make_tuner(cfg, sweep, storage, param_space, params, trainable, callbacks)
        try:
            results = tuner.fit()
        except (RuntimeError, ray.exceptions.RayError) as err:
            # Ray's controller gave up on the whole sweep (its out-of-memory killer took a worker, a node
            # died): summarise what finished; the trial folders (named by trial id) are the sweep's trials.
            stopped = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            trial_ids, errors = {p.name for p in experiment.iterdir() if p.is_dir()}, {}
        else:
            stopped = None
            trial_ids = {Path(result.path).name for result in results}
            errors = {Path(r.path).name: str(r.error).strip().splitlines()[-1] for r in results if r.error is not None}
    finally:
        ray.shutdown()

    out_file = record_path(container["results_dir"], cfg.model.name, cfg.dataset.name)
    records = sweep_records(out_file, sweep, trial_ids)
    with_record = {r["trial_id"] for r in records}
    # A trial is done once it wrote its record or errored; Ray marks the trials an interruption stopped as
    # TERMINATED in the results (its saved state keeps them as running, which is what a resume continues).
    unfinished = len(trial_ids - with_record - set(errors))
    summary = SweepSummary(
        sweep=sweep,
        ranked=rank(records, t.metric, t.mode),
        failed=[r for r in records if r["status"] != "ok"],
        errored={tid: message for tid, message in errors.items() if tid not in with_record},
        unfinished=unfinished,
        stopped=stopped,
    )
    seconds = time.perf_counter() - start
    preset = None
    if summary.best is not None and not unfinished and not stopped:
        preset = export_preset(summary.best, sweep, preset_header(cfg, summary, space))
    summary.header = summary_header(cfg, summary, space, len(trial_ids), seconds, out_file, preset)
    summary_file = out_file.parent / f"sweep_{sweep}.md"
    text = markdown(summary, params, t.top_k)
    summary_file.write_text(text, encoding="utf-8")
    print(text + f"\nsummary written to {summary_file}", flush=True)
    return SweepOutcome(summary, preset, summary_file, seconds)


def tuner_line(cfg: DictConfig, space: str) -> str:
    t = cfg.tuner
    rule = (
        f"grace {t.grace_period} epochs, reduction x{t.reduction_factor}, max_t {max_t(cfg)}"
        if t.scheduler == "asha"
        else f"every trial {cfg.train.epochs} epochs"
    )
    return f"tuner {t.name} ({rule}; {t.metric}, {t.mode}), search space `{space}`"


def preset_header(cfg: DictConfig, summary: SweepSummary, space: str) -> list[str]:
    best, name = summary.best, preset_name(summary.sweep)
    scores = f"val {100 * best['best_val']:.2f} %, test at best val {100 * best['test_at_best_val']:.2f} %"
    if best["runs"] == 1:
        lines = [
            f"{scores} (epoch {best['best_epoch']} of {best['epochs_run']}, {best['model']} on {best['dataset']}, "
            f"{best['split']} split {best['split_index']}, seed {best['seed']}). Written by tune.py.",
            f"Re-run: python train.py experiment={name}",
        ]
    else:
        lines = [
            f"{scores}: means over its {best['runs']} runs ({best['model']} on {best['dataset']}, {best['split']} "
            f"split, {runs_args(cfg)}). Written by tune.py.",
            f"Re-run: python train.py experiment={name} {runs_args(cfg)}",
        ]
    return [
        f"Best trial of sweep '{summary.sweep}' ({best['trial_id']}; {tuner_line(cfg, space)}):",
        *lines,
        f"The papers' protocol (many splits x seeds): python train.py experiment={name} 'seeds=[0,1,2,3,4,5,6,7,8,9]'",
    ]


def runs_args(cfg: DictConfig) -> str:
    """The splits / seeds every trial ran, as train.py arguments."""
    lists = {key: cfg[key] for key in ("splits", "seeds") if cfg[key] is not None}
    return " ".join(f"'{key}=[{','.join(str(v) for v in values)}]'" for key, values in lists.items())


def summary_header(
    cfg: DictConfig, summary: SweepSummary, space: str, trials: int, seconds: float, out_file: Path, preset
) -> list[str]:
    ok, failed, errored = len(summary.ranked), len(summary.failed), len(summary.errored)
    done = ok + failed + errored
    minutes, secs = divmod(int(round(seconds)), 60)
    unfinished = f", {summary.unfinished} unfinished (resume with tuner.resume=true)" if summary.unfinished else ""
    records, preset_file = portable_paths(str(out_file)), portable_paths(str(preset)) if preset else None
    lines = [
        f"## Sweep `{summary.sweep}`: {cfg.model.name} on {cfg.dataset.name} ({cfg.split.name} split)",
        "",
        f"- {tuner_line(cfg, space)}",
        f"- {trials} trials: {ok} ok ({summary.stopped_early} stopped early by the scheduler), "
        f"{failed} failed (diverged), {errored} errored{unfinished}; {done} finished",
        f"- {minutes}m{secs:02d}s for this invocation; records: {records} (sweep `{summary.sweep}`)",
    ]
    if summary.stopped:
        lines.append(f"- stopped by Ray before every trial had run: {summary.stopped}")
    best = summary.best
    if best is not None:
        lines.append(
            f"- best: trial `{best['trial_id']}`, val {100 * best['best_val']:.2f} %, "
            f"test at best val {100 * best['test_at_best_val']:.2f} %"
            + (f" -> {preset_file} (python train.py experiment={preset_name(summary.sweep)})" if preset else "")
        )
    return lines
