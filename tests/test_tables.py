"""The papers' tables and figures from run records (report/tables.py, report/figures.py) and reproduce.py."""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import math
import shutil
import subprocess
import sys

import pytest
import yaml

from grand_bench.errors import ConfigError
from grand_bench.provenance import PROJECT_ROOT
from grand_bench.report import append_record, read_records
from grand_bench.report.figures import make_figures
from grand_bench.report.presets import cell_command, cell_settings, compose_config
from grand_bench.report.reference import published
from grand_bench.report.tables import (
    SPEC_DIR,
    aggregate,
    any_setting,
    cell_overrides,
    cell_split,
    config_value,
    implemented,
    load_spec,
    paper_values,
    same_value,
    spec_names,
    summary,
    write_tables,
)
from grand_bench.reproduce import main as reproduce_main
from grand_bench.reproduce import parse_args, plan, protocol_overrides, run_groups
from grand_bench.run_key import setting_key

from .conftest import compose_cfg

RUN_NUMBER = itertools.count()


def record(model="grand_l", dataset="cora", split="public", tag="grand2021_table1", test=0.8, status="ok", config=None):
    return {
        "model": model,
        "dataset": dataset,
        "split": split,
        "split_index": 0,
        "seed": 0,
        "tag": tag,
        "metric": "accuracy",
        "status": status,
        "test_at_best_val": test if status == "ok" else None,
        "seconds_per_epoch": 1.0,
        "config": config or {"seed": next(RUN_NUMBER)},  # each fixture record its own run (run key)
    }


def cell(grid, spec, row_name, col_name):
    i = [r.name for r in spec.rows].index(row_name)
    j = [c.name for c in spec.columns].index(col_name)
    return grid[i][j]


# ------------------------------------------------------------------------------------------------ specs


def test_every_spec_parses_and_its_cells_are_exactly_the_reference_csv_cells():
    names = spec_names()
    assert {"grand2021_table1", "grand2021_table2", "graff2022_table1"} <= set(names)
    assert {f"graphcon2022_table{i}" for i in range(1, 9)} <= set(names)
    tables_with_reference = set()
    for name in names:
        spec = load_spec(name)
        if spec.reference is None:
            continue
        tables_with_reference.add(spec.reference)
        csv_rows = [r for r in published() if (r["paper"], r["table"]) == spec.reference]
        assert csv_rows, name
        assert {r["metric"] for r in csv_rows} == {spec.metric}, name
        grid = {(r.name, c.name) for r in spec.rows for c in spec.columns}
        csv_cells = {(r["model"], r["dataset"]) for r in csv_rows}
        assert csv_cells <= grid, f"{name}: CSV cells the spec has no row/column for: {csv_cells - grid}"
        assert {r.name for r in spec.rows} == {m for m, _ in csv_cells}, name  # no row the paper lacks
        assert {c.name for c in spec.columns} == {d for _, d in csv_cells}, name
        assert len(paper_values(spec)) == len(csv_rows), name
    # every (paper, table) of the reference file has a spec
    assert {(r["paper"], r["table"]) for r in published()} == tables_with_reference


def test_spec_presets_exist_and_write_one_of_the_tables_tags():
    for name in spec_names():
        spec = load_spec(name)
        # train.py experiment=... alone counts too; a row preset shared by two tables writes the tag of one
        assert f"tag: {spec.tags[0]}\n" in (PROJECT_ROOT / "conf" / "experiment" / f"{spec.preset}.yaml").read_text()
        for preset in {r.preset for r in spec.rows} - {None}:
            text = (PROJECT_ROOT / "conf" / "experiment" / f"{preset}.yaml").read_text()
            assert any(f"tag: {tag}\n" in text for tag in spec.tags), (name, preset)
    # the models the project implements today are the rows' names for them
    assert implemented("model", "grand_l") and not implemented("model", None)
    t1 = load_spec("grand2021_table1")
    assert {r.name: r.model for r in t1.rows}["Lanczos"] is None


