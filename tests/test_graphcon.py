"""GraphCON and the IMEX schemes: eq. 3 by hand, energy behaviour, no oversmoothing, mini-batches, training."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch import Tensor
from torch_geometric.data import Batch
from torch_geometric.nn import GCNConv
from torch_geometric.utils import add_remaining_self_loops, scatter

from grand_bench.config import GraphconModelCfg, SolverCfg
from grand_bench.data.synthetic import grid_graph
from grand_bench.diagnostics import dirichlet_energy
from grand_bench.errors import ConfigError
from grand_bench.models.edge_graph import EdgeGraph
from grand_bench.models.graphcon import OscillatorBlock, OscillatorDynamics, build_graphcon, graphcon_graph
from grand_bench.run import run
from grand_bench.solvers import GraphODEFunc, ODEBlock
from grand_bench.validate import validate

from .conftest import compose_cfg, ring_graph


def graphcon_cfg(**kw):
    base = {"name": "t", "hidden_dim": 6, "layers": 4, "dt": 0.5, "input_dropout": 0.0, "dropout": 0.0}
    return OmegaConf.merge(OmegaConf.structured(GraphconModelCfg), {**base, **kw})


class Oscillator(GraphODEFunc):
    """x'' = -x on the state [x, y]: the harmonic oscillator, energy (x^2 + y^2) / 2."""

    def forward(self, t: Tensor, state: Tensor) -> Tensor:
        x, y = state.chunk(2, -1)
        return torch.cat([y, -x], -1)


def oscillator_energy(states: Tensor) -> Tensor:
    return 0.5 * states.pow(2).sum(-1).squeeze(-1)


def solve(func, method: str, step: float, time: float, points: int) -> Tensor:
    block = ODEBlock(func, SolverCfg(method=method, step_size=step, max_nfe=100_000), time)
    with torch.no_grad():
        return block(torch.tensor([[1.0, 0.0]]), None, torch.linspace(0.0, time, points))


def test_symplectic_euler_is_the_hand_written_update():
    states = solve(Oscillator(), "symplectic_euler", 0.1, 1.0, 11)
    x, y = 1.0, 0.0
    for n in range(1, 11):
        y = y + 0.1 * (-x)  # velocity first, from the old position
        x = x + 0.1 * y  # then the position, with the new velocity
        assert states[n, 0].tolist() == pytest.approx([x, y], abs=1e-6)


def test_symplectic_schemes_conserve_oscillator_energy_and_explicit_euler_does_not():
    """Over 100 periods: symplectic Euler's energy error stays O(h), explicit Euler's grows exponentially."""
    time, step = 200 * torch.pi, 0.05
    energy = {m: oscillator_energy(solve(Oscillator(), m, step, time, 401)) for m in ("symplectic_euler", "leapfrog")}
    explicit = oscillator_energy(solve(Oscillator(), "euler", step, time, 401))
    assert (energy["symplectic_euler"] - 0.5).abs().max() < 0.05  # bounded by ~h/2 relative, no drift
    assert (energy["leapfrog"] - 0.5).abs().max() < 1e-3  # second order: ~h^2
    assert explicit[-1] > 100 * 0.5  # (1 + h^2)^n growth


def test_leapfrog_is_second_order_and_symplectic_euler_first_order():
    exact = torch.tensor([torch.cos(torch.tensor(2.0)), -torch.sin(torch.tensor(2.0))])
    for method, order in (("leapfrog", 2), ("symplectic_euler", 1)):
        errors = [(solve(Oscillator(), method, h, 2.0, 2)[-1, 0] - exact).abs().max() for h in (0.02, 0.01)]
        assert errors[0] / errors[1] == pytest.approx(2**order, rel=0.15)


def test_graphcon_step_is_eq_3_and_costs_one_evaluation(ring):
    """Y^n = Y^{n-1} + dt (sigma(F(X^{n-1})) - gamma X^{n-1} - alpha Y^{n-1}), X^n = X^{n-1} + dt Y^n."""
    torch.manual_seed(0)
    cfg = graphcon_cfg(alpha=0.7, gamma=1.3, layers=4, dt=0.5)
    model = build_graphcon(cfg, SolverCfg(method="symplectic_euler"), ring)  # step from model.dt
    graph = graphcon_graph(ring, cfg)
    x0 = torch.randn(ring.num_nodes, 6)
    with torch.no_grad():
        out = model.ode(x0, graph)
        conv = model.ode.func.coupling
        x, y = x0, x0
        for _ in range(4):
            y = y + 0.5 * (torch.relu(conv(x, graph)) - 1.3 * x - 0.7 * y)
            x = x + 0.5 * y
    torch.testing.assert_close(out, x)
    assert model.nfe == 4


def test_schemes_fall_back_to_a_full_evaluation_without_position_rate(ring):
    torch.manual_seed(1)
    cfg = graphcon_cfg()
    for method in ("symplectic_euler", "leapfrog"):
        model = build_graphcon(cfg, SolverCfg(method=method), ring).eval()
        graph = graphcon_graph(ring, cfg)
        with torch.no_grad():
            fast = model(ring.x, graph)
            model.ode.func.position_rate = None
            model.ode.reset_nfe()
            slow = model(ring.x, graph)
        torch.testing.assert_close(fast, slow)
        assert model.nfe == (8 if method == "symplectic_euler" else 12)  # + 1 or 2 evaluations per step


def linear_hamiltonian_graphcon(data, gamma: float = 1.0) -> tuple[OscillatorDynamics, EdgeGraph]:
    """sigma = id, alpha = 0, F(X) = Abar X S with S symmetric, no bias: the conservative case (GraphCON Prop. 3.1)."""
    cfg = graphcon_cfg(activation="none", alpha=0.0, gamma=gamma)
    func = OscillatorDynamics(cfg)
    with torch.no_grad():
        s = torch.randn(6, 6)
        func.coupling.conv.lin.weight.copy_(0.2 * (s + s.T))
        func.coupling.conv.bias.zero_()
    return func, graphcon_graph(data, cfg)


def hamiltonian(func: OscillatorDynamics, graph: EdgeGraph, state: Tensor) -> Tensor:
    """H = 1/2 ||Y||^2 + gamma/2 ||X||^2 - 1/2 <X, Abar X S>."""
    x, y = state.chunk(2, -1)
    return 0.5 * (y * y).sum() + 0.5 * func.gamma * (x * x).sum() - 0.5 * (x * func.coupling(x, graph)).sum()


def energy_drift(method: str, step: float, data) -> float:
    torch.manual_seed(2)
    func, graph = linear_hamiltonian_graphcon(data)
    block = ODEBlock(func, SolverCfg(method=method, step_size=step, max_nfe=100_000), 20.0)
    x0 = torch.randn(data.num_nodes, 6)
    with torch.no_grad():
        states = block(torch.cat([x0, torch.zeros_like(x0)], -1), graph, torch.linspace(0, 20, 41))
        energy = torch.stack([hamiltonian(func, graph, s) for s in states])
    return float((energy - energy[0]).abs().max() / energy[0])


def test_linear_undamped_graphcon_conserves_its_energy_to_solver_accuracy(ring):
    assert energy_drift("rk4", 0.05, ring) < 1e-5
    leap = [energy_drift("leapfrog", h, ring) for h in (0.1, 0.05)]
    assert leap[0] < 1e-2 and leap[0] / leap[1] == pytest.approx(4, rel=0.3)  # O(h^2), no secular drift
    assert energy_drift("symplectic_euler", 0.05, ring) < 0.1
    assert energy_drift("euler", 0.05, ring) > 10 * energy_drift("symplectic_euler", 0.05, ring)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dirichlet_energy_does_not_collapse_over_100_layers_but_gcns_does(seed):
    """GraphCON Fig. 2: 10 x 10 grid (4 neighbours), random features; the same GCN layer iterated 100 times
    oversmooths.

    Undamped (alpha = 0, gamma = 1, dt = 1). With alpha = gamma = dt = 1, eq. 3 reduces to X^n = ReLU(F(X^{n-1})),
    exactly the 100-layer weight-shared GCN it is compared with.
    """
    data = grid_graph(10, features=2, seed=seed)
    edge_index, x0 = data.edge_index, data.x
    graph = EdgeGraph(edge_index, data.num_nodes)
    torch.manual_seed(seed)
    cfg = graphcon_cfg(hidden_dim=2, layers=100, dt=1.0, alpha=0.0, gamma=1.0)
    func = OscillatorDynamics(cfg)
    block = OscillatorBlock(func, SolverCfg(method="symplectic_euler", step_size=1.0), 100.0, "encoding")
    with torch.no_grad():
        states = block(x0, graph, torch.arange(0.0, 101.0))
        graphcon = torch.stack([dirichlet_energy(s, edge_index) for s in states])
        h, gcn = x0, []
        for _ in range(100):
            h = torch.relu(func.coupling(h, graph))
            gcn.append(dirichlet_energy(h, edge_index))
        as_gcn = OscillatorBlock(
            OscillatorDynamics(graphcon_cfg(hidden_dim=2, layers=100, dt=1.0, alpha=1.0, gamma=1.0)),
            SolverCfg(method="symplectic_euler", step_size=1.0),
            100.0,
            "encoding",
        )
        as_gcn.func.load_state_dict(func.state_dict())
        torch.testing.assert_close(as_gcn(x0, graph), h)
    e0 = graphcon[0]
    assert graphcon[-10:].mean() > 0.1 * e0
    assert max(gcn[-10:]) < 1e-4 * e0


def test_mini_batch_of_graphs_with_sum_readout_matches_graph_by_graph():
    torch.manual_seed(3)
    graphs = [ring_graph(num_nodes=n, seed=s) for n, s in ((12, 0), (20, 1), (9, 2))]
    cfg = graphcon_cfg(coupling="gcn", readout="sum", residual="v2", decoder_activation="none")
    model = build_graphcon(cfg, SolverCfg(method="symplectic_euler"), graphs[0]).eval()
    batch = Batch.from_data_list(graphs)
    graph = graphcon_graph(batch, cfg)
    assert graph.num_graphs == 3 and graph.batch.shape == (41,)
    out = model(batch.x, graph)
    assert out.shape == (3, 3)
    one_by_one = torch.cat([model(g.x, graphcon_graph(g, cfg)) for g in graphs])
    torch.testing.assert_close(out, one_by_one, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("coupling", ["gcn", "gat", "transformer", "gin", "gatedgcn", "grand_attention"])
def test_permutation_equivariance(ring, coupling):
    torch.manual_seed(4)
    cfg = graphcon_cfg(coupling=coupling, heads=2)
    model = build_graphcon(cfg, SolverCfg(method="leapfrog"), ring).eval()
    perm = torch.randperm(ring.num_nodes)
    permuted = ring.clone()
    permuted.x = ring.x[perm]
    permuted.edge_index = torch.argsort(perm)[ring.edge_index]
    out = model(ring.x, graphcon_graph(ring, cfg))
    torch.testing.assert_close(model(permuted.x, graphcon_graph(permuted, cfg)), out[perm], atol=1e-5, rtol=1e-4)


def test_step_dropout_acts_between_steps_in_training_only(ring):
    torch.manual_seed(5)
    cfg = graphcon_cfg(step_dropout=0.5)
    model = build_graphcon(cfg, SolverCfg(method="symplectic_euler"), ring)
    graph = graphcon_graph(ring, cfg)
    model.train()
    assert not torch.allclose(model(ring.x, graph), model(ring.x, graph))
    model.eval()
    torch.testing.assert_close(model(ring.x, graph), model(ring.x, graph))


def test_the_same_system_under_rk4_is_the_continuous_limit(ring):
    """Symplectic Euler with a small step approaches rk4 on the first-order system (every solver applies)."""
    torch.manual_seed(6)
    cfg = graphcon_cfg(layers=1, dt=1.0)
    fine = build_graphcon(cfg, SolverCfg(method="symplectic_euler", step_size=0.001, max_nfe=5000), ring).eval()
    rk4 = build_graphcon(cfg, SolverCfg(method="rk4", step_size=0.05), ring).eval()
    rk4.load_state_dict(fine.state_dict())
    graph = graphcon_graph(ring, cfg)
    x0 = torch.randn(ring.num_nodes, 6)
    with torch.no_grad():
        torch.testing.assert_close(fine.ode(x0, graph), rk4.ode(x0, graph), atol=5e-3, rtol=0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["model.coupling=sage"],
            "unknown model.coupling 'sage'; valid: gcn, gat, transformer, gin, gatedgcn, grand_attention",
        ),
        (["model=graphcon_tran", "model.attention.type=dot"], "unknown model.attention.type 'dot'; valid: scaled_dot"),
        (["model.residual=v2", "model.coupling=gat"], "model.residual 'v2' uses the GCN weight"),
        (["model.step_dropout=0.3", "solver=rk4"], "model.step_dropout > 0 runs between steps of symplectic_euler"),
        (["model.layers=0"], "model.layers must be > 0, got 0"),
        (
            ["dataset=zinc", "model.readout=sum"],
            "model.readout=sum and dataset.readout=sum would pool each graph twice",
        ),
        (["dataset=cora", "model.readout=mean"], "model.readout=mean pools per graph; dataset 'cora' is node-level"),
        (["eval.state=speed"], "unknown eval.state 'speed'; valid: position, velocity"),
        (["eval.state=velocity"], "eval.state=velocity decodes GraphCON's velocity .* eval.time_selection=true"),
    ],
)
def test_bad_options_are_one_line_errors(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(compose_cfg(["model=graphcon_gcn", *overrides]))


def test_velocity_selection_is_refused_on_first_order_models():
    with pytest.raises(ConfigError, match="model.family 'grand'"):
        validate(compose_cfg(["model=grand_l", "eval.time_selection=true", "eval.state=velocity"]))
    with pytest.raises(ConfigError, match="eval.time_points=null reads every solver step; solver.method 'dopri5'"):
        validate(compose_cfg(["model=grand_l", "solver=dopri5", "eval.time_selection=true", "eval.time_points=null"]))


def test_model_yaml_selects_symplectic_euler_with_step_dt_and_the_command_line_wins():
    cfg = compose_cfg(["model=graphcon_gcn"])
    assert cfg.solver.method == "symplectic_euler" and cfg.solver.step_size is None
    validate(cfg)
    cfg = compose_cfg(["model=graphcon_gcn", "solver=leapfrog", "solver.step_size=0.25"])
    model = build_graphcon(cfg.model, cfg.solver, ring_graph())
    assert cfg.solver.method == "leapfrog" and model.ode.time == cfg.model.layers * cfg.model.dt
    model(ring_graph().x, graphcon_graph(ring_graph(), cfg.model))
    assert model.nfe == round(model.ode.time / 0.25)


@pytest.mark.parametrize(
    "model", ["graphcon_gcn", "graphcon_gat", "graphcon_tran", "graphcon_gin", "graphcon_gatedgcn"]
)
def test_trains_on_cora(run_cfg, model):  # graphcon_tran: the grand_attention coupling
    overrides = ["dataset=cora", f"model={model}", "model.hidden_dim=16", "model.layers=3", "train.epochs=2"]
    record = run(run_cfg(*overrides))[0]
    assert record["status"] == "ok" and record["epochs_run"] == 2
    assert record["nfe_forward"] == 3


def test_grand_attention_coupling_averages_neighbourhoods_at_init_and_is_fixed_during_the_solve(ring):
    """F(X) = A(X(0)) X. W_Q, W_K start at a constant, so every score ties and the row-normalised A is the mean
    over each node's neighbours and itself; A is computed once per pass, not once per step."""
    torch.manual_seed(6)
    cfg = graphcon_cfg(coupling="grand_attention", attention={"heads": 2, "dim": 4, "norm": "row"})
    model = build_graphcon(cfg, SolverCfg(method="symplectic_euler"), ring)
    graph = graphcon_graph(ring, cfg)
    func = model.ode.func
    x0 = torch.randn(ring.num_nodes, 6)
    func.prepare(torch.cat([x0, x0], -1), graph)
    x = torch.randn(ring.num_nodes, 6)
    src, dst = add_remaining_self_loops(ring.edge_index, num_nodes=ring.num_nodes)[0]
    neighbourhood_mean = scatter(x[src], dst, dim=0, dim_size=ring.num_nodes, reduce="mean")
    torch.testing.assert_close(func.coupling_term(x), neighbourhood_mean, atol=1e-4, rtol=1e-4)

    calls = []
    func.coupling.attention.register_forward_hook(lambda *_: calls.append(1))
    model(ring.x, graph)
    assert len(calls) == 1 and model.nfe == cfg.layers


