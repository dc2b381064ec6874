"""Implicit schemes (solvers/implicit.py): accuracy against the matrix exponential, stability beyond the explicit
limit, the Krylov solvers against dense solves, implicit-function gradients, and the failure modes."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from grand_bench.config import GrandModelCfg, SolverCfg
from grand_bench.errors import ConfigError, SolverError
from grand_bench.models import family
from grand_bench.models.grand import GrandDiffusion, diffusion_graph
from grand_bench.run import run
from grand_bench.solvers import ODEBlock
from grand_bench.solvers.implicit import cg_normal_equations, conjugate_gradients, probe_operator
from grand_bench.validate import validate

from .conftest import compose_cfg


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def linear_model(data, model: str, *overrides: str):
    """(ODE function of a linear-diffusion model YAML (no best/ file), prepared at a random X(0); X(0); graph)."""
    cfg = compose_cfg([f"model={model}", "dataset=texas", "~best", "model.hidden_dim=4", *overrides])
    torch.manual_seed(0)  # the operator's random parts (attention, W, Omega) do not depend on test order
    fam = family(cfg.model)
    func = fam.build(cfg.model, cfg.solver, data).ode.func
    x0, graph = torch.randn(data.num_nodes, 4), fam.graph(data, cfg.model)
    func.prepare(x0, graph)
    return func, x0, graph


def dense_operator(func, x0: torch.Tensor, grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, b) of an affine right-hand side on the flattened state, f(x) = M x + b (prepared at x0)."""
    t = torch.tensor(0.0)
    with torch.set_grad_enabled(grad):
        b = func(t, torch.zeros_like(x0)).flatten()
        basis = torch.eye(x0.numel()).view(-1, *x0.shape)
        m = torch.stack([func(t, e).flatten() - b for e in basis], dim=1)
    return m, b


def integrate(func, x0, graph, method: str, step: float, time: float) -> torch.Tensor:
    cfg = SolverCfg(method=method, step_size=step, linear_tol=1e-10, linear_max_iters=1000, max_nfe=10**6)
    with torch.no_grad():
        return ODEBlock(func, cfg, time)(x0, graph)


LINEAR_MODELS = [
    ("grand_laplacian", []),
    ("grand_l", ["model.attention.init_constant=null"]),
    ("graff", ["model.w_init=identity", "model.omega_style=zero"]),
]


@pytest.mark.parametrize(("model", "overrides"), LINEAR_MODELS)
def test_implicit_schemes_converge_to_the_matrix_exponential(ring, float64, model, overrides):
    func, x0, graph = linear_model(ring, model, *overrides)
    m, b = dense_operator(func, x0)
    time = 2.0
    # exact solution of x' = M x + b through the augmented system [[M, b], [0, 0]]
    augmented = torch.zeros(m.shape[0] + 1, m.shape[0] + 1)
    augmented[:-1, :-1], augmented[:-1, -1] = m, b
    exact = (torch.linalg.matrix_exp(time * augmented) @ torch.cat([x0.flatten(), torch.ones(1)]))[:-1]
    for method, order in (("backward_euler", 1), ("adams_moulton", 2)):
        errors = [
            float((integrate(func, x0, graph, method, step, time).flatten() - exact).norm() / exact.norm())
            for step in (0.2, 0.1, 0.05)
        ]
        assert errors[-1] < (0.1 if order == 1 else 1e-3), (method, errors)
        for coarse, fine in zip(errors, errors[1:], strict=False):
            assert 2**order * 0.8 < coarse / fine < 2**order * 1.25, (method, errors)  # observed order


