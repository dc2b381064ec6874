"""Composition, published hyper-parameters, and the validation messages users see."""

from __future__ import annotations

import itertools

import pytest
from hydra.errors import ConfigCompositionException

from grand_bench.cli import check_group_choices, group_options
from grand_bench.data.graph_level import is_graph_level
from grand_bench.errors import ConfigError
from grand_bench.validate import validate

from .conftest import compose_cfg

MODELS = group_options("model")
DATASETS = group_options("dataset")
NODE_ONLY = {"cgnn"}  # one learned parameter per node of the one graph: refused on graph-level datasets


@pytest.mark.parametrize(("model", "dataset"), list(itertools.product(MODELS, DATASETS)))
def test_every_model_and_dataset_composes_and_validates(model, dataset):
    cfg = compose_cfg([f"model={model}", f"dataset={dataset}"])
    assert cfg.model.name == model and cfg.dataset.name == dataset
    if model in NODE_ONLY and is_graph_level(cfg.dataset):
        with pytest.raises(ConfigError, match=f"dataset '{dataset}' is graph-level: use a node-level dataset"):
            validate(cfg)
    else:
        validate(cfg)


def test_every_best_file_matches_an_existing_model_and_dataset():
    """<model>_<dataset>.yaml, or <best>_<dataset>.yaml for a table row's `best` (a typo would never apply)."""
    from grand_bench.report.tables import load_spec, spec_names

    row_bests = {row.best for name in spec_names() for row in load_spec(name).rows if row.best}
    for name in group_options("best"):
        assert any(name == f"{m}_{d}" for m in {*MODELS, *row_bests} for d in DATASETS), name


def test_published_hyper_parameters_apply_and_the_command_line_beats_them():
    cfg = compose_cfg(["model=grand_l", "dataset=cora"])
    assert cfg.model.hidden_dim == 80 and cfg.optim.name == "adamax"
    assert cfg.solver.rtol == pytest.approx(821.9773048827274e-9)
    assert cfg.model.attention.norm == "column"
    cfg = compose_cfg(["model=grand_l", "dataset=cora", "model.hidden_dim=16", "optim.lr=0.5"])
    assert cfg.model.hidden_dim == 16 and cfg.optim.lr == 0.5


def test_solver_group_on_the_command_line_is_honoured_with_best_params():
    cfg = compose_cfg(
        ["model=grand_nl_rw", "dataset=citeseer", "split=random", "seed=3", "solver=rk4", "solver.step_size=0.5"]
    )
    assert cfg.solver.method == "rk4" and cfg.solver.step_size == 0.5
    assert cfg.split.index == 3  # the random split follows the seed unless splits=[...] is given
    validate(cfg)


def test_misspelt_key_and_wrong_type_fail_at_composition():
    with pytest.raises(ConfigCompositionException, match="hiden_dim"):
        compose_cfg(["model.hiden_dim=3"])
    with pytest.raises(ConfigCompositionException, match="hidden_dim"):
        compose_cfg(["model.hidden_dim=abc"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.time=-1", "model.time must be > 0, got -1"),
        ("model.dropout=1.5", "model.dropout must be in [0, 1), got 1.5"),
        ("model.attention.heads=3", "model.attention.heads=3 must be >= 1 and divide model.attention.dim"),
        ("model.attention.type=dot", "unknown model.attention.type 'dot'; valid: scaled_dot"),
        ("model.diffusivity=magic", "unknown model.diffusivity 'magic'; valid: fixed_attention, attention"),
        ("optim.name=lbfgs", "unknown optim.name 'lbfgs'; valid: adam, adamw, adamax, rmsprop, sgd"),
        ("optim.lr=0", "optim.lr must be > 0, got 0"),
        ("solver.method=rk4", "solver.method 'rk4' is fixed-step: set solver.step_size"),
        ("solver.method=rk5", "unknown solver.method 'rk5'; valid: euler"),
        ("solver.step_size=-0.1", "solver.step_size must be > 0, got -0.1"),
        ("train.epochs=0", "train.epochs must be > 0, got 0"),
        ("device=tpu", "unknown device 'tpu'; valid: cpu, cuda, auto"),
        ("model.edge_sampling=0", "model.edge_sampling must be in (0, 1], got 0"),
        ("seeds=[]", "seeds must list at least one seed"),
    ],
)
def test_validation_names_option_value_and_choices(override, message):
    cfg = compose_cfg(["model=grand_l", "dataset=cora", override])
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_validation_reports_every_problem_at_once():
    cfg = compose_cfg(["model.time=0", "optim.lr=-1"])
    with pytest.raises(ConfigError, match=r"model.time must be > 0.*optim.lr must be > 0"):
        validate(cfg)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["model=gran_l"],
            "unknown model 'gran_l'; valid: appnp, cgnn, cheb, gat, gatedgcn, gcn, gcnii, gin, graff, graff_nl",
        ),
        (["dataset=coraa"], "unknown dataset 'coraa'; valid: actor, chameleon, citeseer, coauthor_cs"),
        (["solver=rk5"], "unknown solver 'rk5'; valid: "),
        (["split=randm"], "unknown split 'randm'; valid: geom_gcn, official, public, random, stratified"),
        (["-m", "model=grand_l,nope"], "unknown model 'nope'"),
    ],
)
def test_unknown_group_option_is_one_line_with_choices(argv, message):
    found = check_group_choices(argv)
    assert found is not None and found.startswith(message.split("valid:")[0])
    assert found.startswith(message) or message in found


def test_known_group_options_pass():
    assert check_group_choices(["model=grand_nl_rw", "dataset=citeseer", "split=public", "solver=rk4"]) is None


@pytest.mark.parametrize(
    ("dataset", "split"), [("texas", "geom_gcn"), ("actor", "geom_gcn"), ("cora", "random"), ("ogbn_arxiv", "official")]
)
def test_dataset_chooses_its_protocol_and_the_command_line_still_wins(dataset, split):
    assert compose_cfg([f"dataset={dataset}"]).split.name == split
    assert compose_cfg([f"dataset={dataset}", "split=public"]).split.name == "public"
