"""Ray Tune sweeps (tune.py): search spaces, tuner checks, and short real sweeps on Cora with address=local.

The sweeps are tiny (2 trials, 2-3 epochs of a 16-wide GRAND-l with rk4) and each starts and shuts down its
own Ray instance; ``ray_session`` makes sure none is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest
import yaml
from ray import tune

from grand_bench.cli import CONF_DIR, group_options
from grand_bench.errors import ConfigError
from grand_bench.report import read_records
from grand_bench.tune.checks import check_tuner
from grand_bench.tune.space import DOMAINS, available_spaces, build_param_space
from grand_bench.tune.sweep import run_sweep, trial_container

from .conftest import compose_cfg
from .data_fixtures import REPO
from .test_train import FAST


def write_space(folder, entries: dict) -> str:
    path = folder / f"space_{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(entries))
    return str(path)


def train_preset(preset: str, data_root, results_dir, *overrides: str) -> list[dict]:
    """Run ``train.py experiment=<preset>`` as a user would (a fresh process); the records it wrote."""
    rerun = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            f"experiment={preset}",
            *overrides,
            f"data_root={data_root}",
            "raw_mirror=null",
            f"results_dir={results_dir}",
            "train.progress=false",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert rerun.returncode == 0, rerun.stderr
    return read_records(results_dir)


# ---------------------------------------------------------------- search spaces (no Ray started)

EVERY_DOMAIN = {
    "optim.lr": {"type": "loguniform", "low": 1.0e-3, "high": 0.1},
    "optim.weight_decay": {"type": "qloguniform", "low": 1.0e-4, "high": 1.0e-2, "q": 1.0e-4},
    "model.dropout": {"type": "uniform", "low": 0.0, "high": 0.5},
    "model.time": {"type": "quniform", "low": 1.0, "high": 10.0, "q": 0.5},
    "model.hidden_dim": {"type": "randint", "low": 8, "high": 33},
    "model.attention.dim": {"type": "qrandint", "low": 16, "high": 64, "q": 16},
    "optim.name": {"type": "choice", "values": ["adam", "adamax"]},
    "seed": {"type": "grid", "values": [0, 1, 2]},
    "model.input_dropout": 0.4,
}


def test_every_domain_type_converts_to_its_tune_domain(tmp_path):
    assert set(DOMAINS) == {e["type"] for e in EVERY_DOMAIN.values() if isinstance(e, dict)}
    cfg = compose_cfg(["model=grand_l", "dataset=cora", "tuner=asha"])
    space, entries = build_param_space(cfg, trial_container(cfg, "t"), write_space(tmp_path, EVERY_DOMAIN))
    assert entries.keys() == EVERY_DOMAIN.keys()
    lr, decay = space["optim"]["lr"], space["optim"]["weight_decay"]
    assert isinstance(lr, tune.search.sample.Float) and (lr.lower, lr.upper) == (1e-3, 0.1)
    assert type(lr.sampler).__name__.endswith("LogUniform") and decay.sampler.q == 1e-4
    assert type(decay.sampler.sampler).__name__.endswith("LogUniform")
    model = space["model"]
    assert type(model["dropout"].sampler).__name__.endswith("Uniform") and model["time"].sampler.q == 0.5
    assert isinstance(model["hidden_dim"], tune.search.sample.Integer) and model["hidden_dim"].upper == 33
    assert model["attention"]["dim"].sampler.q == 16
    assert space["optim"]["name"].categories == ["adam", "adamax"]
    assert space["seed"] == {"grid_search": [0, 1, 2]}
    assert model["input_dropout"] == 0.4 and model["attention"]["heads"] == cfg.model.attention.heads  # untouched
    for _ in range(20):  # samples stay inside their domains and keep their types
        assert 1e-3 <= lr.sample() <= 0.1
        assert isinstance(model["hidden_dim"].sample(), int) and 8 <= model["hidden_dim"].sample() < 33
        assert model["attention"]["dim"].sample() in (16, 32, 48, 64)
    assert space["results_dir"].startswith("/") and space["tag"] == "t" and space["train"]["progress"] is False


@pytest.mark.parametrize("name", available_spaces())
def test_every_shipped_space_builds_on_its_model_and_dataset(name):
    """<model>_<dataset>[_variant].yaml or <model>.yaml (checked on Cora)."""
    model = max((m for m in group_options("model") if name == m or name.startswith(f"{m}_")), key=len)
    rest = name[len(model) + 1 :]
    dataset = max((d for d in group_options("dataset") if rest.startswith(d)), key=len, default="cora")
    cfg = compose_cfg([f"model={model}", f"dataset={dataset}", "tuner=asha"])
    _, entries = build_param_space(cfg, trial_container(cfg, "t"), name)
    assert entries


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"optim.lr": {"type": "lognormal", "low": 1, "high": 2}},
            "optim.lr: unknown type 'lognormal'; valid: uniform",
        ),
        ({"optim.lrr": {"type": "uniform", "low": 0.1, "high": 0.2}}, "unknown key 'optim.lrr'; did you mean optim.lr"),
        ({"dataset.dev_size": {"type": "choice", "values": [500]}}, "'dataset.dev_size' cannot be searched"),
        ({"model.hidden_dim": {"type": "choice", "values": ["wide"]}}, "model.hidden_dim: value 'wide' does not fit"),
        ({"optim.lr": {"type": "uniform", "low": 0.2, "high": 0.1}}, "optim.lr: low must be < high"),
        ({"optim.lr": {"type": "loguniform", "low": 0, "high": 0.1}}, "loguniform needs low > 0"),
        (
            {"optim.lr": {"type": "quniform", "low": 0.1, "high": 0.2}},
            "type quniform takes low, high, q; got high, low",
        ),
        ({"model.hidden_dim": {"type": "randint", "low": 8.5, "high": 20}}, "randint needs integer low"),
    ],
)
def test_bad_search_space_entries_fail_in_one_line(tmp_path, entry, message):
    cfg = compose_cfg(["model=grand_l", "dataset=cora", "tuner=asha"])
    with pytest.raises(ConfigError) as err:
        build_param_space(cfg, trial_container(cfg, "t"), write_space(tmp_path, entry))
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["tuner=none"], "tune.py needs a tuner: tuner=asha or tuner=random"),
        (["tuner.scheduler=pbt"], "unknown tuner.scheduler 'pbt'; valid: asha, fifo"),
        (["tuner.metric=test"], "unknown tuner.metric 'test'; valid: val, best_val, loss"),
        (["tuner.metric=loss"], "tuner.mode 'max' ranks tuner.metric 'loss' backwards; valid: min"),
        (["tuner.address=cluster"], "unknown tuner.address 'cluster'; valid: local, auto, ray://<host>:<port>"),
        (["tuner.gpus_per_trial=0.25"], "tuner.gpus_per_trial=0.25 needs device=cuda"),
        (["tuner.grace_period=50", "train.epochs=20"], "tuner.grace_period=50 must be <= tuner.max_t"),
        (["tuner.reduction_factor=1"], "tuner.reduction_factor must be >= 2, got 1"),
        (["tuner.worker_niceness=20"], "tuner.worker_niceness must be in 0..19 (a nice value), got 20"),
        (["tuner.sweep=a/b"], "tuner.sweep 'a/b' must use only letters, digits"),
        (["dataset=zinc"], "dataset 'zinc' is graph-level (mini-batch training): run it with train.py"),
    ],
)
def test_bad_tuner_settings_are_named_with_their_choices(overrides, message):
    base = [] if overrides[0].startswith("tuner=") else ["tuner=asha"]
    with pytest.raises(ConfigError) as err:
        check_tuner(compose_cfg(["model=grand_l", "dataset=cora", *base, *overrides]))
    assert message in str(err.value)


def test_tuner_group_leaves_train_py_config_alone():
    cfg = compose_cfg(["model=grand_l", "dataset=cora"])
    assert cfg.tuner.name == "none" and cfg.tuner.storage_path == "results/sweeps"
    asha = compose_cfg(["tuner=asha"]).tuner
    assert (asha.scheduler, asha.metric, asha.mode) == ("asha", "val", "max")


# ---------------------------------------------------------------- real sweeps (Ray, address=local)


@pytest.fixture
def ray_session():
    """Whatever a test does, no Ray instance outlives it."""
    import ray

    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def sweep_cfg(run_cfg, tmp_path):
    """A tiny sweep config: FAST GRAND-l on real Cora, storage and records under tmp_path, a unique name."""
    name = f"pytest_{uuid.uuid4().hex[:8]}"

    def make(*overrides: str):
        return run_cfg(
            *FAST,
            "tuner=asha",
            f"tuner.sweep={name}",
            f"tuner.storage_path={tmp_path / 'sweeps'}",
            "tuner.num_samples=1",
            "tuner.grace_period=1",
            "tuner.checkpoint_every=1",
            *overrides,
        )

    yield make
    (CONF_DIR / "experiment" / f"sweep_{name}.yaml").unlink(missing_ok=True)


@pytest.mark.slow
def test_sweep_records_trials_a_failure_an_early_stop_and_exports_a_preset(
    sweep_cfg, ray_session, planetoid_root, tmp_path, monkeypatch
):
    """Two trials (a grid over max_nfe): one diverges, one is stopped by ASHA at max_t=2 of 3 epochs."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    space = write_space(
        tmp_path,
        {
            "solver.max_nfe": {"type": "grid", "values": [3, 1000]},
            "optim.lr": {"type": "uniform", "low": 0.01, "high": 0.02},
        },
    )
    cfg = sweep_cfg(
        f"tuner.space={space}", "tuner.max_t=2", "logger=wandb", "logger.mode=offline", f"logger.dir={tmp_path}"
    )
    outcome = run_sweep(cfg)
    name = cfg.tuner.sweep

    records = read_records(tmp_path / "runs")
    assert len(records) == 2 and len({r["trial_id"] for r in records}) == 2
    assert all(r["sweep"] == r["tag"] == name for r in records)
    failed, ok = sorted(records, key=lambda r: r["status"])
    assert failed["status"] == "failed" and failed["config"]["solver"]["max_nfe"] == 3
    assert "MaxNFEExceeded" in failed["error"] and failed["failed_epoch"] == 1
    assert ok["status"] == "ok" and ok["epochs_run"] == 2 and len(ok["history"]["val"]) == 2
    assert ok["stopped_early"] is True and ok["resumed_from"] is None  # ASHA's last rung is max_t=2 < 3 epochs
    assert ok["config"]["train"]["epochs"] == 3 and 0.01 <= ok["config"]["optim"]["lr"] <= 0.02
    # The trial ran at the driver's priority (tuner.worker_niceness=0), not 15 above it (Ray's default).
    assert ok["machine"]["niceness"] == os.nice(0)

    summary = outcome.summary
    assert (len(summary.ranked), len(summary.failed), summary.errored, summary.unfinished) == (1, 1, {}, 0)
    text = outcome.summary_file.read_text()
    assert outcome.summary_file.parent == tmp_path / "runs"
    assert "1 ok (1 stopped early by the scheduler), 1 failed (diverged)" in text and ok["trial_id"] in text
    assert {p.name for p in (tmp_path / "sweeps" / name).iterdir() if p.is_dir()} == {r["trial_id"] for r in records}
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) == 2  # wandb offline, no network, no key

    # The exported preset runs through train.py and trains exactly the trial's run.
    assert outcome.preset == CONF_DIR / "experiment" / f"sweep_{name}.yaml"
    assert outcome.preset.read_text().startswith("# @package _global_")
    (again,) = train_preset(f"sweep_{name}", planetoid_root, tmp_path / "rerun", "train.epochs=2")
    assert again["tag"] == f"sweep_{name}" and again["config"]["optim"]["lr"] == ok["config"]["optim"]["lr"]
    assert again["history"]["val"] == ok["history"]["val"] and again["best_val"] == ok["best_val"]


