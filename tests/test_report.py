"""Results store (atomic appends, corrupt lines skipped) and the summary beside the papers' numbers."""

from __future__ import annotations

import json
import multiprocessing as mp

import pytest

from grand_bench.report import append_record, read_records, summarise
from grand_bench.report.reference import paper_value


def _writer(path: str, worker: int, count: int) -> None:
    for i in range(count):
        append_record(path, {"worker": worker, "i": i, "payload": "x" * 2000})


def test_concurrent_appends_leave_every_record_intact(tmp_path):
    path = tmp_path / "runs.jsonl"
    procs = [mp.get_context("fork").Process(target=_writer, args=(str(path), w, 50)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    records = read_records(path)
    assert len(records) == 200
    assert {(r["worker"], r["i"]) for r in records} == {(w, i) for w in range(4) for i in range(50)}


def test_corrupt_line_is_reported_with_file_and_line_and_skipped(tmp_path):
    path = tmp_path / "runs.jsonl"
    append_record(path, {"a": 1})
    with open(path, "a") as handle:
        handle.write('{"torn": \n')
    append_record(path, {"a": 2})
    with pytest.warns(UserWarning, match=r"runs.jsonl:2: skipping corrupt record"):
        records = read_records(tmp_path)
    assert [r["a"] for r in records] == [1, 2]


def test_non_finite_numbers_are_stored_as_null(tmp_path):
    path = tmp_path / "runs.jsonl"
    append_record(path, {"best_val": float("nan"), "history": [1.0, float("inf")]})
    assert json.loads(path.read_text()) == {"best_val": None, "history": [1.0, None]}


def test_summary_uses_population_std():
    mean, std, n = summarise([80.0, 82.0, None])
    assert (mean, std, n) == (81.0, 1.0, 2)


def test_paper_values_are_looked_up_by_protocol():
    assert paper_value("grand_l", "cora", "random")[:2] == (83.6, 1.0)
    assert paper_value("grand_l", "cora", "public")[:2] == (84.7, 0.6)
    assert paper_value("grand_nl_rw", "citeseer", "random")[:2] == (74.1, 1.7)
    assert paper_value("grand_l", "cora", "geom_gcn") is None


def test_records_name_paths_beside_the_project_relative_to_it(tmp_path):
    from grand_bench.provenance import PROJECT_ROOT
    from grand_bench.report import append_record, read_records

    elsewhere = "/nonexistent-grand-bench-elsewhere/x"  # outside the project's parent folder: kept as it is
    config = {"raw_mirror": str(PROJECT_ROOT.parent / "shared" / "data"), "data_root": str(PROJECT_ROOT / "data")}
    path = tmp_path / "runs.jsonl"
    append_record(path, {"config": {**config, "other": elsewhere}})
    (record,) = read_records(path)
    assert record["config"] == {"raw_mirror": "../shared/data", "data_root": "data", "other": elsewhere}


def test_records_call_the_code_dirty_for_code_changes_not_for_results_written_beside_it(tmp_path):
    import subprocess

    from grand_bench.provenance import git_state

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True, capture_output=True
        )

    (tmp_path / "results").mkdir()
    (tmp_path / "model.py").write_text("x = 1\n")
    (tmp_path / "results" / "runs.jsonl").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "results" / "runs.jsonl").write_text("{}\n{}\n")  # an earlier run's record
    (tmp_path / "notes.txt").write_text("untracked\n")
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "model.py").write_text("x = 2\n")
    state = git_state(tmp_path)
    assert state["dirty"] is True and len(str(state["commit"])) == 40
