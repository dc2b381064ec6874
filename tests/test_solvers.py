"""The ODE block: exact NFE of fixed-step methods, the max-NFE guard, validation, adjoint gradients."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from grand_bench.config import GrandModelCfg, SolverCfg
from grand_bench.errors import ConfigError, MaxNFEExceeded, SolverError
from grand_bench.models.grand import GrandDiffusion, build_grand, diffusion_graph
from grand_bench.solvers import GraphODEFunc, ODEBlock, solver_tolerances
from grand_bench.validate import validate

from .conftest import compose_cfg


def grand_func(data, **model) -> GrandDiffusion:
    cfg = OmegaConf.merge(OmegaConf.structured(GrandModelCfg), {"name": "t", "hidden_dim": 8, **model})
    func = GrandDiffusion(8, cfg)
    func.test_graph = diffusion_graph(data, cfg)  # the graph the tests integrate on
    return func


def solver(**kw) -> SolverCfg:
    return SolverCfg(**kw)


@pytest.mark.parametrize(("method", "per_step"), [("euler", 1), ("midpoint", 2), ("rk4", 4)])
@pytest.mark.parametrize(("time", "step"), [(1.0, 0.25), (2.0, 0.5), (3.0, 1.0)])
def test_fixed_step_nfe_is_exact(ring, method, per_step, time, step):
    block = ODEBlock(grand_func(ring), solver(method=method, step_size=step), time)
    block(torch.randn(ring.num_nodes, 8), block.func.test_graph)
    assert block.nfe == per_step * round(time / step)


def test_fixed_step_without_step_size_is_an_error(ring):
    with pytest.raises(ConfigError, match="fixed-step method 'rk4' needs a step size"):
        ODEBlock(grand_func(ring), solver(method="rk4"), 1.0)


def test_unknown_method_lists_valid_ones(ring):
    with pytest.raises(ConfigError, match="unknown solver.method 'rk5'; valid: .*dopri5"):
        ODEBlock(grand_func(ring), solver(method="rk5"), 1.0)


def test_max_nfe_guard_stops_the_solve(ring):
    block = ODEBlock(grand_func(ring), solver(method="euler", step_size=0.1, max_nfe=5), 1.0)
    with pytest.raises(MaxNFEExceeded, match="max_nfe=5"):
        block(torch.randn(ring.num_nodes, 8), block.func.test_graph)


def test_adaptive_solver_counts_and_respects_tolerance(ring):
    x0 = torch.randn(ring.num_nodes, 8)
    loose = ODEBlock(grand_func(ring), solver(method="dopri5", rtol=1e-3, atol=1e-3), 3.0)
    tight = ODEBlock(grand_func(ring), solver(method="dopri5", rtol=1e-8, atol=1e-8), 3.0)
    reference = ODEBlock(grand_func(ring), solver(method="rk4", step_size=0.01, max_nfe=5000), 3.0)
    for block in (loose, tight, reference):
        block.load_state_dict(loose.state_dict())
    graph = loose.func.test_graph
    out_loose, out_tight, out_ref = loose(x0, graph), tight(x0, graph), reference(x0, graph)
    assert 0 < loose.nfe < tight.nfe
    assert (out_tight - out_ref).abs().max() < (out_loose - out_ref).abs().max() + 1e-6
    assert (out_tight - out_ref).abs().max() < 1e-4


def test_tol_scale_convention():
    assert solver_tolerances(1e-7, 1e-9, None) == (1e-7, 1e-9)
    rtol, atol = solver_tolerances(1e-7, 1e-9, 100.0)
    assert rtol == pytest.approx(1e-7) and atol == pytest.approx(1e-5)


class _Explode(GraphODEFunc):
    def forward(self, t, x):
        return x * float("inf")


def test_non_finite_state_raises_solver_error():
    block = ODEBlock(_Explode(), solver(method="euler", step_size=0.5), 1.0)
    with pytest.raises(SolverError, match="NaN/Inf"):
        block(torch.ones(3, 2), None)


@pytest.mark.parametrize("diffusivity", ["fixed_attention", "attention"])
def test_adjoint_gradients_match_backprop(ring, diffusivity):
    """With the adjoint, gradients must also reach X(0) and GRAND-l's attention (adjoint_tensors)."""
    model_cfg = OmegaConf.merge(
        OmegaConf.structured(GrandModelCfg),
        {
            "name": "t",
            "hidden_dim": 8,
            "time": 1.0,
            "diffusivity": diffusivity,
            "add_source": True,
            "input_dropout": 0.0,
            "attention": {"init_constant": None, "heads": 2, "dim": 8},
        },
    )
    graph = diffusion_graph(ring, model_cfg)
    grads = []
    for adjoint in (False, True):
        torch.manual_seed(0)
        cfg = solver(method="rk4", step_size=0.05, adjoint=adjoint)
        model = build_grand(model_cfg, cfg, ring).double()
        with torch.no_grad():  # make the source term matter so its gradient path is exercised
            model.ode.func.beta_train.fill_(0.3)
        model.train()
        model(ring.x.double(), graph).square().sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    plain, adjoint = grads
    assert plain.keys() == adjoint.keys()
    assert any("query" in n for n in plain) and "encoder.linear.weight" in plain
    for name in plain:
        torch.testing.assert_close(adjoint[name], plain[name], rtol=1e-3, atol=1e-6, msg=name)