def test_a_bad_spec_is_one_line_naming_the_file_and_key(tmp_path):
    (tmp_path / "bad.yaml").write_text((SPEC_DIR / "grand2021_table1.yaml").read_text() + "colour: red\n")
    with pytest.raises(ConfigError, match=r"/bad.yaml: unknown key 'colour'; valid: title"):
        load_spec("bad", tmp_path)
    with pytest.raises(ConfigError, match="unknown table 'nope'; valid: .*grand2021_table1"):
        load_spec("nope")
    text = (SPEC_DIR / "grand2021_fig3_step.yaml").read_text()
    (tmp_path / "twin.yaml").write_text(text.replace("solver: dopri5}", "solver: explicit_adams}"))  # two rows alike
    with pytest.raises(ConfigError, match="share model 'grand_l'"):
        load_spec("twin", tmp_path)


def _cells_to_compose():
    """Each (spec, row) whose model exists on its first runnable column, and on a column with its own overrides;
    the first of each spec in the fast suite, the rest marked slow."""
    for name in spec_names():
        spec = load_spec(name)
        runnable = [c for c in spec.columns if implemented("dataset", c.dataset)]
        special = [c for c in runnable[1:] if c.overrides][:1]
        cells = [(row, col) for row in spec.rows if implemented("model", row.model) for col in runnable[:1] + special]
        for k, (row, col) in enumerate(cells):
            marks = [pytest.mark.slow] if k else []
            yield pytest.param(name, row.name, col.name, id=f"{name}-{row.name}-{col.name}", marks=marks)


@pytest.mark.parametrize(("name", "row_name", "col_name"), list(_cells_to_compose()))
def test_every_preset_composes_for_every_model_it_runs(name, row_name, col_name):
    """The cell's command line composes; the protocol, tag and every override land in the config."""
    from omegaconf import OmegaConf

    spec = load_spec(name)
    row = next(r for r in spec.rows if r.name == row_name)
    col = next(c for c in spec.columns if c.name == col_name)
    cfg = compose_cfg(cell_command(spec, row, col, []))
    plain = OmegaConf.to_container(cfg, resolve=False)
    assert (cfg.model.name, cfg.dataset.name, cfg.split.name) == (row.model, col.dataset, cell_split(spec, row, col))
    assert cfg.tag == spec.tags[0]
    assert cfg.seeds, "a preset says how many initialisations"
    for key, value in cell_overrides(spec, row, col).items():
        if key not in ("seeds", "splits"):
            assert same_value(config_value(plain, key), value), (key, value)


def test_a_row_with_its_own_best_files_uses_them_where_they_exist():
    """GRAFF (D) (`best: graff_d`): conf/best/graff_d_wisconsin.yaml on Wisconsin, graff_texas.yaml on Texas."""
    spec = load_spec("graff2022_table1")
    row = next(r for r in spec.rows if r.name == "GRAFF (D)")
    assert row.best == "graff_d"
    own = yaml.safe_load((PROJECT_ROOT / "conf" / "best" / "graff_d_wisconsin.yaml").read_text())
    shared = yaml.safe_load((PROJECT_ROOT / "conf" / "best" / "graff_texas.yaml").read_text())
    wisconsin = preset_config("graff2022_table1", "GRAFF (D)", "Wisconsin")
    texas = preset_config("graff2022_table1", "GRAFF (D)", "Texas")
    assert wisconsin["model"]["time"] == own["model"]["time"] and wisconsin["optim"]["lr"] == own["optim"]["lr"]
    assert texas["model"]["time"] == shared["model"]["time"] and texas["optim"]["lr"] == shared["optim"]["lr"]
    # the row's overrides still apply on top, and the main GRAFF row keeps the shared file on Wisconsin
    assert (wisconsin["model"]["w_style"], wisconsin["model"]["w_trainable"]) == ("diag", False)
    main_row = preset_config("graff2022_table1", "GRAFF (DD)", "Wisconsin")
    assert main_row["model"]["time"] != own["model"]["time"]


# ------------------------------------------------------------------------------------------------ aggregation


