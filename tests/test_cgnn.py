"""CGNN (models/cgnn.py): the right-hand side is its equation, and the linear ODE has the solution it should."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from grand_bench.config import CgnnModelCfg, SolverCfg
from grand_bench.models.cgnn import CgnnDiffusion, build_cgnn, cgnn_graph


def cgnn_cfg(**kw):
    return OmegaConf.merge(OmegaConf.structured(CgnnModelCfg), {"name": "cgnn", **kw})


def dense_a_hat(data, weight: float) -> torch.Tensor:
    """D^-1/2 (A + w I) D^-1/2 built densely from the edge list."""
    n = data.num_nodes
    a = torch.zeros(n, n, dtype=torch.double)
    a[data.edge_index[1], data.edge_index[0]] = 1.0
    a += weight * torch.eye(n, dtype=torch.double)
    d = a.sum(1).rsqrt()
    return d[:, None] * a * d[None, :]


def test_rhs_is_per_node_speed_times_diffusion_plus_the_detached_source(ring):
    cfg = cgnn_cfg(self_loop_weight=0.555)
    func = CgnnDiffusion(ring.num_nodes, cfg).double()
    with torch.no_grad():
        func.alpha_train.copy_(torch.randn(ring.num_nodes, 1, dtype=torch.double))
    x0 = torch.randn(ring.num_nodes, 4, dtype=torch.double, requires_grad=True)
    x = torch.randn(ring.num_nodes, 4, dtype=torch.double)
    func.prepare(x0, cgnn_graph(ring, cfg))
    func.values = func.values.double()
    speed = torch.sigmoid(func.alpha_train.detach()) / 2
    expected = speed * (dense_a_hat(ring, 0.555) @ x - x) + x0.detach()
    out = func(torch.tensor(0.0), x)
    torch.testing.assert_close(out, expected)
    assert not out.requires_grad or torch.autograd.grad(out.sum(), x0, allow_unused=True)[0] is None


def test_solve_matches_the_closed_form_of_the_linear_ode(ring):
    """With every a_i equal, dX/dt = M X + X0 with M = s (A_hat - I) (M is singular: A_hat has eigenvalue 1), so
    X(T) is read off the matrix exponential of the augmented system d[X, C]/dt = [[M, I], [0, 0]] [X, C], C = X0."""
    torch.set_default_dtype(torch.double)
    try:
        cfg = cgnn_cfg(hidden_dim=3, time=2.0, input_dropout=0.0, alpha_init=0.3)
        model = build_cgnn(cfg, SolverCfg(rtol=1e-10, atol=1e-12), ring)
        graph = cgnn_graph(ring, cfg)
        x0 = torch.randn(ring.num_nodes, 3)
        solved = model.ode(x0, graph)
        n = ring.num_nodes
        m = torch.sigmoid(torch.tensor(0.3)) / 2 * (dense_a_hat(ring, cfg.self_loop_weight) - torch.eye(n))
        block = torch.zeros(2 * n, 2 * n)
        block[:n, :n], block[:n, n:] = m, torch.eye(n)
        expected = (torch.linalg.matrix_exp(block * cfg.time) @ torch.cat([x0, x0]))[:n]
        torch.testing.assert_close(solved, expected, rtol=1e-6, atol=1e-7)
    finally:
        torch.set_default_dtype(torch.float32)