@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4"])
def test_native_fixed_step_matches_torchdiffeq(ring, method):
    x0 = torch.randn(ring.num_nodes, 8, dtype=torch.double)
    native = ODEBlock(grand_func(ring, add_source=True), solver(method=method, step_size=0.25), 2.0).double()
    reference = ODEBlock(
        grand_func(ring, add_source=True), solver(method=method, step_size=0.25, backend="torchdiffeq"), 2.0
    ).double()
    reference.load_state_dict(native.state_dict())
    graph = native.func.test_graph
    torch.testing.assert_close(native(x0, graph), reference(x0, graph))
    assert native.nfe == reference.nfe


@pytest.mark.parametrize("method", ["dopri5", "bosh3", "adaptive_heun"])
def test_native_adaptive_agrees_with_torchdiffeq_within_tolerance(ring, method):
    x0 = torch.randn(ring.num_nodes, 8, dtype=torch.double)
    graph = diffusion_graph(ring, OmegaConf.structured(GrandModelCfg(name="t")))
    outs, nfes = [], []
    for backend in ("native", "torchdiffeq"):
        block = ODEBlock(
            grand_func(ring), solver(method=method, rtol=1e-5, atol=1e-7, backend=backend, max_nfe=100_000), 3.0
        ).double()
        with torch.no_grad():
            block.func.alpha_train.fill_(2.0)
        outs.append(block(x0, graph))
        nfes.append(block.nfe)
    assert (outs[0] - outs[1]).abs().max() < 1e-4
    assert 0.5 * nfes[1] <= nfes[0] <= 2 * nfes[1]


def test_native_adaptive_lands_on_every_requested_time(ring):
    block = ODEBlock(grand_func(ring), solver(method="dopri5", rtol=1e-8, atol=1e-10), 1.0).double()
    reference = ODEBlock(grand_func(ring), solver(method="rk4", step_size=0.01, max_nfe=10_000), 1.0).double()
    x0 = torch.randn(ring.num_nodes, 8, dtype=torch.double)
    times = torch.tensor([0.0, 0.3, 0.35, 2.0])
    graph = block.func.test_graph
    torch.testing.assert_close(block(x0, graph, times), reference(x0, graph, times), atol=1e-6, rtol=1e-6)


class _Sourced(GraphODEFunc):
    """f(t, x) = tanh(x W) + s, with a parameter W and a per-pass closure s that needs gradients."""

    closure_names = ("source",)

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(0.5 * torch.randn(dim, dim, dtype=torch.float64))
        self.source = None

    def forward(self, t, x):
        return torch.tanh(x @ self.weight) + self.source


@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4", "dopri5", "bosh3", "adaptive_heun"])
def test_reverse_pass_gives_autograds_gradients_through_the_same_solve(method):
    """The hand-written reverse pass (solvers/rk_backprop.py) is exact backprop through the discrete solve:
    gradients for the initial state, a closure and a parameter equal autograd's through the same steps,
    with a loss on several output times (one of them repeated)."""
    from grand_bench.solvers.runge_kutta import integrate_adaptive, integrate_fixed

    torch.manual_seed(0)
    func = _Sourced(3)
    block = ODEBlock(func, solver(method=method, step_size=0.3, rtol=1e-5, atol=1e-7), 1.0)
    times = torch.tensor([0.0, 0.4, 1.0, 1.0], dtype=torch.float64)
    y0 = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    source = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(4, 5, 3, dtype=torch.float64)

    def gradients(solve) -> list[torch.Tensor]:
        func.source = source * 1.0  # a non-leaf closure, as prepare() builds them
        loss = (solve() * weights).sum()
        return torch.autograd.grad(loss, [y0, source, func.weight])

    def plain_autograd():
        if method in ("euler", "midpoint", "rk4"):
            return integrate_fixed(block.counted, method, y0, times, 0.3)
        return integrate_adaptive(block.counted, method, y0, times, block.rtol, block.atol)

    expected = gradients(plain_autograd)
    block.reset_nfe()
    got = gradients(lambda: block(y0, None, times))
    assert block.nfe > 3
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-12)
    block.cfg.reverse_pass = False  # the switch: autograd through the block's own solve, the same gradients
    block.reset_nfe()
    for g, e in zip(gradients(lambda: block(y0, None, times)), expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-12)


class _Decay(GraphODEFunc):
    """x' = -r x per channel, r in [0, 0.5]: a slow, stable diffusion-like spectrum."""

    rates = torch.linspace(0.0, 0.5, 16)

    def forward(self, t, x):
        return -self.rates * x


@pytest.mark.parametrize(
    ("method", "order_12_error", "order_4_error"), [("explicit_adams", 1e3, 1e-3), ("implicit_adams", 1e-2, 1e-5)]
)
def test_adams_max_order_keeps_a_stable_step_stable(method, order_12_error, order_4_error):
    """torchdiffeq's Adams methods climb to order 12, whose stability region the step 0.5 leaves on this spectrum
    (GRAND Fig. 3's step-0.5 dip); capped at order 4 the same step is accurate."""
    exact = torch.exp(-_Decay.rates * 18.0)

    def error(max_order):
        cfg = solver(method=method, step_size=0.5, max_order=max_order, max_nfe=100_000, rtol=1e-6, atol=1e-6)
        return float((ODEBlock(_Decay(), cfg, 18.0)(torch.ones(1, 16), None) - exact).abs().max())

    assert error(None) > order_12_error
    assert error(4) < order_4_error


def test_adams_max_order_is_checked():
    with pytest.raises(ConfigError, match="solver.max_order is for explicit_adams / implicit_adams; .* 'dopri5'"):
        validate(compose_cfg(["solver=dopri5", "solver.max_order=4"]))
    with pytest.raises(ConfigError, match=r"solver.max_order must be in \[4, 12\].*got 3"):
        validate(compose_cfg(["solver=explicit_adams", "solver.step_size=0.5", "solver.max_order=3"]))