def test_sourced_step_is_the_homophilic_code_by_hand(ring):
    """source: V' = (1 - s(b1)) (F(X) - gamma X - alpha V) + s(b1) X(0), X' = (1 - s(b2)) s(a) V + s(b2) V(0)."""
    torch.manual_seed(2)
    cfg = graphcon_cfg(source=True, activation="none", layers=5, dt=1.0, alpha=0.8, gamma=1.2)
    model = build_graphcon(cfg, SolverCfg(method="symplectic_euler"), ring)
    graph = graphcon_graph(ring, cfg)
    func = model.ode.func
    with torch.no_grad():
        func.mix.copy_(torch.tensor([0.3, -0.4, 1.1]))  # not the 0.5 mixtures of the initialisation
        b1, b2, a = torch.sigmoid(func.mix).tolist()
        x0 = torch.randn(ring.num_nodes, 6)
        out = model.ode(x0, graph)
        x, y = x0, x0
        for _ in range(5):
            y = y + (1 - b1) * (func.coupling(x, graph) - 1.2 * x - 0.8 * y) + b1 * x0
            x = x + (1 - b2) * a * y + b2 * x0
    torch.testing.assert_close(out, x)
    assert model.nfe == 5


def test_velocity_half_is_the_step_that_moved_the_position(ring):
    """half="velocity" returns Y of the same solve: symplectic Euler moves X^n = X^{n-1} + dt Y^n, and Y(0) is
    the encoding (the homophilic code's early-stop integrator decodes this half; reference §4.3)."""
    torch.manual_seed(4)
    cfg = graphcon_cfg(layers=4, dt=0.5)
    model = build_graphcon(cfg, SolverCfg(method="symplectic_euler"), ring)
    graph, x0 = graphcon_graph(ring, cfg), torch.randn(ring.num_nodes, 6)
    times = torch.linspace(0.0, 2.0, 5)
    with torch.no_grad():
        position = model.ode(x0, graph, times)
        velocity = model.ode(x0, graph, times, half="velocity")
        model.ode.reset_nfe()
        both = model.ode(x0, graph, times, half="both")
    torch.testing.assert_close(velocity[0], x0)
    torch.testing.assert_close(position[1:] - position[:-1], 0.5 * velocity[1:])
    assert not torch.allclose(velocity[1:], position[1:])
    torch.testing.assert_close(both, torch.cat([position, velocity]))  # both halves from one solve
    assert model.ode.nfe == 4
    with pytest.raises(ValueError, match="needs the times"):
        model.ode(x0, graph, half="both")