def test_aggregation_mean_population_std_n_delta_and_the_out_of_std_mark(tmp_path):
    store = tmp_path / "runs"
    for test in (0.80, 0.82, 0.84):
        append_record(store / "grand_l_cora.jsonl", record(test=test))
    append_record(store / "grand_l_cora.jsonl", record(status="failed"))
    append_record(store / "grand_l_cora.jsonl", record(test=0.10, tag="core_check"))  # another protocol
    append_record(store / "grand_l_cora.jsonl", record(test=0.10, split="random"))  # another split
    append_record(store / "grand_l_citeseer.jsonl", record(dataset="citeseer", test=0.736))
    spec = load_spec("grand2021_table1")
    grid = aggregate(spec, read_records(store))

    cora = cell(grid, spec, "GRAND-l", "Cora")
    assert (cora.n, cora.failed) == (3, 1)
    assert cora.mean == pytest.approx(82.0)
    assert cora.std == pytest.approx(math.sqrt(8 / 3))  # population std: ddof 0, as the papers
    assert (cora.paper_mean, cora.paper_std) == (84.7, 0.6)
    assert cora.delta == pytest.approx(-2.7)
    assert cora.within is False and cora.better is False

    citeseer = cell(grid, spec, "GRAND-l", "CiteSeer")  # 73.6 vs 73.3 ± 0.4: within max(0.4, 1.0)
    assert (citeseer.n, citeseer.within) == (1, True)
    assert cell(grid, spec, "GRAND-nl", "Cora").state == "no runs"
    assert cell(grid, spec, "Lanczos", "Cora").state == "not implemented"


def test_one_run_recorded_under_two_tags_counts_once():
    """GCN on Texas is a cell of GraphCON Table 2 and of GRAFF Table 1: the same run (run key) under both tags."""
    spec = load_spec("graphcon2022_table2")
    row_overrides = {"dataset": {"normalize_features": True}, "split": {"lcc": False}}  # Yan et al.'s protocol
    same = {"seed": 0, "model": {"name": "gcn"}, **row_overrides}
    records = [
        record(model="gcn", dataset="texas", split="geom_gcn", tag=tag, test=0.6, config=same)
        for tag in ("graphcon2022_table2", "graff2022_table1")
    ]
    texas_run = dict(model="gcn", dataset="texas", split="geom_gcn")
    other = record(**texas_run, tag="graff2022_table1", test=0.5, config=row_overrides)
    records.append(other)
    texas = cell(aggregate(spec, records), spec, "GCN", "Texas")
    assert texas.n == 2 and texas.mean == pytest.approx(55.0)


def test_cells_match_records_by_the_cell_overrides_and_column_variables():
    spec = load_spec("grand2021_fig3_step")
    common = {"solver": {"max_nfe": 100000, "adjoint": False}}

    def run(method, step, test):
        solver = {**common["solver"], "method": method, "step_size": step}
        return record(split="random", tag="grand2021_fig3", test=test, config={"solver": solver})

    records = [run("explicit_adams", 0.5, 0.7), run("implicit_adams", 0.5, 0.8), run("dopri5", None, 0.83)]
    records.append(record(split="random", tag="grand2021_fig3", test=0.1, config={"solver": {"method": "dopri5"}}))
    grid = aggregate(spec, records)
    assert cell(grid, spec, "explicit Adams", "step 0.5").mean == pytest.approx(70.0)
    assert cell(grid, spec, "explicit Adams", "step 1").n == 0
    assert cell(grid, spec, "implicit Adams", "step 0.5").mean == pytest.approx(80.0)
    # dopri5 has no step: the same runs in every column (drawn as one level)
    assert {cell(grid, spec, "dopri5", c.name).n for c in spec.columns} == {1}
    assert summary(grid)["runs_ok"] == 3  # distinct runs, the dopri5 one once; the one without max_nfe not at all


def test_column_variables_keep_their_type_in_the_overrides():
    """A float variable reads back as a float, also one Python writes in exponent form (1e-05 reads as a string
    in YAML); booleans and integers stay what they are."""
    spec = load_spec("graphcon2022_table8")
    row = next(r for r in spec.rows if r.name == "GCN+DropEdge")
    col = dataclasses.replace(
        spec.columns[0], vars={**spec.columns[0].vars, "de_weight_decay": 1e-05, "de_batch_norm": True}
    )
    overrides = cell_overrides(spec, row, col)
    assert overrides["optim.weight_decay"] == 1e-05 and isinstance(overrides["optim.weight_decay"], float)
    assert overrides["model.batch_norm"] is True and overrides["model.num_layers"] == 2


