"""GRAND building blocks: the sparse operator, attention normalisation, the three diffusivities."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from grand_bench.config import AttentionCfg, GrandModelCfg, SolverCfg
from grand_bench.models.attention import ATTENTION_TYPES, EdgeAttention
from grand_bench.models.grand import build_grand, diffusion_graph
from grand_bench.models.graph import SparseGraph


def grand_cfg(**kw):
    base = {"name": "t", "hidden_dim": 8, "time": 1.0, "input_dropout": 0.0}
    return OmegaConf.merge(OmegaConf.structured(GrandModelCfg), {**base, **kw})


def dense(graph: SparseGraph, values: torch.Tensor) -> torch.Tensor:
    a = torch.zeros(graph.num_nodes, graph.num_nodes, dtype=values.dtype)
    a[graph.dst, graph.src] = values
    return a


def test_matmul_matches_dense_and_gradients_match_autograd(ring):
    graph = SparseGraph(ring.edge_index, ring.num_nodes)
    values = torch.rand(graph.num_edges, dtype=torch.double, requires_grad=True)
    x = torch.randn(ring.num_nodes, 5, dtype=torch.double, requires_grad=True)
    torch.testing.assert_close(graph.matmul(values, x), dense(graph, values) @ x)
    assert torch.autograd.gradcheck(lambda v, h: graph.matmul(v, h), (values, x))


def test_matmul_add_gradients(ring):
    graph = SparseGraph(ring.edge_index, ring.num_nodes)
    values = torch.rand(graph.num_edges, dtype=torch.double, requires_grad=True)
    x = torch.randn(ring.num_nodes, 3, dtype=torch.double, requires_grad=True)
    bias = torch.randn(ring.num_nodes, 3, dtype=torch.double, requires_grad=True)
    torch.testing.assert_close(graph.matmul_add(values, x, bias), dense(graph, values) @ x + bias)
    assert torch.autograd.gradcheck(lambda v, h, b: graph.matmul_add(v, h, b), (values, x, bias))


@pytest.mark.parametrize("self_loop_weight", [1.0, 0.0])
@pytest.mark.parametrize("diffusivity", ["fixed_attention", "attention", "laplacian"])
def test_grand_rhs_matches_its_equation(ring, diffusivity, self_loop_weight):
    """f = sigma(alpha) (A X - X) + beta X(0), whether or not (A - I) is folded into one sparse operator."""
    from grand_bench.models.grand import GrandDiffusion

    cfg = grand_cfg(diffusivity=diffusivity, add_source=True, self_loop_weight=self_loop_weight)
    graph = diffusion_graph(ring, cfg)
    assert (graph.self_loop_indicator() is None) == (self_loop_weight == 0.0)
    func = GrandDiffusion(8, cfg)
    with torch.no_grad():
        func.alpha_train.fill_(0.7)
        func.beta_train.fill_(0.4)
    x0, x = torch.randn(ring.num_nodes, 8), torch.randn(ring.num_nodes, 8)
    func.prepare(x0, graph)
    values = func.values if func.values is not None else func.attention(x, graph)
    expected = torch.sigmoid(torch.tensor(0.7)) * (dense(graph, values) @ x - x) + 0.4 * x0
    torch.testing.assert_close(func(torch.tensor(0.0), x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("detach", [True, False])
def test_detach_source_stops_the_gradient_through_x0_in_the_source_only(ring, detach):
    """The original code stores X(0) for beta X(0) as x0.clone().detach(): with detach_source the source
    passes no gradient to X(0) (the encoder), but beta still learns and X(0) stays the initial value."""
    from grand_bench.models.grand import GrandDiffusion

    cfg = grand_cfg(diffusivity="laplacian", add_source=True, detach_source=detach)
    func = GrandDiffusion(8, cfg)
    with torch.no_grad():
        func.beta_train.fill_(0.5)
    x0 = torch.randn(ring.num_nodes, 8, requires_grad=True)
    func.prepare(x0, diffusion_graph(ring, cfg))
    x = torch.randn(ring.num_nodes, 8)  # a state that does not depend on x0: only the source can
    grad_x0, grad_beta = torch.autograd.grad(func(torch.tensor(0.0), x).sum(), (x0, func.beta_train), allow_unused=True)
    assert (grad_x0 is None) == detach
    if not detach:
        torch.testing.assert_close(grad_x0, torch.full_like(x0, 0.5))
    torch.testing.assert_close(grad_beta, x0.detach().sum())


@pytest.mark.parametrize("kind", ATTENTION_TYPES)
@pytest.mark.parametrize("normaliser", ["softmax", "squareplus"])
@pytest.mark.parametrize("norm", ["row", "column"])
def test_attention_rows_sum_to_one(ring, kind, normaliser, norm):
    graph = diffusion_graph(ring, grand_cfg())
    cfg = AttentionCfg(type=kind, heads=2, dim=8, norm=norm, normaliser=normaliser, init_constant=None)
    attention = EdgeAttention(8, cfg)
    a = dense(graph, attention(torch.randn(ring.num_nodes, 8), graph))
    sums = a.sum(1) if norm == "row" else a.sum(0)
    torch.testing.assert_close(sums, torch.ones(ring.num_nodes))
    assert (a >= 0).all()
    per_head = attention.per_head(torch.randn(ring.num_nodes, 8), graph)
    assert per_head.shape == (graph.num_edges, 2)


def test_constant_initialisation_starts_near_uniform_averaging(ring):
    graph = diffusion_graph(ring, grand_cfg())
    attention = EdgeAttention(8, AttentionCfg(heads=2, dim=8))
    a = attention(torch.randn(ring.num_nodes, 8) * 3, graph)
    degree = torch.bincount(graph.dst, minlength=ring.num_nodes).float()
    torch.testing.assert_close(a, 1.0 / degree[graph.dst], atol=1e-3, rtol=0)


def test_self_loops_follow_self_loop_weight(ring):
    with_loops = diffusion_graph(ring, grand_cfg(self_loop_weight=2.0))
    without = diffusion_graph(ring, grand_cfg(self_loop_weight=0.0))
    assert with_loops.num_edges == without.num_edges + ring.num_nodes
    loops = with_loops.src == with_loops.dst
    assert torch.all(with_loops.edge_weight[loops] == 2.0)
    assert not (without.src == without.dst).any()


def count_attention_calls(model) -> list[int]:
    calls = [0]
    attention = model.ode.func.attention
    original = attention.forward

    def counted(*args):
        calls[0] += 1
        return original(*args)

    attention.forward = counted
    return calls


@pytest.mark.parametrize(("diffusivity", "expected"), [("fixed_attention", 1), ("attention", 5)])
def test_grand_l_fixes_attention_grand_nl_recomputes(ring, diffusivity, expected):
    cfg = grand_cfg(diffusivity=diffusivity)
    model = build_grand(cfg, SolverCfg(method="euler", step_size=0.2), ring)
    calls = count_attention_calls(model)
    model(ring.x, diffusion_graph(ring, cfg))
    assert model.nfe == 5 and calls[0] == expected


def test_edge_sampling_thins_edges_in_training_only(ring):
    cfg = grand_cfg(diffusivity="attention", edge_sampling=0.5, attention={"init_constant": None})
    graph = diffusion_graph(ring, cfg)
    model = build_grand(cfg, SolverCfg(method="euler", step_size=0.5), ring)
    model.train()
    model(ring.x, graph)
    kept = model.ode.func.graph.num_edges
    assert 0.4 * graph.num_edges <= kept <= 0.6 * graph.num_edges
    model.eval()
    model(ring.x, graph)
    assert model.ode.func.graph.num_edges == graph.num_edges


@pytest.mark.parametrize(("frozen", "kept"), [(False, 1.0), (True, 0.0)])
def test_edge_sampling_ties_dropped_only_with_the_original_frozen_attention(ring, frozen, kept):
    """Zero W_Q, W_K on a cycle: every node's three edges (self-loop included) get exactly 1/3, all tied with the
    quantile. The original's hard-attention block keeps edges strictly above it (none); a trained attention keeps
    the ties (all)."""
    n = ring.num_nodes
    cycle = Data(
        x=ring.x, y=ring.y, edge_index=to_undirected(torch.stack([torch.arange(n), (torch.arange(n) + 1) % n]))
    )
    cfg = grand_cfg(edge_sampling=0.5, attention={"init_constant": 0.0, "frozen": frozen})
    graph = diffusion_graph(cycle, cfg)
    model = build_grand(cfg, SolverCfg(method="euler", step_size=0.5), ring)
    model.train()
    model(cycle.x, graph)
    assert model.ode.func.graph.num_edges == kept * graph.num_edges


@pytest.mark.parametrize("frozen", [False, True])
def test_frozen_attention_gets_no_gradient_and_keeps_its_initial_weights(ring, frozen):
    """GRAND's hard-attention block (GRAND-l with edge sampling) builds its attention under no_grad: a frozen
    attention neither trains nor passes gradient to X(0); the rest of the model still trains."""
    cfg = grand_cfg(edge_sampling=0.6, attention={"frozen": frozen})
    graph = diffusion_graph(ring, cfg)
    model = build_grand(cfg, SolverCfg(method="euler", step_size=0.5), ring)
    attention = model.ode.func.attention
    initial = [p.detach().clone() for p in attention.parameters()]
    optimiser = torch.optim.Adam(model.parameters(), lr=0.1)
    model.train()
    for _ in range(2):
        optimiser.zero_grad()
        model(ring.x, graph).square().sum().backward()
        optimiser.step()
    moved = [not torch.equal(p, p0) for p, p0 in zip(attention.parameters(), initial, strict=True)]
    assert any(moved) != frozen
    assert model.ode.func.alpha_train.grad is not None
    x0 = torch.randn(ring.num_nodes, 8, requires_grad=True)
    assert attention(x0, graph).requires_grad != frozen


def test_laplacian_diffusion_is_a_contraction(ring):
    """Row-stochastic diffusion without source: max |x| never grows and X(t) tends to consensus."""
    cfg = grand_cfg(diffusivity="laplacian", time=30.0)
    model = build_grand(cfg, SolverCfg(method="rk4", step_size=0.5), ring)
    x0 = torch.randn(ring.num_nodes, 8)
    states = model.ode(x0, diffusion_graph(ring, cfg), torch.linspace(0, 30, 7))
    peaks = states.abs().amax(dim=(1, 2))
    assert torch.all(peaks[1:] <= peaks[:-1] + 1e-5)
    assert states[-1].std(0).max() < 0.1 * x0.std(0).max()


@pytest.mark.parametrize("diffusivity", ["fixed_attention", "attention"])
def test_learned_diffusion_obeys_the_maximum_principle(ring, diffusivity):
    """GRAND eq. 3 with a row-stochastic A(X) and no source: per channel, max_i x_i(t) never rises and
    min_i x_i(t) never falls (an explicit Euler step with h sigma(alpha) <= 1 is a convex combination)."""
    torch.manual_seed(0)
    cfg = grand_cfg(diffusivity=diffusivity, time=8.0, attention={"init_constant": None})
    step = 0.5
    model = build_grand(cfg, SolverCfg(method="euler", step_size=step), ring)
    with torch.no_grad():
        model.ode.func.alpha_train.fill_(2.0)  # sigma(2) = 0.88: h sigma < 1, and fast enough to mix
        x0 = torch.randn(ring.num_nodes, 8)
        states = model.ode(x0, diffusion_graph(ring, cfg), torch.arange(0.0, 8.0 + 1e-9, step))
    highs, lows = states.amax(dim=1), states.amin(dim=1)  # [time, channel]
    assert torch.all(highs[1:] <= highs[:-1] + 1e-6) and torch.all(lows[1:] >= lows[:-1] - 1e-6)
    assert torch.all(highs[-1] - lows[-1] < 0.9 * (highs[0] - lows[0]))  # it does diffuse


def test_permutation_equivariance(ring):
    cfg = grand_cfg(diffusivity="attention", attention={"init_constant": None})
    torch.manual_seed(0)
    model = build_grand(cfg, SolverCfg(method="rk4", step_size=0.25), ring).eval()
    perm = torch.randperm(ring.num_nodes)
    inverse = torch.argsort(perm)
    permuted = ring.clone()
    permuted.x, permuted.y = ring.x[perm], ring.y[perm]
    permuted.edge_index = inverse[ring.edge_index]
    model_p = build_grand(cfg, SolverCfg(method="rk4", step_size=0.25), permuted)
    model_p.load_state_dict(model.state_dict())
    out_p = model_p.eval()(permuted.x, diffusion_graph(permuted, cfg))
    torch.testing.assert_close(out_p, model(ring.x, diffusion_graph(ring, cfg))[perm], atol=1e-5, rtol=1e-4)


def test_edge_dot_matches_gathered_dot_products_and_gradients(ring):
    graph = SparseGraph(ring.edge_index, ring.num_nodes)
    q = torch.randn(ring.num_nodes, 2, 3, dtype=torch.double, requires_grad=True)
    k = torch.randn(ring.num_nodes, 2, 3, dtype=torch.double, requires_grad=True)
    torch.testing.assert_close(graph.edge_dot(q, k), (q[graph.dst] * k[graph.src]).sum(-1))
    assert torch.autograd.gradcheck(lambda a, b: graph.edge_dot(a, b), (q, k))


def test_input_dropout_on_sparse_features_draws_dense_dropouts_distribution():
    from grand_bench.models.base import InputDropout, SparseInputEncoder

    torch.manual_seed(0)
    x = (torch.rand(400, 300) < 0.02).float() * torch.rand(400, 300)  # 2% non-zero, like bag-of-words
    drop = InputDropout(0.5).train()
    out = drop(x)
    assert drop.csr(x) is not None  # the sparse path ran
    kept = out != 0
    assert not bool((kept & (x == 0)).any())  # a zero stays zero
    assert torch.allclose(out[kept], 2.0 * x[kept])  # kept entries scaled by 1 / (1 - p)
    assert abs(kept.sum().item() / (x != 0).sum().item() - 0.5) < 0.05
    assert torch.equal(drop.eval()(x), x)
    dense = torch.rand(50, 20)  # mostly non-zero: plain dropout
    assert drop.csr(dense) is None
    grad_x = x.clone().requires_grad_()
    InputDropout(0.5).train()(grad_x).sum().backward()  # an input that needs gradients gets them
    assert grad_x.grad is not None
    encoder = SparseInputEncoder(300, 8, 0.5).eval()
    assert torch.allclose(encoder(x), encoder.linear(x), atol=1e-5)