def test_velocity_time_selection_keeps_the_best_validation_candidate(run_cfg):
    """eval.state=velocity: the selection runs over X at time_factor * T and Y at every time point, and the
    record's best time is one of those times."""
    overrides = ["dataset=cora", "model=graphcon_gcn", "model.hidden_dim=16", "model.layers=3", "train.epochs=3"]
    selection = ["eval.time_selection=true", "eval.time_points=4", "eval.time_factor=2"]
    record = run(run_cfg(*overrides, *selection, "eval.state=velocity"))[0]
    dt = record["config"]["model"]["dt"]  # Cora's preset: 1; the evaluation integrates to 2 T in 6 steps
    assert record["status"] == "ok" and record["best_time"] in [2 * dt * k for k in range(4)]
    assert record["nfe_eval"] == 6  # one solve gives both X and Y
    position = run(run_cfg(*overrides, *selection))[0]
    assert position["nfe_eval"] == 6 and position["run_key"] != record["run_key"]
    every_step = run(run_cfg(*overrides, *selection, "eval.time_points=null", "train.epochs=1"))[0]
    assert every_step["best_time"] in [dt * k for k in range(7)]


def test_unsourced_unit_step_with_unit_damping_is_a_weight_shared_gcn(ring):
    """dt = alpha = gamma = 1: Y^n = sigma(F(X^{n-1})) - X^{n-1}, so X^n = sigma(F(X^{n-1})) -- no memory of X(0)."""
    torch.manual_seed(3)
    cfg = graphcon_cfg(layers=6, dt=1.0, alpha=1.0, gamma=1.0)
    model = build_graphcon(cfg, SolverCfg(method="symplectic_euler"), ring)
    graph = graphcon_graph(ring, cfg)
    x = x0 = torch.randn(ring.num_nodes, 6)
    with torch.no_grad():
        for _ in range(6):
            x = torch.relu(model.ode.func.coupling(x, graph))
        torch.testing.assert_close(model.ode(x0, graph), x)