_interrupted: list[bool] = []  # module level: the callback is pickled into the sweep and restored with it


class InterruptMidTrial(tune.Callback):
    """Interrupt the sweep (as Ctrl+C would) once one trial has finished and another reported epoch 2."""

    def on_trial_result(self, iteration, trials, trial, result, **info):
        finished = [t for t in trials if t.status == "TERMINATED"]
        if not _interrupted and finished and result.get("epoch", 0) >= 2:
            _interrupted.append(True)
            os.kill(os.getpid(), signal.SIGUSR1)  # Tune's own handler: save the state, stop the trials


@pytest.mark.slow
def test_interrupted_sweep_resumes_without_redoing_finished_trials(sweep_cfg, ray_session, tmp_path):
    space = write_space(tmp_path, {"optim.lr": {"type": "grid", "values": [0.01, 0.02]}})
    # ASHA with its only rung at the last epoch: it stops no trial early, but its stop reaches each trial
    # through the stop board, before and after the resume.
    overrides = ["tuner.grace_period=3", f"tuner.space={space}", "tuner.max_concurrent_trials=1"]
    _interrupted.clear()
    first = run_sweep(sweep_cfg(*overrides), callbacks=[InterruptMidTrial()])
    assert _interrupted and first.interrupted and first.preset is None
    assert first.summary.unfinished == 1 and len(first.summary.ranked) == 1
    (done,) = read_records(tmp_path / "runs")
    assert done["epochs_run"] == 3

    second = run_sweep(sweep_cfg(*overrides, "tuner.resume=true"))
    assert not second.interrupted and second.preset is not None
    records = read_records(tmp_path / "runs")
    assert len(records) == 2  # the finished trial was not run again
    resumed = next(r for r in records if r["trial_id"] != done["trial_id"])
    assert resumed["resumed_from"] in (1, 2) and resumed["epochs_run"] == 3 and len(resumed["history"]["val"]) == 3
    assert {r["config"]["optim"]["lr"] for r in records} == {0.01, 0.02}


