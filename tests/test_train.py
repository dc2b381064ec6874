"""End to end on real Cora: run records, determinism, recorded failures, and the CLI's exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from grand_bench.report import read_records
from grand_bench.run import run

from .data_fixtures import REPO

FAST = [
    "model=grand_l",
    "dataset=cora",
    "solver=rk4",
    "solver.step_size=1.0",
    "model.time=2.0",
    "model.hidden_dim=16",
    "model.attention.heads=2",
    "model.attention.dim=16",
    "train.epochs=3",
]

RECORD_KEYS = {
    "schema_version",
    "run_id",
    "timestamp",
    "model",
    "dataset",
    "split",
    "split_index",
    "split_sizes",
    "seed",
    "metric",
    "status",
    "error",
    "failed_epoch",
    "best_val",
    "test_at_best_val",
    "best_epoch",
    "epochs_run",
    "train_seconds",
    "seconds_per_epoch",
    "nfe_forward",
    "nfe_backward",
    "nfe_eval",
    "num_params",
    "peak_memory_mb",
    "git",
    "versions",
    "machine",
    "config",
    "history",
}


def test_run_writes_one_complete_record_per_run(run_cfg, tmp_path):
    records = run(run_cfg(*FAST, "seeds=[0,1]"))
    stored = read_records(tmp_path / "runs")
    assert len(records) == len(stored) == 2
    for record in stored:
        assert record.keys() >= RECORD_KEYS
        assert record["status"] == "ok" and record["error"] is None
        assert record["split"] == "random" and record["split_sizes"] == {"train": 140, "val": 1360, "test": 985}
        assert 0 <= record["test_at_best_val"] <= 1 and 1 <= record["best_epoch"] <= record["epochs_run"] == 3
        assert record["nfe_forward"] == 8  # rk4: 4 evaluations x 2 steps
        assert record["nfe_backward"] == 0  # plain backprop re-uses the forward graph
        assert record["num_params"] > 0 and record["peak_memory_mb"] > 0
        assert record["versions"]["torch"].startswith("2.13") and "torchdiffeq" in record["versions"]
        assert record["config"]["model"]["hidden_dim"] == 16 and record["config"]["seed"] == record["seed"]
        assert len(record["history"]["val"]) == 3
    assert [r["split_index"] for r in stored] == [0, 1]  # each seed draws its own random split


def test_same_seed_gives_identical_numbers(run_cfg):
    first, second = (run(run_cfg(*FAST, "seed=7"))[0] for _ in range(2))
    assert first["history"] == second["history"]
    assert first["test_at_best_val"] == second["test_at_best_val"]


def test_explicit_splits_times_seeds(run_cfg):
    records = run(run_cfg(*FAST, "train.epochs=1", "splits=[3,4]", "seeds=[0,1]"))
    assert [(r["split_index"], r["seed"]) for r in records] == [(3, 0), (3, 1), (4, 0), (4, 1)]


def test_max_nfe_guard_records_a_failed_run(run_cfg, tmp_path):
    records = run(run_cfg(*FAST, "solver.max_nfe=5"))
    stored = read_records(tmp_path / "runs")
    assert records[0]["status"] == stored[0]["status"] == "failed"
    assert "MaxNFEExceeded" in stored[0]["error"] and "max_nfe=5" in stored[0]["error"]
    assert stored[0]["failed_epoch"] == 1


def test_time_selection_picks_a_time_on_validation(run_cfg):
    record = run(run_cfg(*FAST, "eval.time_selection=true", "eval.time_points=5"))[0]
    assert record["status"] == "ok" and record["best_time"] in (0.0, 1.5, 3.0, 4.5, 6.0)


def test_public_split_and_nl_rw_run(run_cfg):
    record = run(run_cfg(*FAST, "model=grand_nl_rw", "split=public", "model.rewiring.k=8", "train.epochs=1"))[0]
    assert record["status"] == "ok"
    assert record["split_sizes"] == {"train": 140, "val": 500, "test": 1000}


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["model=grand_x"],
            "error: unknown model 'grand_x'; valid: appnp, cgnn, cheb, gat, gatedgcn, gcn, gcnii, gin, graff,",
        ),
        (["dataset=imagenet"], "error: unknown dataset 'imagenet'; valid: actor, chameleon, citeseer, coauthor_cs"),
        (["solver=rk45"], "error: unknown solver 'rk45'; valid:"),
        (["split=kfold"], "error: unknown split 'kfold'; valid: geom_gcn, official, public, random, stratified"),
        (["solver=rk4"], "error: solver.method 'rk4' is fixed-step: set solver.step_size (> 0)"),
        (["tuner=asha"], "error: tuner=asha is a sweep: run it with tune.py"),
        (["train.select=val_auc"], "error: unknown train.select 'val_auc'; valid: val_metric, val_loss, val_objective"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_code_2(args, message, tmp_path):
    result = cli(*args, f"results_dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("*.jsonl"))  # nothing half-written


def test_cli_missing_data_names_file_and_mirror_variable(tmp_path):
    result = cli(
        "dataset=pubmed",
        f"data_root={tmp_path}/data",
        "raw_mirror=null",
        f"results_dir={tmp_path}",
        env={"GRAND_BENCH_OFFLINE": "1"},
    )
    assert result.returncode == 2
    assert "ind.pubmed" in result.stderr and "GRAND_BENCH_RAW" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_failed_run_exits_1_and_is_recorded(planetoid_root, tmp_path):
    result = cli(
        *FAST,
        "solver.max_nfe=3",
        f"data_root={planetoid_root}",
        "raw_mirror=null",
        f"results_dir={tmp_path}",
        "train.progress=false",
    )
    assert result.returncode == 1, result.stderr
    assert "1 of 1 run(s) failed" in result.stderr
    (line,) = (tmp_path / "grand_l_cora.jsonl").read_text().splitlines()
    assert json.loads(line)["status"] == "failed"


def test_wandb_logger_works_offline_without_network_or_key(run_cfg, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    record = run(run_cfg(*FAST, "train.epochs=1", "logger=wandb", "logger.mode=offline", f"logger.dir={tmp_path}"))[0]
    assert record["status"] == "ok"
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))


def test_resume_from_a_checkpoint_gives_the_uninterrupted_result(ring):
    from grand_bench.config import EvalCfg, OptimCfg, SolverCfg, TrainCfg
    from grand_bench.data import Split
    from grand_bench.models.grand import build_grand, diffusion_graph
    from grand_bench.training import Trainer, seed_everything

    from .test_models import grand_cfg

    cfg = grand_cfg(input_dropout=0.5, dropout=0.3)
    split = Split(torch.arange(0, 10), torch.arange(10, 20), torch.arange(20, 30))

    def trainer(epochs: int) -> Trainer:
        seed_everything(0)
        model = build_grand(cfg, SolverCfg(method="rk4", step_size=0.5), ring)
        graph = diffusion_graph(ring, cfg)
        return Trainer(
            model, ring.x, graph, ring.y, split, OptimCfg(), TrainCfg(epochs=epochs, progress=False), EvalCfg()
        )

    uninterrupted = trainer(6).fit()
    first = trainer(3)
    first.fit()
    state = first.state_dict()
    resumed = trainer(6)
    resumed.load_state_dict(state)
    outcome = resumed.fit()
    assert outcome.history == uninterrupted.history
    assert (outcome.best_epoch, outcome.test_at_best_val) == (uninterrupted.best_epoch, uninterrupted.test_at_best_val)


def test_epochs_one_at_a_time_match_fit_and_time_only_the_training(ring):
    """Trainer.epochs(), as a lockstep sweep trial drives it: the same run as fit(), and the seconds it stood
    suspended between epochs (while other runs trained) are not in its timings."""
    from grand_bench.config import BaselineModelCfg, EvalCfg, OptimCfg, SolverCfg, TrainCfg
    from grand_bench.data import Split
    from grand_bench.models.baselines import baseline_graph, build_baseline
    from grand_bench.training import Trainer, seed_everything

    split = Split(torch.arange(0, 10), torch.arange(10, 20), torch.arange(20, 30))
    cfg = BaselineModelCfg(name="mlp", layer="mlp", hidden_dim=8)

    def trainer() -> Trainer:
        seed_everything(0)
        model = build_baseline(cfg, SolverCfg(), ring)
        train_cfg = TrainCfg(epochs=3, progress=False)
        return Trainer(model, ring.x, baseline_graph(ring, cfg), ring.y, split, OptimCfg(), train_cfg, EvalCfg())

    whole = trainer().fit()
    stepped = trainer()
    for _ in stepped.epochs():
        time.sleep(0.5)
    assert stepped.outcome.history == whole.history and stepped.outcome.epochs_run == 3
    assert stepped.outcome.train_seconds < 0.5 and stepped.state_dict()["elapsed"] == stepped.outcome.train_seconds


def test_nodes_per_step_takes_each_loss_on_a_fresh_batch_of_training_nodes(ring):
    """train.nodes_per_step: each step's loss covers that many distinct training nodes, drawn anew per step."""
    from grand_bench.config import BaselineModelCfg, EvalCfg, OptimCfg, SolverCfg, TrainCfg
    from grand_bench.data import Split
    from grand_bench.models.baselines import baseline_graph, build_baseline
    from grand_bench.training import Trainer

    split = Split(torch.arange(0, 12), torch.arange(12, 20), torch.arange(20, 30))
    cfg = BaselineModelCfg(name="mlp", layer="mlp", hidden_dim=8)
    model = build_baseline(cfg, SolverCfg(), ring)
    graph = baseline_graph(ring, cfg)
    batches = Trainer(model, ring.x, graph, ring.y, split, OptimCfg(), TrainCfg(nodes_per_step=5), EvalCfg())
    drawn = [batches.training_nodes() for _ in range(20)]
    assert all(len(b) == 5 and len(set(b.tolist())) == 5 and set(b.tolist()) <= set(range(12)) for b in drawn)
    assert len({tuple(sorted(b.tolist())) for b in drawn}) > 1
    for size in (None, 12, 50):  # the whole training set
        whole = Trainer(model, ring.x, graph, ring.y, split, OptimCfg(), TrainCfg(nodes_per_step=size), EvalCfg())
        assert torch.equal(whole.training_nodes(), split.train)