def test_cora_preset_is_the_homophilic_code_and_table8_sets_the_depth():
    cfg = compose_cfg(["model=graphcon_gcn", "dataset=cora", "experiment=graphcon2022_table8", "model.layers=64"])
    validate(cfg)
    assert cfg.model.source and cfg.model.activation == "none" and cfg.model.dt == 1.0
    assert (cfg.model.layers, cfg.split.name, cfg.optim.name) == (64, "public", "adamax")
    assert compose_cfg(["model=graphcon_gcn", "dataset=photo"]).model.source is False  # Planetoid presets only
    citeseer = compose_cfg(["model=graphcon_gcn", "dataset=citeseer"])
    # CiteSeer: the pure system, values chosen on validation by a sweep (conf/best/graphcon_gcn_citeseer.yaml)
    assert (citeseer.model.source, citeseer.model.layers, citeseer.model.dt) == (False, 6, 0.25)
    assert (citeseer.train.epochs, citeseer.optim.name) == (100, "adam")


def test_table8_picks_the_sources_per_depth():
    """Table 8's GraphCON-GCN cells: without the sources up to 8 layers, with them from 16 on (chosen on validation)."""
    from grand_bench.report.presets import cell_command
    from grand_bench.report.tables import load_spec

    spec = load_spec("graphcon2022_table8")
    row = next(r for r in spec.rows if r.model == "graphcon_gcn")
    sources = {}
    for col in spec.columns:
        cfg = compose_cfg(cell_command(spec, row, col, []))
        sources[cfg.model.layers] = cfg.model.source
    assert sources == {2: False, 4: False, 8: False, 16: True, 32: True, 64: True}


