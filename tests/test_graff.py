"""GRAFF: W parametrisations and their spectra, the gradient-flow property, Euler step, training on Cora."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from grand_bench.config import GraffModelCfg, SolverCfg
from grand_bench.errors import ConfigError
from grand_bench.models.graff import (
    SYMMETRIC_W,
    W_STYLES,
    ChannelMixing,
    GraffFlow,
    build_graff,
    graff_graph,
    symmetric_normalisation,
)
from grand_bench.run import run
from grand_bench.validate import validate

from .test_models import dense


def graff_cfg(**kw):
    base = {"name": "t", "hidden_dim": 6, "time": 1.0, "dt": 0.5, "input_dropout": 0.0, "dropout": 0.0}
    return OmegaConf.merge(OmegaConf.structured(GraffModelCfg), {**base, **kw})


def flow(data, **kw) -> tuple[GraffFlow, object]:
    cfg = graff_cfg(**kw)
    func = GraffFlow(cfg.hidden_dim, cfg, steps=2, step_size=0.5)
    graph = graff_graph(data, cfg)
    func.prepare(torch.randn(data.num_nodes, cfg.hidden_dim), graph)
    return func, graph


@pytest.mark.parametrize("style", W_STYLES)
def test_w_is_symmetric_exactly_for_the_gradient_flow_styles(style):
    torch.manual_seed(0)
    w = ChannelMixing(8, style)()
    assert w.shape == (8, 8)
    if style in SYMMETRIC_W:
        torch.testing.assert_close(w, w.T)
    else:
        assert not torch.allclose(w, w.T)


@pytest.mark.parametrize("style", ["diag", "diag_dom"])
def test_identity_init_starts_from_w_equal_to_the_identity(style):
    torch.testing.assert_close(ChannelMixing(5, style, init="identity")(), torch.eye(5))
    assert not torch.allclose(ChannelMixing(5, style, init="uniform")(), torch.eye(5))


def test_prod_spectrum_is_non_negative_and_neg_prod_non_positive():
    torch.manual_seed(0)
    prod, neg = ChannelMixing(16, "prod")(), ChannelMixing(16, "neg_prod")()
    assert torch.linalg.eigvalsh(prod).min() >= -1e-5 and torch.linalg.eigvalsh(prod).max() > 0.1
    assert torch.linalg.eigvalsh(neg).max() <= 1e-5 and torch.linalg.eigvalsh(neg).min() < -0.1


def test_diag_dom_moves_the_spectrum_through_q_and_r():
    """Gershgorin: diag = q * rowsum|W0| + r with q = 1, r > 0 is positive definite; q = -1, r < 0 negative."""
    torch.manual_seed(0)
    mixing = ChannelMixing(10, "diag_dom")
    w = mixing()
    off = w - torch.diag(torch.diag(w))
    torch.testing.assert_close(off, off.T)
    with torch.no_grad():
        mixing.q.fill_(1.0), mixing.r.fill_(0.1)
    assert torch.linalg.eigvalsh(mixing()).min() > 0
    with torch.no_grad():
        mixing.q.fill_(-1.0), mixing.r.fill_(-0.1)
    assert torch.linalg.eigvalsh(mixing()).max() < 0


def test_abar_is_the_symmetric_normalised_adjacency_with_self_loops(ring):
    graph = graff_graph(ring, graff_cfg())
    abar = dense(graph, symmetric_normalisation(graph))
    a = torch.zeros(ring.num_nodes, ring.num_nodes)
    a[ring.edge_index[1], ring.edge_index[0]] = 1.0
    a = a + torch.eye(ring.num_nodes)
    d = a.sum(1).rsqrt()
    torch.testing.assert_close(abar, d[:, None] * a * d[None, :])
    assert "sym_norm_with_loops" not in graph.cache  # built on first use by the flow, then kept with the graph
    func, _ = flow(ring)
    func.prepare(torch.randn(ring.num_nodes, 6), graph)
    assert graph.cache["sym_norm_with_loops"] is func.abar


@pytest.mark.parametrize("style", W_STYLES)
def test_right_hand_side_is_minus_the_energy_gradient_iff_w_is_symmetric(ring, style):
    """The gradient-flow property: f(F) = -dE/dF for symmetric W (and diagonal Omega, with the source term)."""
    torch.manual_seed(1)
    func, graph = flow(ring, w_style=style, omega_style="diag", add_source=True)
    with torch.no_grad():
        func.beta.fill_(0.7)
    func.prepare(func.x0, graph)  # the source beta X(0) is fixed per pass
    f = torch.randn(ring.num_nodes, 6, requires_grad=True)
    (grad,) = torch.autograd.grad(func.energy(f), f)
    rhs = func(torch.tensor(0.0), f).detach()
    if style in SYMMETRIC_W:
        torch.testing.assert_close(rhs, -grad, atol=1e-5, rtol=1e-4)
    else:
        assert not torch.allclose(rhs, -grad, atol=1e-3)


@pytest.mark.parametrize("style", ["sum", "diag_dom", "neg_prod"])
@pytest.mark.parametrize("source", [False, True])
def test_energy_is_non_increasing_along_a_fine_euler_trajectory(ring, style, source):
    torch.manual_seed(2)
    cfg = graff_cfg(w_style=style, add_source=source, time=3.0)
    model = build_graff(cfg, SolverCfg(method="euler", step_size=0.01, max_nfe=10_000), ring)
    if source:
        with torch.no_grad():
            model.ode.func.beta.fill_(0.5)
    times = torch.linspace(0.0, 3.0, 61)
    with torch.no_grad():
        states = model.ode(torch.randn(ring.num_nodes, 6), graff_graph(ring, cfg), times)
        energy = torch.stack([model.ode.func.energy(f) for f in states])
    assert torch.all(energy[1:] <= energy[:-1] + 1e-5 * energy.abs().max())
    assert energy[-1] < energy[0] - 1e-3  # and it does decrease


def test_one_euler_step_is_eq_10(ring):
    """F(tau) = F(0) + tau (-F(0) Omega + Abar F(0) W + beta F(0)) by dense algebra."""
    torch.manual_seed(3)
    cfg = graff_cfg(w_style="sum", time=0.5, dt=0.5)
    model = build_graff(cfg, SolverCfg(method="euler"), ring)  # step_size from model.dt
    func = model.ode.func
    with torch.no_grad():
        func.beta.fill_(0.3)
    graph = graff_graph(ring, cfg)
    f0 = torch.randn(ring.num_nodes, 6)
    with torch.no_grad():
        out = model.ode(f0, graph)
    abar = dense(graph, symmetric_normalisation(graph))
    w, omega = func.mixing(), func.omega_param
    expected = f0 + 0.5 * (-f0 * omega + abar @ f0 @ w + 0.3 * f0)
    torch.testing.assert_close(out, expected.detach(), atol=1e-5, rtol=1e-5)
    assert model.nfe == 1


def test_w_is_built_once_per_forward_pass(ring):
    cfg = graff_cfg(time=2.0, dt=0.25)
    model = build_graff(cfg, SolverCfg(method="euler"), ring)
    calls = [0]
    original = model.ode.func.mixing.forward

    def counted():
        calls[0] += 1
        return original()

    model.ode.func.mixing.forward = counted
    model(ring.x, graff_graph(ring, cfg))
    assert model.nfe == 8 and calls[0] == 1


def test_time_dependent_w_uses_one_matrix_per_euler_step(ring):
    torch.manual_seed(4)
    cfg = graff_cfg(time=1.4, dt=0.5, time_dependent=True, w_style="diag_dom")
    model = build_graff(cfg, SolverCfg(method="euler"), ring)
    func = model.ode.func
    assert func.steps == math.ceil(1.4 / 0.5) == 3
    model(ring.x, graff_graph(ring, cfg))
    assert func.w.shape == (3, 6, 6)
    assert torch.equal(func.w_at(0.0), func.w[0]) and torch.equal(func.w_at(0.5), func.w[1])
    assert torch.equal(func.w_at(1.0), func.w[2]) and torch.equal(func.w_at(1.4), func.w[2])
    assert not torch.allclose(func.w[0], func.w[1])


def test_time_dependent_w_with_a_single_euler_step_is_one_matrix(ring):
    """T <= dt: one step, one W_t (a sweep drew T = 0.76, dt = 1 and the step indexed a row of W)."""
    cfg = graff_cfg(time=0.76, dt=1.0, time_dependent=True, w_style="diag_dom")
    model = build_graff(cfg, SolverCfg(method="euler"), ring)
    out = model(ring.x, graff_graph(ring, cfg))
    func = model.ode.func
    assert func.steps == 1 and func.w.shape == (6, 6) and torch.equal(func.w_at(0.5), func.w)
    assert out.shape == (ring.num_nodes, int(ring.num_classes))


def test_frozen_w_gets_no_gradient_and_constant_omega_is_fixed(ring):
    cfg = graff_cfg(w_trainable=False, omega_style="const", omega_value=1.0)
    model = build_graff(cfg, SolverCfg(method="euler"), ring)
    model(ring.x, graff_graph(ring, cfg)).sum().backward()
    assert model.ode.func.mixing.weight.grad is None and model.encoder.linear.weight.grad is not None
    assert model.ode.func.omega_param is None and torch.equal(model.ode.func.omega, torch.ones(6))


def test_graff_nl_applies_the_nonlinearity_to_the_right_hand_side(ring):
    torch.manual_seed(5)
    func, _ = flow(ring, nonlinearity="relu")
    f = torch.randn(ring.num_nodes, 6)
    torch.testing.assert_close(func(torch.tensor(0.0), f), func.drift(0.0, f).relu())
    assert (func.drift(0.0, f) < 0).any() and not func.gradient_flow


def test_layerwise_batch_norm_standardises_the_right_hand_side_in_training_and_evaluation(ring):
    torch.manual_seed(8)
    cfg = graff_cfg(conv_batch_norm="layerwise", nonlinearity="relu")
    model = build_graff(cfg, SolverCfg(method="euler"), ring)
    func = model.ode.func
    func.prepare(torch.randn(ring.num_nodes, 6), graff_graph(ring, cfg))
    f = 3 * torch.randn(ring.num_nodes, 6) + 1
    drift = func.drift(0.0, f)
    standardised = (drift - drift.mean(0)) / torch.sqrt(drift.var(0, unbiased=False) + 1e-5)
    for mode in (model.train, model.eval):  # batch statistics either way, as the reference's unregistered BN
        mode()
        torch.testing.assert_close(func(torch.tensor(0.0), f), standardised.relu())
    assert not func.gradient_flow and not list(func.buffers())  # nothing learned, no running statistics


def test_spectrum_diagnostics_report_lambda_plus_and_minus(ring):
    torch.manual_seed(6)
    func, _ = flow(ring, w_style="sum")
    eig = torch.linalg.eigvalsh(func.w.detach())
    spectrum = func.spectrum()
    assert spectrum["lambda_plus"][0] == pytest.approx(max(float(eig.max()), 0.0), abs=1e-5)
    assert spectrum["lambda_minus"][0] == pytest.approx(min(float(eig.min()), 0.0), abs=1e-5)
    assert spectrum["n_positive"][0] + spectrum["n_negative"][0] == 6 and spectrum["symmetric"]


def test_permutation_equivariance(ring):
    torch.manual_seed(7)
    cfg = graff_cfg(w_style="diag_dom")
    model = build_graff(cfg, SolverCfg(method="euler"), ring).eval()
    perm = torch.randperm(ring.num_nodes)
    permuted = ring.clone()
    permuted.x = ring.x[perm]
    permuted.edge_index = torch.argsort(perm)[ring.edge_index]
    out = model(ring.x, graff_graph(ring, cfg))
    torch.testing.assert_close(model(permuted.x, graff_graph(permuted, cfg)), out[perm], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.w_style=bogus", "unknown model.w_style 'bogus'; valid: sum, prod, neg_prod, diag, diag_dom, asymm"),
        ("model.omega_style=full", "unknown model.omega_style 'full'; valid: diag, zero, const"),
        ("model.dt=0", "model.dt must be > 0, got 0"),
        ("model.norm_degree=rw", "unknown model.norm_degree 'rw'; valid: with_loops, without_loops"),
        ("model.conv_batch_norm=global", "unknown model.conv_batch_norm 'global'; valid: none, layerwise"),
    ],
)
def test_bad_options_are_one_line_errors(compose, override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(compose("model=graff", override))


def test_time_dependent_w_needs_a_fixed_step_solver(compose):
    with pytest.raises(ConfigError, match="model.time_dependent=true needs a fixed-step solver"):
        validate(compose("model=graff", "model.time_dependent=true", "solver=dopri5"))


def test_model_yaml_selects_euler_with_the_model_step_and_the_command_line_wins(compose):
    cfg = compose("model=graff")
    assert cfg.solver.method == "euler" and cfg.solver.step_size is None
    validate(cfg)  # the step comes from model.dt
    assert compose("model=graff", "solver=rk4").solver.method == "rk4"


@pytest.fixture
def compose():
    from .conftest import compose_cfg

    return lambda *overrides: compose_cfg(list(overrides))


@pytest.mark.parametrize("model", ["graff", "graff_nl"])
def test_trains_on_cora(run_cfg, model):
    overrides = [
        "dataset=cora",
        f"model={model}",
        "model.hidden_dim=16",
        "model.time=3",
        "model.dt=1",
        "train.epochs=2",
    ]
    record = run(run_cfg(*overrides, "model.time_dependent=true"))[0]
    assert record["status"] == "ok" and record["epochs_run"] == 2
    assert record["nfe_forward"] == 3  # T = 3, tau = 1
    assert record["config"]["model"]["time_dependent"]


def test_adjoint_gradients_match_backprop_and_the_state_dict_keeps_its_keys(ring):
    """W and Omega are built per pass from parameters: under the adjoint they travel as closures (ode_block.py)."""
    torch.manual_seed(8)
    cfg = graff_cfg(w_style="diag_dom", time=1.0)
    adjoint = build_graff(cfg, SolverCfg(method="rk4", step_size=0.05, adjoint=True, adjoint_method="rk4"), ring)
    plain = build_graff(cfg, SolverCfg(method="rk4", step_size=0.05), ring)
    plain.load_state_dict(adjoint.state_dict())
    keys = set(plain.state_dict())
    graph = graff_graph(ring, cfg)
    for model in (adjoint, plain):
        model(ring.x, graph).pow(2).sum().backward()
    assert set(plain.state_dict()) == keys  # nothing registered by the forward pass
    for p_adjoint, p_plain in zip(adjoint.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p_adjoint.grad, p_plain.grad, rtol=5e-3, atol=1e-5)