def test_implicit_euler_is_stable_at_tau_5_where_explicit_euler_blows_up(ring, float64):
    func, x0, graph = linear_model(ring, "grand_laplacian")
    m, _ = dense_operator(func, x0)
    assert float(torch.linalg.eigvals(m).real.min()) * 5 < -2  # tau = 5 is beyond explicit Euler's limit
    time, bound = 100.0, float(x0.abs().max())
    explicit = integrate(func, x0, graph, "euler", 5.0, time)
    assert float(explicit.abs().max()) > 1e3 * bound
    implicit = integrate(func, x0, graph, "backward_euler", 5.0, time)
    assert float(implicit.abs().max()) <= bound + 1e-9  # discrete maximum principle (GRAND eq. 3 / Thm. 2)
    trapezoidal = integrate(func, x0, graph, "adams_moulton", 5.0, time)
    assert float(trapezoidal.norm()) <= 2 * float(x0.norm())  # A-stable: bounded, no blow-up


def test_conjugate_gradients_match_a_dense_solve(float64):
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(12, 12, generator=gen)
    spd = q @ q.T + 12 * torch.eye(12)
    rhs = torch.randn(12, 3, generator=gen)
    out = conjugate_gradients(lambda v: spd @ v, rhs, torch.zeros_like(rhs), 1e-12, 100)
    torch.testing.assert_close(out.x, torch.linalg.solve(spd, rhs))
    assert out.residual <= 1e-12 and out.iterations <= 12 + 2  # CG: at most n steps in exact arithmetic
    general = torch.eye(12) + 0.3 * torch.randn(12, 12, generator=gen)  # not symmetric
    out = cg_normal_equations(lambda v: general @ v, lambda v: general.T @ v, rhs, torch.zeros_like(rhs), 1e-12, 200)
    torch.testing.assert_close(out.x, torch.linalg.solve(general, rhs))


def dense_backward_euler(m: torch.Tensor, b: torch.Tensor, x0: torch.Tensor, tau: float, steps: int):
    x = x0.flatten()
    system = torch.eye(m.shape[0]) - tau * m
    for _ in range(steps):
        x = torch.linalg.solve(system, x + tau * b)
    return x


