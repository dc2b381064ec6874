"""GRAND: graph neural diffusion (Chamberlain et al., ICML 2021).

dX/dt = sigma(alpha) (A(X) - I) X [+ beta X(0)]          (GRAND eq. 3 with eq. 10's attention as A)

* GRAND-l (``diffusivity: fixed_attention``): A = A(X(0)), computed once per forward pass.
* GRAND-nl (``diffusivity: attention``): A = A(X(t)), recomputed at every function evaluation.
* GRAND-nl-rw: GRAND-nl on a graph rewired by diffusion (GDC, ``rewiring.method: gdc``), where each
  training pass keeps only the ``edge_sampling`` fraction of edges with the highest attention at
  t = 0 (GRAND §4 "rewiring"; reference §2.2). Evaluation uses every rewired edge.
* ``diffusivity: laplacian``: A = the fixed random-walk adjacency (constant-diffusion baseline).

sigma(alpha) with alpha learned from 0 is the diffusion speed and beta (learned from 0) the weight of
the source term, as in the original code (reference §1.2); X(0) enters the source as a constant, without
a gradient to the encoder (``detach_source``, the original's ``set_x0``). The diffusion graph is the data graph plus
self-loops (unless ``self_loop_weight`` is 0).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.sparse import sampled_addmm
from torch_geometric.data import Data
from torch_geometric.utils import add_remaining_self_loops

from ..config import GrandModelCfg, SolverCfg
from ..solvers import GraphODEFunc, ODEBlock
from .attention import EdgeAttention
from .base import ContinuousGNN
from .graph import SparseGraph

DIFFUSIVITIES = ("fixed_attention", "attention", "laplacian")


class GrandDiffusion(GraphODEFunc):
    """f(t, X) = sigma(alpha) (A X - X) [+ beta X(0)] with A from ``diffusivity`` (module docstring).

    Per pass, what does not change during the solve is built once in ``prepare``: the source beta X(0)
    and, when A is fixed and every node has a self-loop edge, the operator sigma(alpha) (A - I) on A's
    edges, so an evaluation is a single sparse product (plus the source).
    """

    closure_names = ("source", "values", "operator")

    def __init__(self, hidden_dim: int, cfg: GrandModelCfg) -> None:
        super().__init__()
        self.diffusivity = cfg.diffusivity
        self.alpha_sigmoid = cfg.alpha_sigmoid
        self.detach_source = cfg.detach_source
        self.edge_sampling = cfg.edge_sampling
        self.norm = cfg.attention.norm
        self.alpha_train = nn.Parameter(torch.zeros(()))
        self.beta_train = nn.Parameter(torch.zeros(())) if cfg.add_source else None
        self.attention = EdgeAttention(hidden_dim, cfg.attention) if cfg.diffusivity != "laplacian" else None
        self.graph: SparseGraph | None = None
        self.values: Tensor | None = None  # A's edge values when fixed during the solve
        self.operator: Tensor | None = None  # sigma(alpha) (A - I) on A's edges, when A is fixed
        self.source: Tensor | None = None  # beta X(0)

    def prepare(self, x0: Tensor, graph: SparseGraph) -> None:
        self.graph, self.values = graph, None
        if self.beta_train is not None:
            self.source = self.beta_train * (x0.detach() if self.detach_source else x0)
        else:
            self.source = None
        if self.diffusivity == "laplacian":
            self.values = graph.cached(f"laplacian_{self.norm}", lambda: laplacian_values(graph, self.norm))
        elif self.training and self.edge_sampling < 1.0:
            attention = self.attention(x0, graph)
            threshold = torch.quantile(attention.detach(), 1.0 - self.edge_sampling)
            # The original keeps the edges strictly above it; its frozen attention (near 1 / degree) has many ties.
            # A trained attention keeps ties too, as every GRAND-nl-rw record ran (deviation kept for them).
            keep = attention > threshold if self.attention.frozen else attention >= threshold
            self.graph = graph.subgraph(keep)
            if self.diffusivity == "fixed_attention":
                self.values = self.graph.normalise(attention[keep], self.norm)
        elif self.diffusivity == "fixed_attention":
            self.values = self.attention(x0, self.graph)
        self.operator = self.diffusion_operator(self.values) if self.values is not None else None

    def diffusion_operator(self, values: Tensor) -> Tensor | None:
        """sigma(alpha) (a_ij - delta_ij) on the graph's edges, or None without one self-loop per node."""
        loops = self.graph.self_loop_indicator()
        return None if loops is None else self.speed * (values - loops.to(values.dtype))

    @property
    def speed(self) -> Tensor:
        return torch.sigmoid(self.alpha_train) if self.alpha_sigmoid else self.alpha_train

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        operator = self.operator
        if operator is None:
            values = self.values if self.values is not None else self.attention(x, self.graph)
            operator = self.diffusion_operator(values)
            if operator is None:  # no self-loop on every node: subtract X explicitly
                f = self.speed * (self.graph.matmul(values, x) - x)
                return f if self.source is None else f + self.source
        if self.source is None:
            return self.graph.matmul(operator, x)
        return self.graph.matmul_add(operator, x, self.source)

    def floor_kernels(self, x: Tensor) -> Callable[[], Tensor]:
        """One sparse product with A (plus the source); with attention recomputed, also the two
        projections, one score per edge and head, and the normalisation over each node's edges."""
        g = self.graph
        source = self.source.detach() if self.source is not None else torch.zeros_like(x)
        fixed = self.operator if self.operator is not None else self.values
        if fixed is not None:
            a = g.matrix(fixed.detach())
            return lambda: torch.addmm(source, a, x)
        att = self.attention
        wq, wk = att.query.weight.detach(), att.key.weight.detach()
        pattern = g.matrix(torch.zeros_like(g.src, dtype=x.dtype))
        heads = [slice(h * att.head_dim, (h + 1) * att.head_dim) for h in range(att.heads)]

        def kernels() -> Tensor:
            q, k = x @ wq.t(), x @ wk.t()
            scores = torch.stack([sampled_addmm(pattern, q[:, h], k[:, h].t()).values() for h in heads], -1)
            a = g.softmax(scores, self.norm).mean(-1)
            return torch.addmm(source, g.matrix(a), x)

        return kernels


