"""The graph handed to models built from PyG layers: ``edge_index`` plus per-graph constants, cached.

One ``EdgeGraph`` is either one graph (node tasks) or a mini-batch of graphs (PyG ``Batch``: the graphs'
disjoint union, ``batch`` maps each node to its graph), so the same model code serves both. Constants that
depend only on the graph (GCN normalisation, self-loops) are computed on first use and kept for as long as
the graph object lives: for the whole run on a node task, for one mini-batch on a graph task.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv, SAGEConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import add_remaining_self_loops, degree, to_torch_csr_tensor

from .graph import SparseGraph, product_index_dtype


class EdgeGraph:
    """``edge_index`` [2, E] on ``num_nodes`` nodes; ``batch`` [N] and ``num_graphs`` for a mini-batch."""

    def __init__(
        self, edge_index: Tensor, num_nodes: int, batch: Tensor | None = None, num_graphs: int | None = None
    ) -> None:
        self.edge_index = edge_index
        self.num_nodes = num_nodes
        self.batch = batch
        self.num_graphs = num_graphs if num_graphs is not None else (int(batch.max()) + 1 if batch is not None else 1)
        self.cache: dict[str, Any] = {}

    @classmethod
    def from_data(cls, data: Data) -> EdgeGraph:
        """From a ``Data`` (one graph) or a ``Batch`` (its ``batch`` vector and ``num_graphs`` are kept)."""
        batch = getattr(data, "batch", None)
        num_graphs = getattr(data, "num_graphs", None) if batch is not None else None
        return cls(data.edge_index, data.num_nodes, batch, num_graphs)

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()`` once per graph object."""
        if key not in self.cache:
            self.cache[key] = build()
        return self.cache[key]

    def normalised(self, kind: str) -> tuple[Tensor, Tensor]:
        """(edges, weights) of the ``kind`` of propagation matrix (``NORMALISATIONS``), computed once."""
        return self.cached(f"{kind}_norm", lambda: NORMALISATIONS[kind](self.edge_index, self.num_nodes))

    def matrix(self, kind: str) -> Tensor:
        """The ``kind`` of propagation matrix as the CSR ``adj_t`` PyG layers take (row i: weights of edges j -> i).

        One CSR product per layer is 2-3x faster on CPU than PyG's gather/scatter message passing.
        """
        return self.cached(f"{kind}_csr", lambda: propagation_matrix(*self.normalised(kind), self.num_nodes))

    def matrix_transposed(self, kind: str) -> Tensor:
        """The transpose of ``matrix(kind)`` as a CSR matrix, built once: the backward's product."""
        return self.cached(f"{kind}_csr_t", lambda: propagation_matrix(*self.normalised(kind), self.num_nodes, True))

    def propagation(self, kind: str) -> tuple[Tensor, Callable[[], Tensor]]:
        """(``matrix(kind)``, a call for its transpose): the pair ``fixed_product``'s layers take."""
        return self.matrix(kind), functools.partial(self.matrix_transposed, kind)

    def with_self_loops(self) -> Tensor:
        return self.cached("self_loops", lambda: add_remaining_self_loops(self.edge_index, num_nodes=self.num_nodes)[0])

    def sparse_with_self_loops(self) -> SparseGraph:
        """The graph plus one self-loop per node as a ``SparseGraph`` (attention over each node's edges)."""
        return self.cached("sparse_self_loops", lambda: SparseGraph(self.with_self_loops(), self.num_nodes))

    def to(self, device: torch.device | str) -> EdgeGraph:
        self.edge_index = self.edge_index.to(device)
        self.batch = self.batch.to(device) if self.batch is not None else None
        self.cache = {k: _to(v, device) for k, v in self.cache.items()}
        return self


