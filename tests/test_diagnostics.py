"""Dirichlet-energy diagnostics: the two energies by hand, states per step / layer, the run record."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv
from torch_geometric.utils import to_undirected

from grand_bench.config import (
    BaselineModelCfg,
    DiagnosticsCfg,
    EvalCfg,
    GraffModelCfg,
    GraphconModelCfg,
    OptimCfg,
    SolverCfg,
    TrainCfg,
)
from grand_bench.data import Split
from grand_bench.data.synthetic import grid_graph
from grand_bench.diagnostics import (
    BestModelDiagnostics,
    collect,
    dirichlet_energy,
    hidden_states,
    layer_energies,
    normalised_dirichlet_energy,
)
from grand_bench.models.baselines import BaselineGNN, baseline_graph
from grand_bench.models.graff import build_graff, graff_graph
from grand_bench.models.graphcon import build_graphcon, graphcon_graph
from grand_bench.provenance import PROJECT_ROOT
from grand_bench.run import run
from grand_bench.training import Trainer, seed_everything


def path_graph(n: int) -> torch.Tensor:
    return to_undirected(torch.stack([torch.arange(n - 1), torch.arange(1, n)]))


def test_dirichlet_energy_by_hand():
    """Path 0-1-2, x = (0, 1, 3): each edge counted from both ends, divided by N (GraphCON eq. 13)."""
    x = torch.tensor([[0.0], [1.0], [3.0]])
    assert float(dirichlet_energy(x, path_graph(3))) == pytest.approx(2 * (1 + 4) / 3)
    assert float(dirichlet_energy(torch.ones(3, 4), path_graph(3))) == 0.0


def test_normalised_energy_is_zero_on_the_smoothest_signal_and_large_on_the_sharpest():
    """Rayleigh quotient of I - D^-1/2 (A + I) D^-1/2: 0 at D^1/2 1, its top eigenvalue at the top eigenvector."""
    n = 8
    edge_index = path_graph(n)
    a = torch.zeros(n, n)
    a[edge_index[1], edge_index[0]] = 1
    a = a + torch.eye(n)
    d = a.sum(1)
    laplacian = torch.eye(n) - a / torch.sqrt(d[:, None] * d[None, :])
    eigvals, eigvecs = torch.linalg.eigh(laplacian)
    smooth = d.sqrt()[:, None]
    assert float(normalised_dirichlet_energy(smooth, edge_index)) == pytest.approx(0.0, abs=1e-6)
    sharp = eigvecs[:, -1:] * 5.0  # scale-free
    assert float(normalised_dirichlet_energy(sharp, edge_index)) == pytest.approx(float(eigvals[-1]), abs=1e-5)
    x = torch.randn(n, 3)
    assert float(normalised_dirichlet_energy(x, edge_index)) == pytest.approx(
        float((x * (laplacian @ x)).sum() / (x * x).sum()), abs=1e-5
    )


def graff_model(ring, dt: float = 0.5):
    cfg = OmegaConf.merge(
        OmegaConf.structured(GraffModelCfg), {"name": "t", "hidden_dim": 6, "time": 2.0, "dt": dt, "w_style": "sum"}
    )
    return build_graff(cfg, SolverCfg(method="euler"), ring), graff_graph(ring, cfg)


def test_ode_states_are_taken_at_every_solver_step(ring):
    torch.manual_seed(0)
    model, graph = graff_model(ring)
    axis, times, states = hidden_states(model, ring.x, graph)
    assert axis == "time" and times == [0.0, 0.5, 1.0, 1.5, 2.0]
    with torch.no_grad():
        torch.testing.assert_close(states[-1], model.ode(model.encode(ring.x), graph))
        torch.testing.assert_close(states[0], model.encode(ring.x))
    assert hidden_states(model, ring.x, graph, points=3)[1] == [0.0, 1.0, 2.0]


def test_graff_adds_the_spectrum_of_w_and_its_energy_along_the_trajectory(ring):
    torch.manual_seed(1)
    model, graph = graff_model(ring, dt=0.05)
    out = collect(model, ring.x, graph, ring.edge_index, DiagnosticsCfg(dirichlet=True))
    assert len(out["time"]) == len(out["dirichlet"]) == len(out["dirichlet_normalised"]) == len(out["energy"]) == 41
    assert out["energy_is_lyapunov"] and all(
        b <= a + 1e-4 for a, b in zip(out["energy"], out["energy"][1:], strict=False)
    )
    assert len(out["w_spectrum"]["eigenvalues"][0]) == 6
    assert all(0 <= e < 2 for e in out["dirichlet_normalised"])


class ThreeGCN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList([GCNConv(8, 8) for _ in range(3)])

    def forward(self, x, graph):
        for conv in self.convs:
            x = conv(x, graph).relu()
        return x


def test_discrete_models_report_every_message_passing_layer(ring):
    torch.manual_seed(2)
    model = ThreeGCN()
    axis, layers, states = hidden_states(model, ring.x, ring.edge_index)
    assert axis == "layer" and layers == [1, 2, 3]
    with torch.no_grad():
        torch.testing.assert_close(states[0], model.convs[0](ring.x, ring.edge_index))
    assert not model.convs[0]._forward_hooks  # hooks removed


@pytest.mark.parametrize("layer", ["gcn", "gat", "sage"])
def test_baseline_models_report_every_layer(ring, layer):
    """The baselines' GCN layers skip GCNConv's message passing (``FixedGCNConv``) but stay PyG modules."""
    cfg = OmegaConf.merge(OmegaConf.structured(BaselineModelCfg), {"name": "t", "layer": layer, "num_layers": 4})
    torch.manual_seed(0)
    model = BaselineGNN(ring.num_features, 3, cfg)
    axis, layers, states = hidden_states(model, ring.x, baseline_graph(ring))
    assert axis == "layer" and layers == [1, 2, 3, 4]
    assert states[-1].shape == (ring.num_nodes, 3)


def test_best_model_diagnostics_measure_the_best_epoch_and_leave_the_final_weights(ring):
    seed_everything(0)
    model, graph = graff_model(ring)
    split = Split(torch.arange(0, 10), torch.arange(10, 20), torch.arange(20, 30))
    diagnostics = BestModelDiagnostics(DiagnosticsCfg(dirichlet=True))
    trainer = Trainer(
        model, ring.x, graph, ring.y, split, OptimCfg(lr=0.05), TrainCfg(epochs=8, progress=False), EvalCfg(),
        callbacks=[diagnostics],
    )  # fmt: skip
    outcome = trainer.fit()
    final = {k: v.clone() for k, v in model.state_dict().items()}
    out = diagnostics.collect(model, ring.x, graph, ring.edge_index)
    assert out["model"] == "best_val_epoch" and out["epoch"] == outcome.best_epoch
    for key, value in model.state_dict().items():
        assert torch.equal(value, final[key])
    best = collect(_with_state(model, diagnostics.best_state), ring.x, graph, ring.edge_index, DiagnosticsCfg())
    assert out["dirichlet"] == best["dirichlet"]
    if outcome.best_epoch < outcome.epochs_run:
        assert out["dirichlet"] != collect(model, ring.x, graph, ring.edge_index, DiagnosticsCfg())["dirichlet"]


def _with_state(model, state):
    import copy

    clone = copy.deepcopy(model)
    clone.load_state_dict(state)
    return clone


@pytest.mark.parametrize(
    ("model", "extra"),
    [("graff", {"w_spectrum", "energy"}), ("graphcon_gcn", set()), ("grand_l", set())],
)
def test_run_record_carries_diagnostics_when_asked(run_cfg, model, extra):
    overrides = ["dataset=cora", f"model={model}", "model.hidden_dim=16", "train.epochs=2"]
    if model == "grand_l":
        overrides += ["solver=rk4", "solver.step_size=1.0", "model.time=2.0", "model.attention.dim=16"]
    record = run(run_cfg(*overrides, "diagnostics.dirichlet=true"))[0]
    diagnostics = record["diagnostics"]
    assert diagnostics["axis"] == "time" and diagnostics["model"] == "best_val_epoch"
    assert len(diagnostics["dirichlet"]) == len(diagnostics["time"]) >= 3 and diagnostics.keys() >= extra
    assert "diagnostics" not in run(run_cfg(*overrides, "train.epochs=1"))[0]


def test_grid_graph_is_a_four_neighbour_lattice_with_uniform_features():
    data = grid_graph(4, features=3, seed=1)
    assert data.num_nodes == 16 and data.x.shape == (16, 3)
    assert data.edge_index.size(1) == 2 * 2 * 4 * 3  # 24 undirected edges, each listed both ways
    degree = torch.bincount(data.edge_index[0], minlength=16).view(4, 4)
    assert degree[0, 0] == 2 and degree[0, 1] == 3 and degree[1, 1] == 4
    assert bool(((data.x >= 0) & (data.x < 1)).all())
    assert torch.equal(grid_graph(4, 3, seed=1).x, data.x) and not torch.equal(grid_graph(4, 3, seed=2).x, data.x)
    with pytest.raises(ValueError, match="side=1"):
        grid_graph(1, 3)


def graphcon_gcn(layers: int, alpha: float, dt: float) -> nn.Module:
    cfg = OmegaConf.merge(
        OmegaConf.structured(GraphconModelCfg),
        {"name": "t", "coupling": "gcn", "hidden_dim": 5, "layers": layers, "dt": dt, "alpha": alpha, "gamma": 1.0},
    )
    sizes = Data(x=torch.zeros(1, 5), num_classes=2)
    return build_graphcon(cfg, SolverCfg(method="symplectic_euler"), sizes)


def test_layer_energies_feed_the_input_straight_into_graphcon_and_every_layer_of_a_gcn():
    """E(X^0..X^L). With alpha = gamma = dt = 1 GraphCON's step is X^n = relu(F(X^{n-1})): the weight-shared
    GCN, which the grid figure shows collapsing as a deep GCN does."""
    data = grid_graph(5, features=5, seed=0)
    graph = graphcon_graph(data, None)
    torch.manual_seed(0)
    model = graphcon_gcn(layers=6, alpha=1.0, dt=1.0)
    energies = layer_energies(model, data.x, graph, data.edge_index)
    assert len(energies) == 7 and energies[0] == pytest.approx(float(dirichlet_energy(data.x, data.edge_index)))
    coupling, x = model.ode.func.coupling, data.x
    with torch.no_grad():
        for n in range(1, 7):
            x = torch.relu(coupling(x, graph))
            assert energies[n] == pytest.approx(float(dirichlet_energy(x, data.edge_index)), rel=1e-4)
    gcn_cfg = {"name": "g", "layer": "gcn", "num_layers": 30, "hidden_dim": 5}
    gcn = BaselineGNN(5, 5, OmegaConf.merge(OmegaConf.structured(BaselineModelCfg), gcn_cfg))
    deep = layer_energies(gcn, data.x, baseline_graph(data, None), data.edge_index)
    assert len(deep) == 31 and deep[-1] < 1e-6 * deep[0]


def test_grid_figure_script_records_every_energy_with_its_provenance(tmp_path):
    """scripts/dirichlet_grid.py end to end on a small grid: the figure, and a JSON of each line's energies."""
    out = tmp_path / "grid.png"
    args = ["--layers", "4", "--side", "3", "--width", "8", "--seeds", "0", "1", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "dirichlet_grid.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(out.with_suffix(".json").read_text())
    assert out.stat().st_size > 0 and record["git"]["commit"] and record["versions"]["torch"]
    assert list(record["energies"]) == ["GCN", "GAT"]
    gcn = record["energies"]["GCN"]
    assert list(gcn)[0] == "GCN" and "GraphCON-GCN, alpha=0.5, dt=1" in gcn and len(gcn) == 6
    assert all(len(seeds) == 2 and all(len(e) == 5 for e in seeds) for seeds in gcn.values())
    assert gcn["GCN"][0][0] == pytest.approx(gcn["GraphCON-GCN, alpha=1, dt=1"][0][0])  # the same X^0 for all
    assert record["configs"]["GraphCON-GAT, alpha=0, dt=1"]["model"]["alpha"] == 0.0