_failed: list[bool] = []  # module level, as _interrupted: the restored callback must not fail again


class FailingController(tune.Callback):
    """Raise inside Tune's controller once a trial has finished, where the error of a worker that Ray's
    out-of-memory killer took surfaces."""

    def on_step_end(self, iteration, trials, **info):
        if not _failed and any(t.status == "TERMINATED" for t in trials):
            _failed.append(True)
            raise RuntimeError("Caught unexpected exception: 1 worker(s) were killed due to the node running low")


@pytest.mark.slow
def test_sweep_that_ray_stops_is_summarised_without_a_preset_and_resumes(sweep_cfg, ray_session, tmp_path):
    space = write_space(tmp_path, {"optim.lr": {"type": "grid", "values": [0.01, 0.02]}})
    overrides = ["tuner.grace_period=3", f"tuner.space={space}", "tuner.max_concurrent_trials=1"]
    _failed.clear()
    first = run_sweep(sweep_cfg(*overrides), callbacks=[FailingController()])
    assert first.summary.stopped == "Caught unexpected exception: 1 worker(s) were killed due to the node running low"
    assert len(first.summary.ranked) == 1 and first.preset is None  # one of two trials: no "best" to export
    assert "stopped by Ray before every trial had run" in first.summary_file.read_text()

    second = run_sweep(sweep_cfg(*overrides, "tuner.resume=true"))
    assert second.summary.stopped is None and not second.interrupted and second.preset is not None
    assert {r["config"]["optim"]["lr"] for r in read_records(tmp_path / "runs")} == {0.01, 0.02}


