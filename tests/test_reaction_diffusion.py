"""Reaction-diffusion family (GRAND++, GREAD, RDGNN): each reaction term against its formula, the coefficient
forms, Allen-Cahn's bounded dynamics, GRAND++'s source against over-smoothing, equivariance, training on Cora."""

from __future__ import annotations

import pytest
import torch

from grand_bench.config import SolverCfg
from grand_bench.errors import ConfigError, SolverError
from grand_bench.models import family
from grand_bench.models.reaction_diffusion import REACTIONS, ReactionDiffusion
from grand_bench.run import run
from grand_bench.solvers import ODEBlock
from grand_bench.validate import validate

from .conftest import compose_cfg

HIDDEN = 4


def build(data, model: str, *overrides: str):
    """(model, its ODE function, its graph) for a model YAML (no best/ file) on ``data``."""
    cfg = compose_cfg([f"model={model}", "dataset=texas", "~best", f"model.hidden_dim={HIDDEN}", *overrides])
    fam = family(cfg.model)
    net = fam.build(cfg.model, cfg.solver, data)
    return net, net.ode.func, fam.graph(data, cfg.model)


def dense_adjacency(func: ReactionDiffusion) -> torch.Tensor:
    n = func.graph.num_nodes
    a = torch.zeros(n, n)
    a[func.graph.dst, func.graph.src] = func.values
    return a


def formulas(x, x0, a, func) -> dict[str, torch.Tensor]:
    """Each reaction r(X) as reference §6.1 / §3 / §7 write it, with a dense A."""
    train = func.train_nodes
    trusted = torch.zeros_like(x0)
    trusted[train] = x0[train] - x0[train].mean(0)
    out = {
        "fisher": x * (1 - x),
        "allen_cahn": x * (1 - x**2),
        "zeldovich": x * (x - x**2),
        "bspm": (a - a @ a) @ x,
        "source": x0,
        "filter_bank": x + a @ x,
        "filter_bank_star": 2 * x + a @ x,
        "trusted_source": trusted,
    }
    if func.reaction_net is not None:
        layer = func.reaction_net.linear
        out["mlp"] = torch.tanh(torch.cat([x, x0, x * x0], 1) @ layer.weight.T + layer.bias)
    return out


@pytest.mark.parametrize("reaction", list(REACTIONS))
def test_each_reaction_term_matches_its_formula(ring, reaction):
    _, func, graph = build(ring, "gread", f"model.reaction={reaction}", "model.diffusivity=laplacian")
    func.set_train_nodes(torch.tensor([1, 4, 7, 20]))
    x0, x = torch.randn(ring.num_nodes, HIDDEN), torch.randn(ring.num_nodes, HIDDEN)
    func.prepare(x0, graph)
    a = dense_adjacency(func)
    expected = formulas(x, x0, a, func)[reaction]
    adj = func.adjacency(x)
    torch.testing.assert_close(REACTIONS[reaction](func, x, adj(x), adj), expected, atol=1e-5, rtol=1e-5)
    # the full right-hand side: alpha (A X - X) + beta r(X), per-channel alpha, free per-channel beta (GREAD)
    with torch.no_grad():
        func.alpha_train.copy_(torch.linspace(-1, 1, HIDDEN))
    f = func(torch.tensor(0.0), x)
    alpha, beta = torch.sigmoid(func.alpha_train), func.beta_train
    torch.testing.assert_close(f, alpha * (a @ x - x) + beta * expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("dims", "shapes"), [(("scalar", "scalar"), ((), ())), (("channel", "channel"), ((4,), (4,)))])
def test_coefficient_forms(ring, dims, shapes):
    _, func, _ = build(
        ring, "gread", f"model.alpha_dim={dims[0]}", f"model.beta_dim={dims[1]}", "model.beta_diag=false"
    )
    assert func.alpha_train.shape == shapes[0] and func.beta_train.shape == shapes[1]
    torch.testing.assert_close(func.beta, torch.full(shapes[1], 0.5))  # sigmoid(0): GREAD's beta_diag=False
    _, func, _ = build(ring, "gread", "model.beta_diag=true")
    assert func.beta_train.shape == (HIDDEN,) and func.beta.abs().max() <= 1 and (func.beta == func.beta_train).all()


def test_allen_cahn_keeps_the_state_bounded(ring):
    """With beta > 0 and stochastic A, |X| <= max(1, |X(0)|) and every value is driven into [-1, 1]; Fisher's
    x (1 - x) has no such bound for negative values."""
    _, func, graph = build(ring, "gread", "model.reaction=allen_cahn", "model.beta_diag=false")
    x0 = 4 * torch.randn(ring.num_nodes, HIDDEN)
    block = ODEBlock(func, SolverCfg(method="rk4", step_size=0.01, max_nfe=10**5), 10.0)
    with torch.no_grad():
        states = block(x0, graph, torch.linspace(0, 10.0, 11))
    peaks = states.abs().flatten(1).max(1).values
    assert float(peaks.max()) <= float(x0.abs().max()) + 1e-4
    assert (peaks[1:] <= peaks[:-1].clamp(min=1) + 1e-4).all() and float(peaks[-1]) <= 1 + 1e-3
    _, fisher, graph = build(ring, "gread", "model.reaction=fisher", "model.beta_diag=false")
    with torch.no_grad():
        fisher.alpha_train.fill_(-10.0)  # almost no diffusion: the reaction alone
    block = ODEBlock(fisher, SolverCfg(method="rk4", step_size=0.01, max_nfe=10**5), 3.0)
    with pytest.raises(SolverError, match="NaN/Inf"), torch.no_grad():
        block(-torch.ones(ring.num_nodes, HIDDEN) * 2, graph)