def test_nodes_per_step_below_one_is_refused(run_cfg):
    from grand_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="train.nodes_per_step must be > 0, got 0"):
        run(run_cfg(*FAST, "train.nodes_per_step=0"))


@pytest.mark.parametrize("select", ["val_metric", "val_loss", "val_objective"])
def test_reported_epoch_is_the_first_best_on_the_selected_validation_score(run_cfg, select):
    record = run(run_cfg(*FAST, "train.epochs=12", f"train.select={select}"))[0]
    history, best = record["history"], record["best_epoch"]
    if select != "val_metric":
        assert best == 1 + min(range(12), key=lambda e: (history["val_loss"][e], e))
    else:
        assert "val_loss" not in history
        assert best == 1 + max(range(12), key=lambda e: (history["val"][e], -e))
    assert record["test_at_best_val"] == pytest.approx(history["test"][best - 1], abs=1e-6)
    assert record["best_val"] == pytest.approx(history["val"][best - 1], abs=1e-6)


def test_progress_line_names_nfe_only_for_ode_models():
    from grand_bench.run import format_run

    record = {
        "model": "gcn",
        "dataset": "cora",
        "split": "public",
        "split_index": 0,
        "seed": 0,
        "status": "ok",
        "metric": "accuracy",
        "best_val": 0.8,
        "test_at_best_val": 0.81,
        "best_epoch": 10,
        "epochs_run": 20,
        "seconds_per_epoch": 0.01,
        "nfe_forward": 0.0,
        "nfe_backward": 0.0,
    }
    assert "NFE" not in format_run(1, 1, record)
    assert "NFE fwd 26.0 bwd 3.0" in format_run(1, 1, {**record, "nfe_forward": 26.0, "nfe_backward": 3.0})