_reported: list[dict] = []  # module level, as _interrupted


class KeepResults(tune.Callback):
    def on_trial_result(self, iteration, trials, trial, result, **info):
        _reported.append({"trial_id": trial.trial_id, "epoch": result["epoch"], "val": result["val"]})


@pytest.mark.slow
def test_trial_over_several_splits_trains_them_in_lockstep_and_reports_their_mean(
    sweep_cfg, ray_session, planetoid_root, tmp_path
):
    """splits=[0,1]: each trial trains one run per split; Tune sees the mean, each run trains as alone."""
    space = write_space(tmp_path, {"optim.lr": {"type": "grid", "values": [0.01, 0.05]}})
    _reported.clear()
    outcome = run_sweep(
        sweep_cfg(f"tuner.space={space}", "tuner=random", "split=random", "splits=[0,1]"), callbacks=[KeepResults()]
    )
    records = read_records(tmp_path / "runs")
    assert sorted((r["config"]["optim"]["lr"], r["split_index"]) for r in records) == [
        (0.01, 0),
        (0.01, 1),
        (0.05, 0),
        (0.05, 1),
    ]
    by_trial: dict[str, list[dict]] = {}
    for r in records:
        by_trial.setdefault(r["trial_id"], []).append(r)
    assert len(by_trial) == 2 and all(len(runs) == 2 for runs in by_trial.values())
    for result in _reported:  # what ASHA would compare: the mean of the runs' validation scores that epoch
        runs = by_trial[result["trial_id"]]
        epoch_mean = sum(r["history"]["val"][result["epoch"] - 1] for r in runs) / 2
        assert result["val"] == pytest.approx(epoch_mean, abs=1e-6)  # histories keep 6 decimals
    assert len(_reported) == 2 * 3

    best = outcome.summary.best
    assert best["runs"] == 2 and best["runs_of"] == [(0, 0), (1, 0)]
    means = {tid: sum(r["best_val"] for r in runs) / 2 for tid, runs in by_trial.items()}
    assert best["best_val"] == pytest.approx(max(means.values())) and means[best["trial_id"]] == max(means.values())
    assert "| rank | trial | runs |" in outcome.summary_file.read_text()
    assert "'splits=[0,1]'" in outcome.preset.read_text()

    # Private RNG streams: train.py trains each split of the best trial alone to the same numbers.
    runs = train_preset(f"sweep_{best['sweep']}", planetoid_root, tmp_path / "rerun", "splits=[0,1]")
    alone = {r["split_index"]: r["history"]["val"] for r in runs}
    assert alone == {r["split_index"]: r["history"]["val"] for r in by_trial[best["trial_id"]]}