def test_a_row_without_our_model_shows_the_paper_value_only(tmp_path):
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    text = (SPEC_DIR / "grand2021_table1.yaml").read_text()
    (spec_dir / "future.yaml").write_text(text.replace("model: grand_nl_rw}", "model: grand_future}"))
    records = [record(model="grand_l", tag="future", test=0.85)]
    out = tmp_path / "tables"
    write_tables(records, out, ["future"], spec_dir=spec_dir, settings=any_setting)
    md = (out / "future.md").read_text()
    assert "| Lanczos | – | 79.5 ± 1.8 | 66.2 ± 1.9 | 78.3 ± 0.3 |" in md
    assert "| GRAND-nl-rw | `grand_future` (not yet) | 82.9 ± 0.7 | 73.6 ± 0.3 | 81.0 ± 0.4 |" in md
    rows = {(r["row"], r["column"]): r for r in csv.DictReader(io.StringIO((out / "future.csv").read_text()))}
    lanczos = rows[("Lanczos", "Cora")]
    assert (lanczos["state"], lanczos["ours_mean"], lanczos["n"], lanczos["paper_mean"]) == (
        "not implemented",
        "",
        "0",
        "79.5000",
    )
    assert rows[("GRAND-nl-rw", "Cora")]["state"] == "not implemented"
    tex = (out / "future.tex").read_text()
    assert r"Lanczos (paper) & $79.5 \pm 1.8$" in tex and "Lanczos (ours)" not in tex


def preset_config(table: str, row_name: str, col_name: str, *overrides: str) -> dict:
    """The resolved config of one run of a table cell, as its preset composes today (plus ``overrides``)."""
    from omegaconf import OmegaConf

    spec = load_spec(table)
    row = next(r for r in spec.rows if r.name == row_name)
    col = next(c for c in spec.columns if c.name == col_name)
    return OmegaConf.to_container(compose_cfg([*cell_command(spec, row, col, []), *overrides]), resolve=True)


def test_make_tables_writes_md_tex_csv_and_index_the_same_bytes_every_time(tmp_path):
    store = tmp_path / "runs"
    # two runs of today's preset (one of them on a GPU: the device does not change the setting)
    for test, extra in ((0.83, ["seed=0"]), (0.85, ["seed=1", "device=cuda"])):
        config = preset_config("grand2021_table1", "GRAND-l", "Cora", *extra)
        append_record(store / "grand_l_cora.jsonl", record(test=test, config=config))
    # a run of an earlier version of the preset (another learning rate) and one of another protocol
    earlier = preset_config("grand2021_table1", "GRAND-l", "Cora", "seed=2", "optim.lr=0.5")
    append_record(store / "grand_l_cora.jsonl", record(test=0.2, config=earlier))
    append_record(store / "grand_l_cora.jsonl", record(test=0.5, tag="core_check"))
    with open(store / "grand_l_cora.jsonl", "a") as handle:
        handle.write('{"torn": \n')
    cmd = [sys.executable, str(PROJECT_ROOT / "scripts" / "make_tables.py"), str(store), "--no-figures"]
    outputs = []
    for out in (tmp_path / "a", tmp_path / "b"):
        done = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "grand_l_cora.jsonl:5: skipping corrupt record" in done.stderr
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outputs[0] == outputs[1]  # regenerated byte for byte
    names = spec_names()
    assert set(outputs[0]) == {"README.md", *(f"{n}.{x}" for n in names for x in ("md", "tex", "csv"))}
    md = outputs[0]["grand2021_table1.md"].decode()
    assert "84.0 ± 1.0 [2]<br>paper 84.7 ± 0.6<br>Δ -0.70 ✓" in md
    index = outputs[0]["README.md"].decode()
    assert "[md](grand2021_table1.md)" in index
    assert "| core_check | grand_l | cora | public | 1 |" in index  # counted by no table, and said so
    assert "| grand2021_table1 | grand_l | cora | public | 1 |" in index  # the earlier preset's run