def laplacian_values(graph: SparseGraph, norm: str) -> Tensor:
    """Edge weights (ones if unweighted) normalised per ``norm``: the constant diffusivity."""
    weight = graph.edge_weight
    if weight is None:
        weight = torch.ones(graph.num_edges, device=graph.src.device)
    return graph.normalise(weight, norm)


def diffusion_graph(data: Data, cfg: GrandModelCfg) -> SparseGraph:
    """The graph the diffusion runs on: the data graph (GDC-rewired for -rw) plus weighted self-loops."""
    edge_index, weight = data.edge_index, None
    if cfg.rewiring.method != "none":
        from ..data import rewire  # deferred: only -rw models pay for GDC

        edge_index, weight = rewire(edge_index, data.num_nodes, cfg.rewiring, cfg.self_loop_weight)
    elif cfg.self_loop_weight != 0:
        return with_self_loops(data, cfg.self_loop_weight)
    return SparseGraph(edge_index, data.num_nodes, weight)


def with_self_loops(data: Data, loop_weight: float) -> SparseGraph:
    """The data graph with unit edge weights plus a self-loop of weight ``loop_weight`` on every node that lacks one."""
    edge_index, weight = add_remaining_self_loops(
        data.edge_index,
        torch.ones(data.edge_index.size(1), device=data.edge_index.device),
        fill_value=loop_weight,
        num_nodes=data.num_nodes,
    )
    return SparseGraph(edge_index, data.num_nodes, weight)


def build_grand(cfg: GrandModelCfg, solver: SolverCfg, data: Data) -> ContinuousGNN:
    func = GrandDiffusion(cfg.hidden_dim, cfg)
    ode = ODEBlock(func, solver, cfg.time)
    return ContinuousGNN.from_config(cfg, data, ode, batch_norm=cfg.batch_norm, use_mlp=cfg.use_mlp)
