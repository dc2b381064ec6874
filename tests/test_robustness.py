"""Robustness (issue 8): bad input fails in one line and leaves nothing behind; divergence is recorded; a killed
run resumes to the uninterrupted result; concurrent appends stay intact; raw files are checked; no secrets on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from grand_bench.data import DataError
from grand_bench.data.integrity import DIGEST_CACHE, PROCESSED_RECORD, known_checksums, sha256_of
from grand_bench.errors import ConfigError
from grand_bench.report import append_record, read_records
from grand_bench.run import run, run_configs
from grand_bench.run_key import finished_runs, run_key, setting_key
from grand_bench.training.checkpoint import Checkpointer, CheckpointError, load_state, save_state

from .conftest import compose_cfg
from .data_fixtures import REPO, mirror_path, write_geom_gcn_files
from .test_train import FAST

CORA_FILES = [f"ind.cora.{ext}" for ext in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")]


def leftovers(folder: Path) -> list[Path]:
    """Records or checkpoints a failed invocation left under ``folder``."""
    return [p for p in folder.rglob("*") if p.is_file() and (p.suffix in (".jsonl", ".pt", ".tmp"))]


def cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


def out_paths(folder: Path) -> list[str]:
    """Every place a run writes, inside ``folder`` (Hydra's run folder included)."""
    return [
        f"results_dir={folder / 'runs'}",
        f"checkpoint_dir={folder / 'ckpt'}",
        f"hydra.run.dir={folder / 'hydra'}",
    ]


# ------------------------------------------------------------------ config values: one line, before any data loads

CONFIG_CASES = [
    ("model.time=0", "model.time must be > 0, got 0.0"),
    ("model.dropout=1.0", "model.dropout must be in [0, 1), got 1.0"),
    ("model.input_dropout=-0.1", "model.input_dropout must be in [0, 1), got -0.1"),
    ("model.hidden_dim=0", "model.hidden_dim must be > 0, got 0"),
    ("model.attention.heads=3", "model.attention.heads=3 must be >= 1 and divide model.attention.dim=16"),
    ("model.attention.normaliser=sparsemax", "unknown model.attention.normaliser 'sparsemax'; valid: softmax"),
    ("model.rewiring.method=knn", "unknown model.rewiring.method 'knn'; valid: none, gdc"),
    ("model.rewiring.method=gdc model.rewiring.ppr_alpha=1.5", "model.rewiring.ppr_alpha must be in (0, 1), got 1.5"),
    (
        "model.rewiring.method=gdc model.rewiring.diffusion=heat model.rewiring.heat_time=0",
        "model.rewiring.heat_time must be > 0, got 0.0",
    ),
    ("model.edge_sampling=1.5", "model.edge_sampling must be in (0, 1], got 1.5"),
    ("solver.step_size=0", "solver.step_size must be > 0, got 0.0"),
    ("solver=dopri5 solver.rtol=0", "solver.rtol must be > 0, got 0.0"),
    ("solver=dopri5 solver.atol=-1e-9", "solver.atol must be > 0, got -1e-09"),
    ("solver.max_nfe=0", "solver.max_nfe must be > 0, got 0"),
    ("solver.method=rk45", "unknown solver.method 'rk45'; valid: euler, midpoint, rk4"),
    ("solver=euler solver.step_size=null", "solver.method 'euler' is fixed-step: set solver.step_size (> 0)"),
    ("solver.adjoint=true solver.adjoint_method=heun9", "unknown solver.adjoint_method 'heun9'; valid: euler"),
    ("optim.name=lbfgs", "unknown optim.name 'lbfgs'; valid: adam, adamw, adamax, rmsprop, sgd"),
    ("optim.lr=-1", "optim.lr must be > 0, got -1.0"),
    ("optim.weight_decay=-1", "optim.weight_decay must be >= 0, got -1.0"),
    ("optim.momentum=1.0", "optim.momentum must be in [0, 1), got 1.0"),
    ("train.epochs=0", "train.epochs must be > 0, got 0"),
    ("train.patience=0", "train.patience must be > 0, got 0"),
    ("train.checkpoint_every=-1", "train.checkpoint_every must be >= 0 (0 = no checkpoints), got -1"),
    ("eval.time_selection=true eval.time_points=1", "eval.time_points must be >= 2, got 1"),
    ("device=tpu", "unknown device 'tpu'; valid: cpu, cuda, auto"),
    ("split=geom_gcn split.index=10", "split index 10 out of range; split 'geom_gcn' has 10 split files (valid: 0..9)"),
    ("split=geom_gcn splits=[0,12]", "splits: split index 12 out of range; split 'geom_gcn' has 10 split files"),
    ("split=public split.index=2", "split index 2 out of range; split 'public' has one split (valid: 0)"),
    ("split=public split.lcc=true", "split.lcc=true does not go with split 'public'"),
    ("split.train_per_class=0", "split.train_per_class must be >= 1, got 0"),
    ("seeds=[0,-3]", "seeds: seed -3 out of range (valid: 0..2**32-1"),
    ("dataset.dev_size=0", "dataset.dev_size must be >= 1, got 0"),
    ("dataset.loader=csv", "unknown dataset.loader 'csv'; valid: planetoid, coauthor"),
    ("dataset=syn_cora dataset.homophily=0.35", "unknown dataset.homophily 0.35; valid: 0.00, 0.10"),
    ("dataset=syn_cora dataset.homophily=0.3 dataset.graph=4", "unknown dataset.graph 4; valid: 1, 2, 3"),
    ("logger=wandb logger.mode=cloud", "unknown logger.mode 'cloud'; valid: disabled, offline, online"),
    ("checkpoint_dir=''", "checkpoint_dir must name a folder, got an empty string"),
]


@pytest.mark.parametrize(("overrides", "message"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_value_is_one_line_before_any_data_loads(overrides, message, tmp_path, monkeypatch):
    # An empty data root, no mirror, no downloads: had validation let the value through, loading would
    # fail with a DataError instead of this ConfigError.
    monkeypatch.setenv("GRAND_BENCH_OFFLINE", "1")
    base = [f"data_root={tmp_path / 'data'}", "raw_mirror=null", *out_paths(tmp_path)[:2], "train.progress=false"]
    cfg = compose_cfg([*base, *FAST, *overrides.split()])
    with pytest.raises(ConfigError) as err:
        run(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "data").exists() and not leftovers(tmp_path)


# ------------------------------------------------------------------ the command line: one line, exit 2, no traceback

CLI_CASES = [
    ("model.hiden_dim=3", "error: unknown key 'model.hiden_dim'; valid keys of model: name, family, diffusivity"),
    ("model.hidden_dim=abc", "error: model.hidden_dim='abc': Value 'abc' of type 'str' could not be converted"),
    ("resume=maybe", "error: resume='maybe': Value 'maybe' is not a valid bool"),
    ("split=geom_gcn split.index=12", "error: split.index: split index 12 out of range; split 'geom_gcn' has 10"),
    ("model.time=${oc.env:GRAND_BENCH_NO_SUCH_VARIABLE}", "error: model.time: "),
]


@pytest.mark.slow
@pytest.mark.parametrize(("overrides", "message"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(overrides, message, tmp_path):
    result = cli(*FAST, *overrides.split(), *out_paths(tmp_path), env={"GRAND_BENCH_OFFLINE": "1"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # exactly one line
    assert result.stderr.startswith(message)
    assert not leftovers(tmp_path)


# ------------------------------------------------------------------ data files


def cora_root(tmp_path: Path) -> Path:
    mirror = mirror_path()
    if not (mirror / "Cora" / "raw").is_dir():
        pytest.skip(f"raw mirror not found at {mirror} (set GRAND_BENCH_RAW)")
    root = tmp_path / "data"
    shutil.copytree(mirror / "Cora" / "raw", root / "Cora" / "raw")
    return root


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [(truncate, "is truncated"), (flip_a_byte, "is altered")],
    ids=["truncated", "altered"],
)
def test_damaged_raw_file_is_named_with_how_to_restore_it(damage, message, tmp_path):
    root = cora_root(tmp_path)
    bad = root / "Cora" / "raw" / "ind.cora.graph"
    damage(bad)
    cfg = compose_cfg([*FAST, f"data_root={root}", "raw_mirror=null", *out_paths(tmp_path)[:2]])
    with pytest.raises(DataError) as err:
        run(cfg)
    text = str(err.value)
    assert f"raw file {bad} {message}" in text and "Cora/raw/ind.cora.graph in grand_bench/data/checksums.tsv" in text
    assert "delete it and run again to re-stage it from the raw mirror (GRAND_BENCH_RAW)" in text
    assert "\n" not in text and not (root / "Cora" / "processed" / "data.pt").exists() and not leftovers(tmp_path)


def test_damaged_file_in_the_mirror_is_blamed_on_the_mirror_and_not_kept(tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(cora_root(tmp_path) / "Cora" / "raw", mirror / "Cora" / "raw")
    truncate(mirror / "Cora" / "raw" / "ind.cora.x")
    root = tmp_path / "fresh"
    cfg = compose_cfg([*FAST, f"data_root={root}", f"raw_mirror={mirror}", *out_paths(tmp_path)[:2]])
    with pytest.raises(DataError, match=r"raw file .*mirror/Cora/raw/ind.cora.x in the raw mirror is truncated"):
        run(cfg)
    assert not (root / "Cora" / "raw" / "ind.cora.x").exists() and not leftovers(tmp_path)


def test_missing_raw_file_offline_names_it_and_the_mirror_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAND_BENCH_OFFLINE", "1")
    root = cora_root(tmp_path)
    (root / "Cora" / "raw" / "ind.cora.ty").unlink()
    cfg = compose_cfg([*FAST, f"data_root={root}", "raw_mirror=null", *out_paths(tmp_path)[:2]])
    with pytest.raises(DataError, match=r"missing raw file\(s\): .*ind.cora.ty .*set GRAND_BENCH_RAW"):
        run(cfg)
    assert not leftovers(tmp_path)


def test_raw_digests_are_cached_by_size_and_mtime(tmp_path):
    root = cora_root(tmp_path)
    run(compose_cfg([*FAST, "train.epochs=1", f"data_root={root}", "raw_mirror=null", *out_paths(tmp_path)[:2]]))
    cache = json.loads((root / DIGEST_CACHE).read_text())
    for name in CORA_FILES:
        path = root / "Cora" / "raw" / name
        size, mtime, sha = cache[f"Cora/raw/{name}"]
        assert (size, mtime) == (path.stat().st_size, path.stat().st_mtime_ns) and sha == sha256_of(path)
        assert sha == known_checksums()[f"Cora/raw/{name}"].sha256


def test_processed_cache_is_rebuilt_when_its_raw_files_change(tmp_path):
    """Cora's geom-gcn split files are not in the checksum table: rewriting them must reach the loaded masks."""
    root = cora_root(tmp_path)
    raw = root / "Cora" / "geom-gcn" / "raw"
    shutil.copytree(root / "Cora" / "raw", raw)
    overrides = [*FAST, "split=geom_gcn", "train.epochs=1", f"data_root={root}", "raw_mirror=null"]
    overrides += out_paths(tmp_path)[:2]
    first = write_geom_gcn_files(raw, "cora", num_nodes=2708, num_splits=10, seed=0)
    record = run(compose_cfg(overrides))[0]
    assert record["split_sizes"]["train"] == int(first[0]["train_mask"].sum())
    assert (root / "Cora" / "geom-gcn" / "processed" / PROCESSED_RECORD).is_file()

    second = write_geom_gcn_files(raw, "cora", num_nodes=2708, num_splits=10, seed=1)
    from grand_bench.data import load_graph

    cfg = compose_cfg(overrides)
    data = load_graph(cfg.dataset, cfg.split, root, None)
    assert torch.equal(data.train_mask[:, 0], torch.from_numpy(second[0]["train_mask"]).bool())
    assert not np.array_equal(first[0]["train_mask"], second[0]["train_mask"])


# ------------------------------------------------------------------ results store

STORE_CASES = [
    (b'{"torn": \n', "runs.jsonl:2: skipping corrupt record (Expecting value)"),
    (b"[1, 2]\n", "runs.jsonl:2: skipping corrupt record (a JSON list, not an object)"),
    (b'{"a": "\xff\xfe"}\n', "runs.jsonl:2: skipping corrupt record (not UTF-8 at byte"),
    (b"42\n", "runs.jsonl:2: skipping corrupt record (a JSON int, not an object)"),
]


@pytest.mark.parametrize(("line", "message"), STORE_CASES, ids=["torn", "list", "not-utf8", "number"])
def test_corrupt_record_is_reported_with_file_and_line_and_skipped(line, message, tmp_path):
    path = tmp_path / "runs.jsonl"
    append_record(path, {"a": 1})
    with open(path, "ab") as handle:
        handle.write(line)
    append_record(path, {"a": 2})
    with pytest.warns(UserWarning) as caught:
        records = read_records(tmp_path)
    assert [r["a"] for r in records] == [1, 2]
    assert any(message in str(w.message) and str(path) in str(w.message) for w in caught)


def test_an_unterminated_fragment_does_not_swallow_the_next_record(tmp_path):
    path = tmp_path / "runs.jsonl"
    append_record(path, {"a": 1})
    with open(path, "ab") as handle:
        handle.write(b'{"a": 2, "hist')  # a writer died mid-line
    append_record(path, {"a": 3})
    with pytest.warns(UserWarning, match=r"runs.jsonl:2: skipping corrupt record"):
        assert [r["a"] for r in read_records(path)] == [1, 3]


WRITER = """
import sys
from grand_bench.report import append_record
path, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(count):
    append_record(path, {"worker": worker, "i": i, "payload": "x" * 8192})
"""


@pytest.mark.slow
def test_eight_processes_append_800_intact_records(tmp_path):
    path = tmp_path / "runs.jsonl"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w), "100"], cwd=REPO, stderr=subprocess.PIPE)
        for w in range(8)
    ]
    for proc in procs:
        assert proc.wait(timeout=240) == 0, proc.stderr.read()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 800
    records = [json.loads(line) for line in lines]  # every line parses on its own: nothing torn or interleaved
    assert {(r["worker"], r["i"]) for r in records} == {(w, i) for w in range(8) for i in range(100)}
    assert all(len(r["payload"]) == 8192 for r in records)


# ------------------------------------------------------------------ divergence


def test_diverging_explicit_euler_is_recorded_as_failed_at_its_epoch(run_cfg, tmp_path):
    records = run(
        run_cfg(*FAST, "solver=euler", "solver.step_size=50", "model.time=2000", f"checkpoint_dir={tmp_path}")
    )
    (stored,) = read_records(tmp_path / "runs")
    assert records[0]["status"] == stored["status"] == "failed" and stored["failed_epoch"] == 1
    assert stored["error"].startswith("SolverError: ODE state became NaN/Inf (solver 'euler'")
    assert stored["best_val"] is None and stored["epochs_run"] == 0 and stored["schema_version"] >= 1


@pytest.mark.slow
def test_cli_divergence_exits_1_with_one_line_and_a_failed_record(planetoid_root, tmp_path):
    args = [*FAST, "solver=euler", "solver.step_size=50", "model.time=2000", f"data_root={planetoid_root}"]
    result = cli(*args, "raw_mirror=null", "train.progress=false", *out_paths(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: 1 of 1 run(s) failed; first: SolverError: ODE state became NaN/Inf (solver 'euler', T=2000.0)"
    )
    assert "FAILED at epoch 1" in result.stdout
    (record,) = read_records(tmp_path / "runs")
    assert record["status"] == "failed" and record["failed_epoch"] == 1


# ------------------------------------------------------------------ interruption


def test_run_key_ignores_where_files_go_and_names_what_changes_numbers():
    cfg = compose_cfg(FAST)
    moved = compose_cfg(
        [*FAST, "results_dir=/elsewhere", "data_root=/d", "tag=x", "train.progress=false", "resume=true"]
    )
    assert run_key(cfg) == run_key(moved) == run_key(json.loads(json.dumps(dict(_plain(cfg)))))
    for change in ("seed=1", "optim.lr=0.02", "train.epochs=4", "solver.step_size=0.5", "split.index=3"):
        assert run_key(compose_cfg([*FAST, change])) != run_key(cfg), change


def test_runs_of_one_setting_share_its_setting_key_and_other_settings_do_not():
    cfg = compose_cfg(FAST)
    for same in ("seed=1", "split.index=3", "device=cuda", "tag=x"):
        other = compose_cfg([*FAST, same])
        assert setting_key(other) == setting_key(cfg), same
    for change in ("optim.lr=0.02", "train.epochs=4", "solver.step_size=0.5"):
        assert setting_key(compose_cfg([*FAST, change])) != setting_key(cfg), change


@pytest.mark.parametrize(
    ("model", "group", "key", "other"),
    [
        (None, "solver", "reverse_pass", "false"),
        (None, "dataset", "edge_direction", "reverse"),
        (None, "train", "select", "val_loss"),
        (None, "optim", "decay_scope", "first_layer"),
        ("graff", "model", "conv_batch_norm", "layerwise"),
    ],
)
def test_an_option_added_later_keeps_the_key_of_runs_recorded_before_it_at_its_default(model, group, key, other):
    base = [f"model={model}"] if model else FAST
    cfg = _plain(compose_cfg(base))
    before = json.loads(json.dumps(cfg))
    del before[group][key]  # a record written before the option existed
    assert run_key(before) == run_key(cfg)
    assert run_key(compose_cfg([*base, f"{group}.{key}={other}"])) != run_key(cfg)


def test_detach_source_is_in_the_key_only_with_a_source_term():
    """A new default for an option read only with another (run_key.READ_ONLY_WITH) re-keys only the runs that
    read it: GRAND runs without add_source keep their keys; with it, the old behaviour keeps the old key."""
    for add_source, same_as_before in (("false", True), ("true", False)):
        cfg = _plain(compose_cfg(["model=grand_l", f"model.add_source={add_source}"]))
        assert cfg["model"]["detach_source"] is True
        before = json.loads(json.dumps(cfg))
        del before["model"]["detach_source"]  # a record written before the option existed
        assert (run_key(before) == run_key(cfg)) is same_as_before, add_source
        old_behaviour = compose_cfg(["model=grand_l", f"model.add_source={add_source}", "model.detach_source=false"])
        assert run_key(old_behaviour) == run_key(before)


def _plain(cfg):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


def test_checkpoints_are_atomic_weights_only_and_a_bad_one_is_one_line(tmp_path):
    state = {"weights": torch.randn(3), "epoch": 4, "rng": {"numpy": ("MT19937", torch.arange(3), 1, 0, 0.0)}}
    path = tmp_path / "run" / "trainer.pt"
    save_state(path, state)
    assert [p.name for p in path.parent.iterdir()] == ["trainer.pt"]  # no temporary file left behind
    loaded = load_state(path)
    assert torch.equal(loaded["weights"], state["weights"]) and loaded["epoch"] == 4
    truncate(path)
    with pytest.raises(CheckpointError, match=r"checkpoint .*trainer.pt cannot be read .*delete it to start"):
        load_state(path)
    torch.save({"obj": Checkpointer(tmp_path, 1)}, path)  # an arbitrary pickled object is refused
    with pytest.raises(CheckpointError):
        load_state(path)


def test_resume_skips_finished_runs_and_writes_nothing_new(run_cfg, tmp_path):
    overrides = [*FAST, "seeds=[0,1]", f"checkpoint_dir={tmp_path / 'ckpt'}"]
    first = run(run_cfg(*overrides))
    again = run(run_cfg(*overrides, "resume=true"))
    assert [r["run_id"] for r in again] == [r["run_id"] for r in first]  # the stored records, not new runs
    assert len(read_records(tmp_path / "runs")) == 2
    assert set(finished_runs(tmp_path / "runs")) == {r["run_key"] for r in first}
    assert not (tmp_path / "ckpt").exists() or not any((tmp_path / "ckpt").iterdir())


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_uninterrupted_result(planetoid_root, tmp_path):
    args = [*FAST, "train.epochs=30", "train.checkpoint_every=3", "seeds=[0,1]", f"data_root={planetoid_root}"]
    args += ["raw_mirror=null", "train.progress=false"]
    full = cli(*args, *out_paths(tmp_path / "full"))
    assert full.returncode == 0, full.stderr
    expected = read_records(tmp_path / "full" / "runs")

    killed = tmp_path / "killed"
    keys = [run_key(c) for c in run_configs(compose_cfg([*args, *out_paths(killed)]))]
    checkpoint = killed / "ckpt" / keys[1] / "trainer.pt"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args, *out_paths(killed)],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while proc.poll() is None and not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)  # mid-way through seed 1: seed 0 is recorded, seed 1 has a checkpoint
    assert proc.wait() == -signal.SIGKILL
    assert [r["seed"] for r in read_records(killed / "runs")] == [0]
    stopped_at = load_state(checkpoint)["epoch"]
    assert 3 <= stopped_at < 30

    resumed = cli(*args, *out_paths(killed), "resume=true")
    assert resumed.returncode == 0, resumed.stderr
    assert "seed 0: already recorded (ok" in resumed.stdout and "seed 1: (resumed after epoch" in resumed.stdout
    records = read_records(killed / "runs")
    assert [r["seed"] for r in records] == [0, 1] and records[1]["resumed_from"] >= stopped_at
    for got, want in zip(records, expected, strict=True):
        for key in ("run_key", "history", "best_val", "test_at_best_val", "best_epoch", "epochs_run", "nfe_forward"):
            assert got[key] == want[key], key
    assert not checkpoint.parent.exists()  # removed once the run is recorded


# ------------------------------------------------------------------ determinism and secrets


def test_same_seed_same_numbers_with_dropout_and_attention(run_cfg):
    overrides = [*FAST, "model=grand_nl", "model.dropout=0.3", "model.input_dropout=0.5", "seed=11"]
    first, second = (run(run_cfg(*overrides))[0] for _ in range(2))
    assert first["history"] == second["history"] and first["test_at_best_val"] == second["test_at_best_val"]
    assert first["run_key"] == second["run_key"] and first["run_id"] != second["run_id"]


@pytest.mark.slow
def test_a_credential_in_the_environment_never_reaches_disk(planetoid_root, tmp_path):
    secret = f"wandb-{uuid.uuid4().hex}{uuid.uuid4().hex}"[:40]
    result = cli(
        *FAST,
        "train.epochs=1",
        f"data_root={planetoid_root}",
        "raw_mirror=null",
        "logger=wandb",
        "logger.mode=offline",
        f"logger.dir={tmp_path / 'wandb'}",
        "tag=${oc.env:WANDB_API_KEY}",  # even a config that names the key explicitly
        *out_paths(tmp_path),
        env={"WANDB_API_KEY": secret, "WANDB_SILENT": "true"},
    )
    assert result.returncode == 0, result.stderr
    (record,) = read_records(tmp_path / "runs")
    assert record["tag"] == "<redacted $WANDB_API_KEY>"
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "config.yaml" for p in written) and any(p.suffix == ".wandb" for p in written)
    assert [p for p in written if secret.encode() in p.read_bytes()] == []
    assert secret not in result.stdout + result.stderr