@pytest.mark.parametrize(
    ("model", "overrides"),
    [
        ("grand_l", ["model.add_source=true", "model.attention.init_constant=null"]),
        ("rdgnn", ["model.reaction=source"]),
    ],
)
def test_gradients_follow_the_implicit_function_theorem(ring, float64, model, overrides):
    """Gradients w.r.t. X(0) and the diffusion speed equal autograd through dense solves: GRAND-l with a source
    (A(X(0)) not symmetric: CGLS; gradients also reach X(0) through A) and RDGNN's diffusion (symmetric: CG)."""
    func, _, graph = linear_model(ring, model, *overrides)
    with torch.no_grad():
        func.alpha_train.fill_(0.7)
        func.beta_train.fill_(0.5)
    x0 = torch.randn(ring.num_nodes, 4, requires_grad=True)
    cfg = SolverCfg(method="backward_euler", step_size=1.5, linear_tol=1e-11, linear_max_iters=500)
    out = ODEBlock(func, cfg, 3.0)(x0, graph)
    weights = torch.randn_like(out)
    grads = torch.autograd.grad((out * weights).sum(), (x0, func.alpha_train))

    func.prepare(x0, graph)
    m, b = dense_operator(func, x0, grad=True)  # differentiable in X(0) and alpha
    x = x0.flatten()
    for _ in range(2):
        x = torch.linalg.solve(torch.eye(m.shape[0]) - 1.5 * m, x + 1.5 * b)
    torch.testing.assert_close(out, x.view_as(out), atol=1e-8, rtol=1e-8)
    reference = torch.autograd.grad((x.view_as(out) * weights).sum(), (x0, func.alpha_train))
    for ours, theirs in zip(grads, reference, strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("linear_solver", ["cg", "cgnr"])
def test_a_linear_solve_out_of_iterations_raises_solver_error(ring, linear_solver):
    func, x0, graph = linear_model(ring, "grand_laplacian")
    cfg = SolverCfg(
        method="backward_euler", step_size=5.0, linear_solver=linear_solver, linear_tol=1e-8, linear_max_iters=2
    )
    with pytest.raises(SolverError, match="did not reach solver.linear_tol=1e-08 within solver.linear_max_iters=2"):
        ODEBlock(func, cfg, 10.0)(x0, graph)


def test_non_linear_right_hand_side_is_refused(ring):
    cfg = OmegaConf.merge(
        OmegaConf.structured(GrandModelCfg),
        {"name": "t", "hidden_dim": 4, "diffusivity": "attention", "attention": {"init_constant": None}},
    )
    func = GrandDiffusion(4, cfg)  # GRAND-nl: A(X(t)) changes with the state
    block = ODEBlock(func, SolverCfg(method="backward_euler", step_size=1.0), 2.0)
    with pytest.raises(SolverError, match="needs a right-hand side affine in the state"):
        block(torch.randn(ring.num_nodes, 4), diffusion_graph(ring, cfg))
    with pytest.raises(ConfigError, match="model.diffusivity 'attention' recomputes A"):
        validate(compose_cfg(["model=grand_nl", "solver=backward_euler", "solver.step_size=1"]))
    with pytest.raises(ConfigError, match="model.reaction 'allen_cahn' is non-linear"):
        validate(
            compose_cfg(["model=gread", "model.reaction=allen_cahn", "solver=adams_moulton", "solver.step_size=1"])
        )
    with pytest.raises(ConfigError, match="model.family 'grand' does not split"):
        validate(compose_cfg(["model=grand_l", "solver=imex_euler", "solver.step_size=1"]))
    with pytest.raises(ConfigError, match="unknown solver.linear_solver 'lu'; valid: auto, cg, cgnr"):
        validate(
            compose_cfg(["model=grand_l", "solver=backward_euler", "solver.step_size=1", "solver.linear_solver=lu"])
        )


@pytest.mark.parametrize(("model", "norm", "symmetric"), [("rdgnn", "sym", True), ("grand_laplacian", "row", False)])
def test_symmetry_probe_chooses_the_krylov_method(ring, model, norm, symmetric):
    overrides = ["model.reaction=source"] if model == "rdgnn" else [f"model.attention.norm={norm}"]
    func, x0, _ = linear_model(ring, model, *overrides)
    assert probe_operator(func, torch.tensor(1.0), x0, "backward_euler", "f") is symmetric


def test_imex_euler_step_solves_the_diffusion_and_steps_the_reaction(ring, float64):
    """RDGNN's IMEX step: (I - tau M) x_1 = x_0 + tau R(x_0, x_0) with M = -Σ L (reference §7)."""
    func, x0, graph = linear_model(ring, "rdgnn")
    with torch.no_grad():
        func.alpha_train.fill_(3.0)
    t = torch.tensor(0.0)
    with torch.no_grad():
        func.part = "implicit"
        m, _ = dense_operator(func, x0)
        func.part = "explicit"
        reaction = func(t, x0).flatten()
        func.part = "full"
    expected = torch.linalg.solve(torch.eye(m.shape[0]) - 2.0 * m, x0.flatten() + 2.0 * reaction)
    out = integrate(func, x0, graph, "imex_euler", 2.0, 2.0)
    torch.testing.assert_close(out.flatten(), expected)


def test_backward_euler_trains_linear_models_and_records_failures(run_cfg):
    fast = ["dataset=cora", "model.hidden_dim=16", "model.time=2.0", "train.epochs=2", "solver.step_size=1.0"]
    for model in ("grand_laplacian", "grand_l"):
        (record,) = run(run_cfg(f"model={model}", "solver=backward_euler", *fast))
        assert record["status"] == "ok" and record["nfe_forward"] > 2 and record["nfe_backward"] > 0
    (record,) = run(run_cfg("model=grand_l", "solver=adams_moulton", *fast))
    assert record["status"] == "ok"
    (record,) = run(run_cfg("model=grand_l", "solver=backward_euler", "solver.linear_max_iters=1", *fast))
    assert record["status"] == "failed" and "SolverError" in record["error"] and "linear_max_iters=1" in record["error"]