def test_figures_draw_what_has_records_and_skip_the_rest_with_a_note(tmp_path):
    records = []
    for method, step in (("explicit_adams", 0.5), ("explicit_adams", 1.0), ("implicit_adams", 1.0), ("dopri5", None)):
        solver = {"method": method, "step_size": step, "max_nfe": 100000, "adjoint": False}
        records += [
            record(split="random", tag="grand2021_fig3", test=t, config={"solver": solver}) for t in (0.8, 0.82)
        ]
    written, notes = make_figures(records, tmp_path / "a", settings=any_setting)
    assert [p.name for p in written] == ["grand2021_fig3_step.png"]
    assert any(n.startswith("skipped grand2021_fig2.png: no records") for n in notes)
    again, _ = make_figures(records, tmp_path / "b", settings=any_setting)
    assert written[0].read_bytes() == again[0].read_bytes()
    assert "grand2021_fig3_step.png" in (tmp_path / "a" / "README.md").read_text()


def test_a_point_whose_runs_all_failed_is_marked_not_dropped():
    import matplotlib.pyplot as plt

    from grand_bench.report.figures import step_size
    from grand_bench.report.tables import aggregate, load_spec

    def solver(step):
        return {"solver": {"method": "explicit_adams", "step_size": step, "max_nfe": 100000, "adjoint": False}}

    records = [
        record(split="random", tag="grand2021_fig3", config=solver(1.0)),
        record(split="random", tag="grand2021_fig3", config=solver(2.0), status="failed"),
    ]
    spec = load_spec("grand2021_fig3_step")
    fig = plt.figure()
    step_size(spec, aggregate(spec, records, settings=any_setting), fig)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    plt.close(fig)
    assert sorted(labels) == ["explicit Adams (ours)", "explicit Adams: every run failed"]


def test_the_dirichlet_figure_reads_the_records_diagnostics(tmp_path):
    diagnostics = {"axis": "layer", "layer": [1, 2, 3], "dirichlet": [1.0, 0.1, 0.01]}
    config = {"diagnostics": {"dirichlet": True}, "model": {"num_layers": 100}}
    records = [record(model="gcn", tag="graphcon2022_fig2", config=config)]
    records[0]["diagnostics"] = diagnostics
    written, _ = make_figures(records, tmp_path, settings=any_setting)
    assert "graphcon2022_fig2.png" in [p.name for p in written]


# ------------------------------------------------------------------------------------------------ reproduce


def test_reproduce_arguments_are_checked_in_one_line():
    with pytest.raises(ConfigError, match="table=<name> is required"):
        parse_args(["models=grand_l"])
    with pytest.raises(ConfigError, match="runs must be a positive integer"):
        parse_args(["table=grand2021_table1", "runs=0"])
    args = parse_args(["table=t", "models=[grand_l,gcn]", "dry_run=true", "train.epochs=2"])
    assert (args["models"], args["dry_run"], args["extra"]) == (["grand_l", "gcn"], True, ["train.epochs=2"])
    with pytest.raises(ConfigError, match="unknown model 'gran_l'; valid: .*grand_l"):
        plan(load_spec("grand2021_table1"), models=["gran_l"])


def test_run_groups_cover_the_runs_to_do_as_products():
    class Run:
        def __init__(self, split, seed, state="todo"):
            from omegaconf import OmegaConf

            self.cfg = OmegaConf.create({"split": {"index": split}, "seed": seed})
            self.state = state

    # one split, many seeds: one call; many splits with seed 0 and two with seed 1: one call per seed
    assert run_groups([Run(0, s) for s in range(3)]) == [([0], [0, 1, 2], True)]
    groups = run_groups([*(Run(p, 0) for p in range(4)), Run(0, 1), Run(1, 1, "other_tag")])
    assert groups == [([0, 1, 2, 3], [0], True), ([0, 1], [1], False)]
    # split=random's default index = seed: one call, the splits following the seeds
    assert run_groups([Run(s, s) for s in range(3)], split_follows_seed=True) == [(None, [0, 1, 2], True)]
    assert len(run_groups([Run(s, s) for s in range(3)])) == 3
    assert run_groups([]) == []