def test_grand_pp_source_keeps_the_state_from_collapsing(ring):
    """GRAND's diffusion drives X(t) to a constant (Dirichlet energy -> 0); GRAND++'s source at the labelled nodes
    keeps node states apart at large T (reference §3)."""
    x0 = torch.randn(ring.num_nodes, HIDDEN)
    spread = {}
    for model in ("grand_l", "grand_pp"):
        _, func, graph = build(ring, model, *(["model.beta_init=0.0"] if model == "grand_pp" else []))  # beta 0.5
        if hasattr(func, "set_train_nodes"):
            func.set_train_nodes(torch.tensor([0, 5, 10, 15]))
        block = ODEBlock(func, SolverCfg(method="rk4", step_size=1.0, max_nfe=10**5), 200.0)
        with torch.no_grad():
            spread[model] = float(block(x0, graph).std(0).mean())
    assert spread["grand_l"] < 1e-3 < 0.05 < spread["grand_pp"]


def test_grand_pp_needs_the_labelled_nodes(ring):
    net, func, graph = build(ring, "grand_pp")
    with pytest.raises(ConfigError, match="needs the labelled nodes"):
        net(ring.x, graph)
    func.set_train_nodes(torch.tensor([2, 3]))
    func.prepare(torch.randn(ring.num_nodes, HIDDEN), graph)
    outside = torch.ones(ring.num_nodes, dtype=torch.bool)
    outside[[2, 3]] = False
    assert (func.source[outside] == 0).all() and torch.allclose(
        func.source[[2, 3]].sum(0), torch.zeros(HIDDEN), atol=1e-6
    )


@pytest.mark.parametrize(
    ("model", "overrides"),
    [
        ("grand_pp", []),
        ("gread", []),
        ("gread", ["model.diffusivity=laplacian", "model.laplacian_norm=sym"]),
        ("rdgnn", []),
        ("rdgnn", ["solver=imex_euler", "solver.step_size=0.5"]),
    ],
)
def test_reaction_diffusion_models_are_permutation_equivariant(ring, model, overrides):
    net, func, graph = build(ring, model, *overrides)
    train = torch.tensor([0, 3, 9, 12])
    func.set_train_nodes(train)
    net.eval()
    out = net(ring.x, graph)
    perm = torch.randperm(ring.num_nodes, generator=torch.Generator().manual_seed(1))
    new_position = torch.argsort(perm)  # old node i is node new_position[i] after permuting
    permuted = ring.clone()
    permuted.x, permuted.edge_index = ring.x[perm], new_position[ring.edge_index]
    cfg = compose_cfg([f"model={model}", "dataset=texas", "~best", f"model.hidden_dim={HIDDEN}", *overrides])
    func.set_train_nodes(new_position[train])
    out_permuted = net(permuted.x, family(cfg.model).graph(permuted, cfg.model))
    torch.testing.assert_close(out_permuted, out[perm], atol=1e-4, rtol=1e-4)


def test_bad_options_are_reported_with_the_valid_choices():
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg(["model=gread", "model.reaction=turing", "model.beta_dim=matrix"]))
    message = str(err.value)
    assert "unknown model.reaction 'turing'; valid: fisher, allen_cahn, zeldovich, bspm" in message
    assert "unknown model.beta_dim 'matrix'; valid: scalar, channel" in message
    with pytest.raises(ConfigError, match="model.laplacian_norm=sym applies to model.diffusivity 'laplacian'"):
        validate(compose_cfg(["model=gread", "model.laplacian_norm=sym"]))


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=grand_pp", "split.train_per_class=2"],  # GRAND++'s low-label protocol: 2 labels per class
        ["model=gread", "solver=rk4", "solver.step_size=0.5"],
        [
            "model=gread",
            "model.reaction=allen_cahn",
            "model.beta_diag=false",
            "solver=imex_euler",
            "solver.step_size=0.5",
        ],
        ["model=rdgnn", "solver=euler", "solver.step_size=0.5"],
        ["model=rdgnn", "solver=imex_euler", "solver.step_size=0.5"],
    ],
)
def test_models_train_on_cora(run_cfg, overrides):
    fast = ["dataset=cora", "model.hidden_dim=16", "model.time=1.0", "train.epochs=2"]
    (record,) = run(run_cfg(*overrides, *fast))
    assert record["status"] == "ok", record["error"]
    assert record["nfe_forward"] > 0 and 0 <= record["test_at_best_val"] <= 1
    if "split.train_per_class=2" in overrides:
        assert record["split_sizes"]["train"] == 2 * 7
