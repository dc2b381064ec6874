"""The WebKB presets of GraphCON Table 2 / GRAFF Table 1 (conf/best/{graphcon_gat,gcnii,mlp,sage}_<webkb>.yaml):
they compose with the table's experiment, set the sources' values, pass validation and build a model."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from grand_bench.models import family
from grand_bench.report.presets import cell_command
from grand_bench.report.tables import load_spec
from grand_bench.validate import validate

from .conftest import compose_cfg

WEBKB = ("texas", "wisconsin", "cornell")
MODELS = ("graphcon_gat", "gcnii", "mlp", "sage")

# chennnM/GCNII full.sh: (layers, lambda, weight decay) per dataset
GCNII = {"texas": (32, 1.5, 1e-4), "wisconsin": (16, 1.0, 5e-4), "cornell": (16, 1.0, 1e-3)}


def table_cfg(model: str, dataset: str, *extra: str):
    return compose_cfg([f"model={model}", f"dataset={dataset}", "experiment=graphcon2022_table2", *extra])


@pytest.mark.parametrize("dataset", WEBKB)
@pytest.mark.parametrize("model", MODELS)
def test_preset_composes_validates_and_trains_long_enough(model, dataset):
    cfg = table_cfg(model, dataset)
    validate(cfg)
    assert cfg.split.name == "geom_gcn" and list(cfg.splits) == list(range(10))
    # the model default (100 epochs, no patience) stopped MLP / SAGE still improving and GCNII at epoch 3-7
    assert cfg.train.epochs >= 1000 and cfg.train.patience == 100


@pytest.mark.parametrize("dataset", WEBKB)
def test_gcnii_preset_is_the_authors_full_supervised_command(dataset):
    cfg = table_cfg("gcnii", dataset)
    layers, lam, decay = GCNII[dataset]
    assert cfg.model.num_layers == layers and cfg.model.theta == lam
    assert cfg.optim.weight_decay == pytest.approx(decay)
    assert cfg.model.alpha == 0.5 and cfg.model.dropout == 0.5 and cfg.model.hidden_dim == 64
    assert cfg.optim.lr == 0.01 and cfg.train.epochs == 1500


@pytest.mark.parametrize("dataset", WEBKB)
def test_graphcon_gat_preset_is_the_heterophilic_code_set_up(dataset):
    cfg = table_cfg("graphcon_gat", dataset)
    m = cfg.model
    assert not cfg.dataset.normalize_features  # raw 0/1 features, as the GraphCON script reads WebKB
    assert (m.coupling, m.activation, m.residual) == ("gat", "elu", "linear")
    assert (m.encoder_activation, m.decoder_activation) == ("relu", "none")
    assert m.input_dropout == m.step_dropout == 0.3 and m.dropout == 0.0
    assert m.dt == 1.0 and m.heads == 4
    # chosen on validation accuracy: the shipped GCN dicts' undamped two steps, not the argparse 5 damped ones
    assert (m.alpha, m.gamma, m.layers) == (0.0, 0.0, 2)
    assert cfg.solver.method == "symplectic_euler"


@pytest.mark.parametrize("dataset", WEBKB)
@pytest.mark.parametrize("model", ("mlp", "sage"))
def test_mlp_and_sage_presets_read_raw_features(model, dataset):
    cfg = table_cfg(model, dataset)
    assert not cfg.dataset.normalize_features


def test_the_command_line_beats_a_webkb_preset():
    cfg = table_cfg("gcnii", "texas", "model.num_layers=4", "dataset.normalize_features=false")
    assert cfg.model.num_layers == 4 and not cfg.dataset.normalize_features


@pytest.mark.parametrize("model", MODELS)
def test_preset_builds_a_model_for_a_webkb_sized_graph(model):
    cfg = table_cfg(model, "texas")
    torch.manual_seed(0)
    n, features, classes = 12, 1703, 5
    edge_index = torch.tensor([[i for i in range(n)], [(i + 1) % n for i in range(n)]])
    edge_index = torch.cat([edge_index, edge_index.flip(0)], 1)
    data = Data(x=torch.rand(n, features).round(), edge_index=edge_index, y=torch.arange(n) % classes)
    data.num_classes = classes
    fam = family(cfg.model)
    out = fam.build(cfg.model, cfg.solver, data).eval()(data.x, fam.graph(data, cfg.model))
    assert out.shape == (n, classes) and torch.isfinite(out).all()


# Yan et al.'s table_1_<model>.sh (weight decay, hidden width, dropout) on the heterophilic datasets
YAN = {
    ("gcn", "chameleon"): (5e-5, 16, 0.5),
    ("gat", "wisconsin"): (5e-5, 64, 0.6),
    ("mlp", "actor"): (1e-3, 16, 0.0),
    ("mlp", "squirrel"): (1e-4, 16, 0.6),
    ("mlp", "chameleon"): (1e-8, 16, 0.5),
}


@pytest.mark.parametrize(("model", "dataset"), sorted(YAN))
def test_yan_baseline_cells_compose_their_commands_and_protocol(model, dataset):
    """GRAFF Table 1's GCN / GAT / MLP cells: Yan et al.'s values on row-normalised features, although the
    Wikipedia and Actor columns give every other row raw features (the row's override beats the column's)."""
    spec = load_spec("graff2022_table1")
    row = next(r for r in spec.rows if r.model == model)
    col = next(c for c in spec.columns if c.dataset == dataset)
    cfg = compose_cfg(cell_command(spec, row, col, []))
    validate(cfg)
    decay, hidden, dropout = YAN[(model, dataset)]
    assert cfg.optim.weight_decay == pytest.approx(decay)
    assert (cfg.model.hidden_dim, cfg.model.dropout) == (hidden, dropout)
    assert cfg.dataset.normalize_features and cfg.dataset.edge_direction == "reverse"
    assert (cfg.train.epochs, cfg.train.patience, cfg.train.select) == (1500, 100, "val_loss")
    assert list(cfg.splits) == list(range(10)) and cfg.tag == "graff2022_table1"
    if model == "gcn":
        assert cfg.model.input_dropout == 0.0
    # another row of the same column keeps the column's raw features
    graff = next(r for r in spec.rows if r.model == "graff")
    if col.overrides:
        assert not compose_cfg(cell_command(spec, graff, col, [])).dataset.normalize_features