def _quick(planetoid_root, tmp_path) -> list[str]:
    """A 1-epoch, 2-step GRAND-l on the fixture data root, records and checkpoints under tmp_path."""
    return [
        "train.epochs=1",
        "model.time=1.0",
        "solver=euler",
        "solver.step_size=0.5",
        f"data_root={planetoid_root}",
        "raw_mirror=null",
        f"results_dir={tmp_path / 'runs'}",
        f"checkpoint_dir={tmp_path / 'checkpoints'}",
    ]


def test_reproduce_skips_recorded_runs_and_resumes(planetoid_root, tmp_path, capsys):
    base = ["table=grand2021_table1", "models=grand_l", "datasets=cora", *_quick(planetoid_root, tmp_path)]
    store = tmp_path / "runs" / "grand_l_cora.jsonl"
    assert reproduce_main([*base, "runs=2"]) == 0
    assert [(r["seed"], r["tag"], r["split"]) for r in read_records(store)] == [
        (0, "grand2021_table1", "public"),
        (1, "grand2021_table1", "public"),
    ]
    capsys.readouterr()
    assert reproduce_main([*base, "runs=3"]) == 0  # only the third run is new
    assert "3 runs, 2 recorded, 1 to run" in capsys.readouterr().out
    assert [r["seed"] for r in read_records(store)] == [0, 1, 2]
    assert reproduce_main([*base, "runs=3", "dry_run=true"]) == 0
    assert "3 runs, 3 recorded, 0 to run" in capsys.readouterr().out
    assert reproduce_main([*base, "runs=1", "train.epochs=2"]) == 0  # another setting: another run
    assert len(read_records(store)) == 4


def test_a_run_recorded_on_a_gpu_is_not_run_again_on_a_cpu_and_counts_once(planetoid_root, tmp_path, capsys):
    base = ["table=grand2021_table1", "models=grand_l", "datasets=cora", "runs=2", *_quick(planetoid_root, tmp_path)]
    store = tmp_path / "runs" / "grand_l_cora.jsonl"
    assert reproduce_main(base) == 0
    first, second = read_records(store)
    first["config"]["device"] = "cuda"  # as a GPU machine records it
    store.unlink()
    for one in (first, second):
        append_record(store, one)
    capsys.readouterr()
    assert reproduce_main([*base, "dry_run=true"]) == 0
    assert "2 runs, 2 recorded, 0 to run" in capsys.readouterr().out
    again_on_cpu = {**first, "config": {**first["config"], "device": "cpu"}, "test_at_best_val": 0.5}
    append_record(store, again_on_cpu)
    spec = load_spec("grand2021_table1")
    cora = cell(aggregate(spec, read_records(store)), spec, "GRAND-l", "Cora")
    assert cora.n == 2  # seed 0 once: its latest record
    assert cora.mean == pytest.approx(100 * (0.5 + second["test_at_best_val"]) / 2)


def test_a_failed_run_or_a_broken_cell_does_not_stop_the_others(planetoid_root, tmp_path, capsys):
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    shutil.copy(SPEC_DIR / "grand2021_table1.yaml", spec_dir / "t.yaml")
    text = (spec_dir / "t.yaml").read_text()
    text = text.replace("model: grand_nl}", "model: grand_l, overrides: {solver.max_nfe: 1}}")  # fails at epoch 1
    text = text.replace("model: grand_nl_rw}", "model: grand_l, overrides: {solver.max_nfe: 9, model.no_key: 1}}")
    text = text.replace("model: grand_l}", "model: grand_l, overrides: {solver.max_nfe: 1000}}")
    (spec_dir / "t.yaml").write_text(text)
    from grand_bench.reproduce import execute

    spec = load_spec("t", spec_dir)
    cells, _ = plan(spec, models=["grand_l"], datasets=["cora"], limit=1, extra=_quick(planetoid_root, tmp_path))
    assert [c.row.name for c in cells] == ["GRAND-l", "GRAND-nl", "GRAND-nl-rw"]
    assert cells[2].error and "no_key" in cells[2].error
    ok, failed, broken = execute(cells)
    assert (ok, failed, broken) == (1, 1, 1)
    statuses = sorted(r["status"] for r in read_records(tmp_path / "runs"))
    assert statuses == ["failed", "ok"]
    assert "cannot run" in capsys.readouterr().out