def gcn_edges(index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """D^-1/2 (A + I) D^-1/2 as GCNConv computes it (Kipf & Welling): edges with self-loops, weights."""
    return gcn_norm(index, None, num_nodes, add_self_loops=True)


def mean_edges(index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """D_in^-1 A: weight 1 / (in-degree of j -> i's target), the mean over each node's incoming edges."""
    in_degree = degree(index[1], num_nodes, dtype=torch.float)
    return index, in_degree.reciprocal()[index[1]]


NORMALISATIONS: dict[str, Callable[[Tensor, int], tuple[Tensor, Tensor]]] = {"gcn": gcn_edges, "mean": mean_edges}


def propagation_matrix(index: Tensor, weight: Tensor, num_nodes: int, transposed: bool = False) -> Tensor:
    """Weighted edges j -> i as the CSR matrix PyG layers take for ``adj_t`` (row i: incoming weights), or its
    transpose (row j: outgoing weights), with 32-bit indices, which torch's CPU sparse kernels use without a
    conversion per product."""
    rows_cols = index if transposed else index.flip(0)
    return int32_indices(to_torch_csr_tensor(rows_cols, weight, size=(num_nodes, num_nodes)))


def fixed_product(a: Tensor, a_transposed: Callable[[], Tensor], x: Tensor, bias: Tensor | None = None) -> Tensor:
    """A x (+ bias) for a constant CSR matrix A, with A^T from ``a_transposed()`` (a cached matrix) in the
    backward. torch's own backward of a CSR product transposes A afresh at every call, which sorts all |E|
    entries: two sorts per training step took 1.7 s of GraphCON-GCN's 4.8 s on a graph of 10^7 edges."""
    if not (torch.is_grad_enabled() and (x.requires_grad or (bias is not None and bias.requires_grad))):
        return _product(a, x, bias)
    return _FixedSpMM.apply(x, bias, a, a_transposed)


def _product(a: Tensor, x: Tensor, bias: Tensor | None) -> Tensor:
    return a @ x if bias is None else torch.addmm(bias, a, x)


class _FixedSpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, bias: Tensor | None, a: Tensor, a_transposed: Callable[[], Tensor]) -> Tensor:
        ctx.a_transposed = a_transposed
        ctx.bias_shape = bias.shape if bias is not None else None  # a [d] bias is broadcast over the rows
        return _product(a, x, bias)

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad_x = ctx.a_transposed() @ grad if ctx.needs_input_grad[0] else None
        grad_bias = grad.sum_to_size(ctx.bias_shape) if ctx.needs_input_grad[1] else None
        return grad_x, grad_bias, None, None


class FixedGCNConv(GCNConv):
    """GCNConv(normalize=False) on a given normalised matrix: Abar (h W) + b, the layer's own weights and
    result without its message-passing dispatch, and with the backward's Abar^T built once per graph
    (``fixed_product``) instead of at every step. Still a PyG module, so forward hooks (the Dirichlet
    diagnostics) see its output. Used by the GCN baselines and GraphCON-GCN's coupling; tests compare it
    to GCNConv's own forward."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__(in_dim, out_dim, normalize=False)

    def forward(self, x: Tensor, adj: Tensor, adj_t: Callable[[], Tensor]) -> Tensor:
        return fixed_product(adj, adj_t, self.lin(x), self.bias)


class MeanSAGEConv(SAGEConv):
    """SAGEConv with mean aggregation (Hamilton et al. 2017, Alg. 1): h'_i = W1 h_i + W2 mean_j h_j + b, its
    own weights and result, computed as W1 h_i + D_in^-1 A (h W2^T) + b. The mean is linear, so aggregating
    after the projection is exact, and it moves width-of-input rows over the edges only once per layer
    (no [E, d_in] gather: 1.8 GB on Squirrel's 217k edges and 2,089 features); the product is
    ``fixed_product`` on ``EdgeGraph.matrix("mean")``. ``project`` (pool the ReLU-projected h) is honoured."""

    def forward(self, x: Tensor, adj: Tensor, adj_t: Callable[[], Tensor]) -> Tensor:
        neighbours = self.lin(x).relu() if self.project else x
        out = fixed_product(adj, adj_t, F.linear(neighbours, self.lin_l.weight), self.lin_l.bias)
        if self.root_weight:
            out = out + self.lin_r(x)
        return F.normalize(out, p=2.0, dim=-1) if self.normalize else out


def int32_indices(csr: Tensor) -> Tensor:
    """The same CSR matrix with 32-bit indices (unchanged if it has too many entries for them)."""
    dtype = product_index_dtype(max(csr._nnz(), *csr.shape))
    if dtype != torch.int32:
        return csr
    crow, col = csr.crow_indices().to(dtype), csr.col_indices().to(dtype)
    return torch.sparse_csr_tensor(crow, col, csr.values(), csr.shape, check_invariants=False)


def _to(value: Any, device: torch.device | str) -> Any:
    if isinstance(value, Tensor | SparseGraph):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(_to(v, device) for v in value)
    return value