def test_fused_gcn_coupling_is_the_pyg_layer(ring):
    """The GCN coupling's one-addmm path gives GCNConv's own forward on the cached matrix, values and gradients."""
    from grand_bench.models.graphcon import Coupling

    torch.manual_seed(0)
    coupling = Coupling("gcn", 6, heads=1)
    torch.nn.init.normal_(coupling.conv.bias)
    graph = EdgeGraph(ring.edge_index, ring.num_nodes)
    x = torch.randn(ring.num_nodes, 6, requires_grad=True)
    fused = coupling(x, graph)
    layer = GCNConv.forward(coupling.conv, x, graph.matrix("gcn"))  # PyG's own computation
    torch.testing.assert_close(fused, layer)
    weights = torch.randn_like(fused)
    got = torch.autograd.grad((fused * weights).sum(), [x, coupling.conv.lin.weight, coupling.conv.bias])
    want = torch.autograd.grad((layer * weights).sum(), [x, coupling.conv.lin.weight, coupling.conv.bias])
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)


def test_graphcon_records_from_before_the_attention_option_keep_their_run_keys():
    from grand_bench.run_key import run_key

    cfg = OmegaConf.to_container(compose_cfg(["model=graphcon_gcn", "dataset=cora"]), resolve=True)
    assert cfg["model"]["attention"] is None
    before = {**cfg, "model": {k: v for k, v in cfg["model"].items() if k != "attention"}}
    assert run_key(before) == run_key(cfg)
    tran = compose_cfg(["model=graphcon_tran", "dataset=texas"])
    assert run_key(compose_cfg(["model=graphcon_tran", "dataset=texas", "model.attention.heads=2"])) != run_key(tran)
    before_state = {**cfg, "eval": {k: v for k, v in cfg["eval"].items() if k != "state"}}
    assert run_key(before_state) == run_key(cfg)  # eval.state=position: the selection as before the option