def test_listed_runs_and_a_space_drawing_the_same_key_are_refused(run_cfg, tmp_path):
    space = write_space(tmp_path, {"seed": {"type": "grid", "values": [0, 1]}})
    cfg = run_cfg(*FAST, "tuner=random", f"tuner.space={space}", "seeds=[0,1]", f"tuner.storage_path={tmp_path}")
    with pytest.raises(ConfigError, match=r"seeds=\[...\] makes every trial run each of them, .* also draws 'seed'"):
        run_sweep(cfg)


def test_a_space_that_fixes_train_epochs_sets_ashas_last_rung(run_cfg, tmp_path):
    space = write_space(tmp_path, {"train.epochs": 2, "optim.lr": {"type": "uniform", "low": 0.01, "high": 0.02}})
    cfg = run_cfg(*FAST, "tuner=asha", f"tuner.space={space}", "tuner.grace_period=3", f"tuner.storage_path={tmp_path}")
    assert cfg.train.epochs == 3  # FAST's: grace_period 3 fits it, not the 2 epochs every trial runs
    with pytest.raises(ConfigError, match=r"tuner.grace_period=3 must be <= tuner.max_t \(default train.epochs\) 2"):
        run_sweep(cfg)


@pytest.mark.slow
def test_tune_cli_errors_are_one_line(tmp_path):
    def tune_py(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(REPO / "tune.py"), *args, f"tuner.storage_path={tmp_path}"]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)

    result = tune_py("tuner=bogus")
    assert result.returncode == 2 and result.stderr.strip() == "error: unknown tuner 'bogus'; valid: asha, random"
    result = tune_py("tuner.sweep=nothing_here", "tuner.resume=true")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: tuner.resume=true but there is no sweep 'nothing_here'")
    )
    assert not any(tmp_path.iterdir())  # nothing written