def test_reproduce_takes_the_splits_first(planetoid_root, tmp_path):
    argv = ["table=grand2021_table2", "models=grand_l", "datasets=cora", "runs=2", *_quick(planetoid_root, tmp_path)]
    assert reproduce_main(argv) == 0
    records = read_records(tmp_path / "runs")
    assert [(r["split"], r["split_index"], r["seed"], r["tag"]) for r in records] == [
        ("random", 0, 0, "grand2021_table2"),
        ("random", 1, 0, "grand2021_table2"),
    ]


def test_cells_outside_the_tolerance_are_listed_in_the_index_with_what_is_known(tmp_path):
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    text = (SPEC_DIR / "grand2021_table1.yaml").read_text()
    noted = text.replace("\ncell_notes:\n", '\ncell_notes:\n  "GCN / Cora": "a known cause"\n', 1)
    (spec_dir / "t1.yaml").write_text(noted)
    records = [record(model="gcn", tag="t1", test=0.50), record(model="grand_l", tag="t1", test=0.60)]
    write_tables(records, tmp_path / "out", ["t1"], spec_dir=spec_dir, settings=any_setting)
    index = (tmp_path / "out" / "README.md").read_text()
    # the cell's note, then the row's
    assert "| [t1](t1.md) | GCN | Cora | 50.0 ± 0.0 [1] | 81.9 ± 0.8 | -31.90 ▼ | a known cause" in index
    assert "| [t1](t1.md) | GRAND-l | Cora | 60.0 ± 0.0 [1] |" in index and "Cause not found. |" in index
    (spec_dir / "bad.yaml").write_text(text.replace("\ncell_notes:\n", '\ncell_notes:\n  "GCN / Mars": "x"\n', 1))
    with pytest.raises(ConfigError, match="cell_notes key 'GCN / Mars' is not '<row> / <column>'"):
        load_spec("bad", spec_dir)


def test_a_key_added_after_a_record_reads_as_the_default_it_ran_with():
    """An override of a key the record predates matches at the key's old default, and only there."""
    record_config = {"model": {"name": "gcn", "num_layers": 4}}
    assert same_value(config_value(record_config, "model.self_weight"), False)
    assert not same_value(config_value(record_config, "model.self_weight"), True)
    assert not same_value(config_value(record_config, "model.residual"), False)  # not an added key: absent


def test_more_splits_or_seeds_than_the_preset_are_runs_of_the_cell_not_another_protocol():
    extra = ["splits=[0,1,2,3,4,5,6,7,8,9,10,11]", "seeds=[0,1]", "train.epochs=2", "device=cpu", "split=public"]
    assert protocol_overrides(extra) == ["train.epochs=2", "split=public"]
    spec = load_spec("grand2021_table2")
    row = next(r for r in spec.rows if r.name == "GCN")
    col = next(c for c in spec.columns if c.name == "Cora")
    preset = cell_settings(spec, row, col)
    more = compose_config(cell_command(spec, row, col, ["splits=[0,1,2,3,4,5,6,7,8,9,10,11]", "seeds=[0,1]"]))
    assert setting_key(more) in preset  # make tables counts the extra runs in the cell
    other = compose_config(cell_command(spec, row, col, ["train.epochs=2"]))
    assert setting_key(other) not in preset


def test_cell_notes_from_takes_the_other_tables_notes_on_shared_cells_under_the_tables_own(tmp_path):
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    text = (SPEC_DIR / "grand2021_table1.yaml").read_text()
    shared = '\ncell_notes:\n  "GCN / Cora": "shared cause"\n  "GCN / CiteSeer": "shared CiteSeer cause"\n'
    (spec_dir / "a.yaml").write_text(text.replace("\ncell_notes:\n", shared, 1))
    own = '\ncell_notes_from: a\ncell_notes:\n  "GCN / CiteSeer": "own cause"\n'
    (spec_dir / "b.yaml").write_text(text.replace("\ncell_notes:\n", own, 1))
    notes = load_spec("b", spec_dir).cell_notes
    assert notes["GCN / Cora"] == "shared cause" and notes["GCN / CiteSeer"] == "own cause"
