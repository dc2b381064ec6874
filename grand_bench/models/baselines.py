"""Discrete message-passing baselines from PyG layers: one stack, a registry of layers.

With L = ``num_layers`` and l = 1..L (``encoder: false``, the Kipf & Welling / GAT layout):

    h^(0) = x,   h^(l) = act(BN(layer_l(dropout(h^(l-1)), graph))) [+ h^(l-1) if residual],   logits = layer_L(...)

The first layer maps the input features to ``hidden_dim`` and the last one to the classes (no
activation). A layer that comes with its own classifier (``sage_sampled``, as graphsage-simple) maps to
``hidden_dim`` in all L layers, each with the activation, and a Linear decoder gives the logits.
With ``encoder: true`` (and always for GCNII) a Linear encoder x0 = act(Linear(dropout(x)))
comes first, all L layers map hidden -> hidden, and a Linear decoder gives the logits. APPNP
propagates the stack's output, Z = APPNP_K(H) (Klicpera et al. 2019, eq. 3).

Layers (``layer``), each one PyG class (``sage_pool``, ``sage_mean`` and ``monet_tied`` our own, after Shchur et al.):
    mlp       Linear (no graph)                           h' = W h
    gcn       GCNConv (Kipf & Welling 2017, eq. 2)        h' = D^-1/2 (A + I) D^-1/2 h W  [+ h W_self: ``self_weight``]
    gat       GATConv (Velickovic et al. 2018, eq. 5)     h'_i = ||_k sum_j a^k_ij W^k h_j (``value_dropout``)
    sage      SAGEConv (Hamilton et al. 2017, Alg. 1)     h'_i = W1 h_i + W2 aggr_j h_j (``project``: pool)
    sage_pool ShchurSAGEConv (Hamilton et al. 2017, eq. 3)  GraphSAGE-maxpool as Shchur et al. ran it (``pool_dim``)
    sage_mean ShchurSAGEConv (Hamilton et al. 2017, Alg. 1)  GraphSAGE-mean as Shchur et al. ran it
    sage_sampled SampledSAGEConv (Hamilton et al. 2017, Alg. 2)  GraphSAGE-mean on sampled neighbours (``num_samples``)
    gin       GINConv (Xu et al. 2019, eq. 4.1)           h'_i = MLP((1 + eps) h_i + sum_j h_j)
    gatedgcn  ResGatedGraphConv (Bresson & Laurent 2017)  h'_i = W1 h_i + sum_j sigma(W3 h_i + W4 h_j) * W2 h_j
    monet     GMMConv (Monti et al. 2017, eq. 11)         Gaussian kernels of pseudo-coordinates u_ij
    monet_tied TiedMoNetConv (Monti et al. 2017, eq. 11)  MoNet as Shchur et al. ran it: kernels tied across layers
    cheb      ChebConv (Defferrard et al. 2016, eq. 4)    h' = sum_{k<K} T_k(L~) h W_k
    gcnii     GCN2Conv (Chen et al. 2020, eq. 5)          h' = ((1-a) P h + a x0)((1-b_l) I + b_l W)
              ``shared_weights: false``: GCNII* (their §5)  h' = (1-b_l)((1-a) P h + a x0) + b_l((1-a) P h W1 + a x0 W2)
    appnp     Linear layers, then APPNP propagation       Z^(k+1) = (1-a) P Z^(k) + a H

MoNet's pseudo-coordinates follow the benchmarking-GNNs setup (Dwivedi et al. 2020):
u_ij = (1/sqrt(deg_i + 1), 1/sqrt(deg_j + 1)) from in-degrees, then a learned tanh(Linear) per layer.
``monet_tied`` is Shchur et al.'s MoNet (TiedGaussianKernels): one coordinate transform and one set of
Gaussian kernels for the whole stack, normalised over each node's neighbourhood, self-loops included.
DropEdge (Rong et al. 2020) resamples the kept edges once per training forward pass and shares them
across layers; GCN-normalised weights are recomputed on the kept edges, as in the paper.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import (
    APPNP,
    ChebConv,
    GATConv,
    GCN2Conv,
    GINConv,
    GMMConv,
    ResGatedGraphConv,
    SAGEConv,
)
from torch_geometric.utils import add_remaining_self_loops, degree, dropout_edge, scatter

from ..config import BaselineModelCfg, SolverCfg
from ..errors import unknown_choice
from .base import InputDropout
from .edge_graph import EdgeGraph, FixedGCNConv, MeanSAGEConv

# PyG builds the CSR matrix without invariant checks (the indices come from a valid edge_index) and torch
# warns about it once per process.
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "elu": nn.ELU}
AGGRS = ("mean", "max", "sum")


def pseudo_coordinates(graph: EdgeGraph) -> Tensor:
    """MoNet pseudo-coordinates per edge j -> i: (1/sqrt(deg_j + 1), 1/sqrt(deg_i + 1)), in-degrees, cached."""

    def build() -> Tensor:
        src, dst = graph.edge_index
        scale = (degree(dst, graph.num_nodes, dtype=torch.float) + 1).rsqrt()
        return torch.stack([scale[src], scale[dst]], dim=-1)

    return graph.cached("monet_pseudo", build)


def baseline_graph(data: Data, cfg: BaselineModelCfg | None = None) -> EdgeGraph:
    """The family's graph builder: the data graph (or mini-batch) as it is; each PyG layer adds its self-loops."""
    return EdgeGraph.from_data(data)


@dataclass
class Edges:
    """The edges one forward pass uses (after DropEdge), and what the layers derive from them.

    ``weight`` and ``adj``: the layer's propagation matrix (``LayerSpec.norm``) on ``index`` (with the
    self-loops it adds), as COO weights and as CSR; ``adj_t``: its transpose, built on first call;
    ``pseudo``: MoNet's pseudo-coordinates of ``index``; ``kernels``: the tied MoNet kernel weights
    w_k(i, j) of ``index`` (self-loops included), [edges, kernels].
    """

    index: Tensor
    weight: Tensor | None = None
    adj: Tensor | None = None
    adj_t: Callable[[], Tensor] | None = None
    pseudo: Tensor | None = None
    kernels: Tensor | None = None


class MoNetLayer(nn.Module):
    """GMMConv on learned pseudo-coordinates tanh(Linear(u_ij)) (benchmarking-GNNs' MoNet layer)."""

    def __init__(self, in_dim: int, out_dim: int, cfg: BaselineModelCfg) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(2, cfg.pseudo_dim), nn.Tanh())
        self.conv = GMMConv(in_dim, out_dim, dim=cfg.pseudo_dim, kernel_size=cfg.kernels, aggr=cfg.aggr)

    def forward(self, h: Tensor, edge_index: Tensor, pseudo: Tensor) -> Tensor:
        return self.conv(h, edge_index, self.project(pseudo))


class TiedGaussianKernels(nn.Module):
    """MoNet's kernel weights as Shchur et al. (and Monti et al.'s reference code) compute them, one set for
    every layer (Monti et al. 2017, eq. 11; gnn-benchmark models/monet.py):

        v_ij = tanh(W u_ij + b),   g_k(i, j) = exp(-1/2 sum_d (v_ijd - mu_kd)^2 / sigma_kd^2),
        w_k(i, j) = g_k(i, j) / sum_{j' in N(i) + {i}} g_k(i, j')

    u_ij = (1/sqrt(d_i), 1/sqrt(d_j)) on the edges j -> i plus a self-loop per node, d counting the
    self-loop. W (2 x ``dim``) is Glorot-initialised and b zero; the means start evenly spaced in (-1, 1)
    (-1/2 and 1/2 for two kernels), the widths at 1. Their code puts no weight decay on any of these.
    """

    def __init__(self, kernels: int, dim: int) -> None:
        super().__init__()
        self.weight_decay_exempt = True
        self.project = nn.Linear(2, dim)
        nn.init.xavier_uniform_(self.project.weight)
        nn.init.zeros_(self.project.bias)
        means = torch.arange(kernels, dtype=torch.float) * (2.0 / kernels) - 1.0 + 1.0 / kernels
        self.mu = nn.Parameter(means[:, None].repeat(1, dim))
        self.sigma = nn.Parameter(torch.ones(kernels, dim))

    @staticmethod
    def looped_edges(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
        """The edges with one self-loop per node, and their pseudo-coordinates (target, source)."""
        index = add_remaining_self_loops(edge_index, num_nodes=num_nodes)[0]
        src, dst = index
        scale = degree(dst, num_nodes, dtype=torch.float).rsqrt()
        return index, torch.stack([scale[dst], scale[src]], dim=-1)

    def forward(self, pseudo: Tensor, dst: Tensor, num_nodes: int) -> Tensor:
        v = torch.tanh(self.project(pseudo))
        g = torch.exp(-0.5 * ((v[:, None, :] - self.mu) ** 2 / (1e-14 + self.sigma**2)).sum(-1))
        return g / (scatter(g, dst, dim=0, dim_size=num_nodes, reduce="sum")[dst] + 1e-14)


class TiedMoNetConv(nn.Module):
    """One MoNet layer on tied kernel weights: h'_i = sum_k sum_{j in N(i) + {i}} w_k(i, j) Theta_k h_j, one
    Glorot-initialised ``in x out`` filter Theta_k per kernel and no bias (Shchur et al.'s gmm_layer)."""

    def __init__(self, in_dim: int, out_dim: int, kernels: int) -> None:
        super().__init__()
        self.out_dim, self.kernels = out_dim, kernels
        self.lin = nn.Linear(in_dim, kernels * out_dim, bias=False)
        bound = (6.0 / (in_dim + out_dim)) ** 0.5  # Glorot for each in x out filter, not the stacked matrix
        nn.init.uniform_(self.lin.weight, -bound, bound)

    def forward(self, h: Tensor, edge_index: Tensor, kernels: Tensor) -> Tensor:
        src, dst = edge_index
        filtered = self.lin(h).view(-1, self.kernels, self.out_dim)
        messages = (kernels[:, :, None] * filtered[src]).sum(dim=1)
        return scatter(messages, dst, dim=0, dim_size=h.size(0), reduce="sum")


# A layer's constructor: (in_dim, out_dim, cfg, position l (1-based), is the output layer) -> module.
Make = Callable[[int, int, BaselineModelCfg, int, bool], nn.Module]
# How a layer is called: (module, h, x0, edges) -> new h.
Call = Callable[[nn.Module, Tensor, Tensor, Edges], Tensor]


class SelfWeightGCNConv(FixedGCNConv):
    """DropEdge's GCN layer with self feature modelling (Rong et al. 2020; ``withloop`` in their code's
    GraphConvolutionBS): h' = Abar h W + h W_self + b. The separate weight on a node's own features lets a deep
    stack keep them apart from the ever smoother neighbourhood average."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__(in_dim, out_dim)
        self.lin_self = nn.Linear(in_dim, out_dim, bias=False)

    def forward(self, x: Tensor, adj: Tensor, adj_t: Callable[[], Tensor]) -> Tensor:
        return super().forward(x, adj, adj_t) + self.lin_self(x)


def _gcn(i: int, o: int, cfg: BaselineModelCfg, l: int, last: bool) -> nn.Module:
    return SelfWeightGCNConv(i, o) if cfg.self_weight else FixedGCNConv(i, o)


def _node_only(layer: nn.Module, h: Tensor, x0: Tensor, e: Edges) -> Tensor:
    return layer(h)


def _edges(layer: nn.Module, h: Tensor, x0: Tensor, e: Edges) -> Tensor:
    return layer(h, e.index)


def _matrix(layer: nn.Module, h: Tensor, x0: Tensor, e: Edges) -> Tensor:
    return layer(h, e.adj, e.adj_t)


def _sage(i: int, o: int, cfg: BaselineModelCfg, l: int, last: bool) -> nn.Module:
    if cfg.aggr == "mean":  # one product with D_in^-1 A instead of gathering h over every edge
        return MeanSAGEConv(i, o, project=cfg.project)
    return SAGEConv(i, o, aggr=cfg.aggr, project=cfg.project)


def _sage_call(layer: nn.Module, h: Tensor, x0: Tensor, e: Edges) -> Tensor:
    return _matrix(layer, h, x0, e) if isinstance(layer, MeanSAGEConv) else _edges(layer, h, x0, e)


class ShchurSAGEConv(nn.Module):
    """GraphSAGE as Shchur et al. run it (Hamilton et al. 2017, Alg. 1 line 5 and eq. 3; gnn-benchmark
    models/graphsage.py, whose GraphSAGE-mean and -maxpool numbers the GRAND and GraphCON tables print):

        z_i = W_self h_i + W_neigh AGG_{j in N(i) + {i}} a_j + b,   h'_i = z_i / max(|z_i|, 1)

    ``pool_dim=None`` (their GraphSAGE-mean): a_j = h_j and AGG the mean. ``pool_dim`` (their GraphSAGE-maxpool):
    a_j = ReLU(W_pool h_j), a ``pool_dim``-wide transform with no bias and no weight decay, and AGG the max.
    Both aggregate over the node itself too; every weight is Glorot-initialised. PyG's SAGEConv aggregates the
    neighbours alone (through an in x in Linear with a bias for project=True) and does not normalise.
    """

    def __init__(self, in_dim: int, out_dim: int, pool_dim: int | None) -> None:
        super().__init__()
        self.pool = None if pool_dim is None else nn.Linear(in_dim, pool_dim, bias=False)
        if self.pool is not None:
            self.pool.weight_decay_exempt = True  # training/optim.py: their L2 term leaves it out
        self.lin_neigh = nn.Linear(in_dim if pool_dim is None else pool_dim, out_dim, bias=False)
        self.lin_self = nn.Linear(in_dim, out_dim)
        for lin in (self.pool, self.lin_neigh, self.lin_self):
            if lin is not None:
                nn.init.xavier_uniform_(lin.weight)
        nn.init.zeros_(self.lin_self.bias)

    def forward(self, h: Tensor, edge_index: Tensor) -> Tensor:
        messages = h if self.pool is None else self.pool(h).relu()
        src, dst = add_remaining_self_loops(edge_index, num_nodes=h.size(0))[0]
        reduce = "mean" if self.pool is None else "max"
        neighbours = scatter(messages[src], dst, dim=0, dim_size=h.size(0), reduce=reduce)
        z = self.lin_self(h) + self.lin_neigh(neighbours)
        return z / z.norm(dim=-1, keepdim=True).clamp(min=1.0)


def sample_neighbours(edge_index: Tensor, num_nodes: int, k: int) -> Tensor:
    """The edges j -> i of at most ``k`` neighbours j per node i, drawn uniformly without replacement (every
    neighbour of a node with fewer): GraphSAGE's fixed-size neighbourhood sample (Hamilton et al. 2017, §3.1).

    A random order of the edges, stably sorted by target, ranks each node's edges at random; the first ``k``
    ranks are kept."""
    shuffled = torch.randperm(edge_index.size(1), device=edge_index.device)
    by_target = shuffled[torch.argsort(edge_index[1, shuffled], stable=True)]
    target = edge_index[1, by_target]
    counts = degree(target, num_nodes, dtype=torch.long)
    first = torch.cumsum(counts, 0) - counts
    rank = torch.arange(target.numel(), device=target.device) - first[target]
    return edge_index[:, by_target[rank < k]]


class SampledSAGEConv(nn.Module):
    """GraphSAGE-mean on sampled neighbourhoods as graphsage-simple runs it (Hamilton et al. 2017, Alg. 2 with
    the mean aggregator; Hamilton's graphsage-simple Encoder and MeanAggregator, the code H2GCN ran its
    GraphSAGE baseline with, whose numbers GRAFF Table 1 and GraphCON Table 2 print):

        h'_i = W [h_i || mean_{j in S(i)} h_j],   S(i): ``num_samples`` neighbours drawn afresh at every call

    One Glorot-initialised weight over the concatenation and no bias; the stack applies the ReLU. The sample is
    drawn in evaluation too, as in graphsage-simple. The mean is linear, so W's neighbour half is applied before
    the gather (a [sampled edges, out] gather instead of [sampled edges, in]).
    """

    def __init__(self, in_dim: int, out_dim: int, num_samples: int) -> None:
        super().__init__()
        self.in_dim, self.num_samples = in_dim, num_samples
        self.lin = nn.Linear(2 * in_dim, out_dim, bias=False)
        nn.init.xavier_uniform_(self.lin.weight)

    def forward(self, h: Tensor, edge_index: Tensor) -> Tensor:
        w_self, w_neigh = self.lin.weight[:, : self.in_dim], self.lin.weight[:, self.in_dim :]
        src, dst = sample_neighbours(edge_index, h.size(0), self.num_samples)
        neighbours = scatter(h.matmul(w_neigh.T)[src], dst, dim=0, dim_size=h.size(0), reduce="mean")
        return h.matmul(w_self.T) + neighbours


def _pseudo(layer: nn.Module, h: Tensor, x0: Tensor, e: Edges) -> Tensor:
    return layer(h, e.index, e.pseudo)


def _tied(layer: nn.Module, h: Tensor, x0: Tensor, e: Edges) -> Tensor:
    return layer(h, e.index, e.kernels)


def _initial(layer: nn.Module, h: Tensor, x0: Tensor, e: Edges) -> Tensor:
    return layer(h, x0, e.adj)


class ValueDropoutGATConv(GATConv):
    """GATConv that also drops the transformed features W h_j before the attention averages them (after the
    attention logits are computed from them), as Velickovic et al.'s and Shchur et al.'s code do."""

    def __init__(self, *args, value_dropout: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.value_dropout = value_dropout

    def propagate(
        self, edge_index: Tensor, x: tuple[Tensor, Tensor | None], alpha: Tensor, size=None, **kwargs
    ) -> Tensor:
        if self.value_dropout and self.training:  # x = (source, target) transformed features
            x = (nn.functional.dropout(x[0], self.value_dropout, training=True), x[1])
        return super().propagate(edge_index, x=x, alpha=alpha, size=size, **kwargs)


def _gat(i: int, o: int, cfg: BaselineModelCfg, l: int, last: bool) -> nn.Module:
    drops = {"dropout": cfg.attn_dropout, "value_dropout": cfg.value_dropout}
    if last:  # output layer: averaged heads (Velickovic et al. use 1 on Cora/CiteSeer, 8 on PubMed)
        return ValueDropoutGATConv(i, o, heads=cfg.out_heads, concat=False, **drops)
    return ValueDropoutGATConv(i, o // cfg.heads, heads=cfg.heads, **drops)


def _gin(i: int, o: int, cfg: BaselineModelCfg, l: int, last: bool) -> nn.Module:
    return GINConv(nn.Sequential(nn.Linear(i, o), nn.ReLU(), nn.Linear(o, o)), train_eps=cfg.train_eps)


@dataclass(frozen=True)
class LayerSpec:
    make: Make
    call: Call
    # the propagation matrix the layer is called with (edge_graph.NORMALISATIONS: "gcn" D^-1/2 (A + I) D^-1/2,
    # "mean" D_in^-1 A), built once per graph (per forward pass with DropEdge); or a function of the config
    norm: str | None | Callable[[BaselineModelCfg], str | None] = None
    pseudo: bool = False  # needs MoNet pseudo-coordinates
    tied_kernels: bool = False  # needs the stack's TiedGaussianKernels
    encoder: bool = False  # always wrapped in a Linear encoder / decoder (layers are hidden -> hidden)
    decoder: bool = False  # always followed by a Linear decoder (layers are in -> hidden -> hidden)
    propagate: bool = False  # APPNP propagation of the stack's output


LAYERS: dict[str, LayerSpec] = {
    "mlp": LayerSpec(lambda i, o, cfg, l, last: nn.Linear(i, o), _node_only),
    "gcn": LayerSpec(_gcn, _matrix, norm="gcn"),
    "gat": LayerSpec(_gat, _edges),
    "sage": LayerSpec(_sage, _sage_call, norm=lambda cfg: "mean" if cfg.aggr == "mean" else None),
    "sage_pool": LayerSpec(lambda i, o, cfg, l, last: ShchurSAGEConv(i, o, cfg.pool_dim), _edges),
    "sage_mean": LayerSpec(lambda i, o, cfg, l, last: ShchurSAGEConv(i, o, None), _edges),
    "sage_sampled": LayerSpec(lambda i, o, cfg, l, last: SampledSAGEConv(i, o, cfg.num_samples), _edges, decoder=True),
    "gin": LayerSpec(_gin, _edges),
    "gatedgcn": LayerSpec(lambda i, o, cfg, l, last: ResGatedGraphConv(i, o), _edges),
    "monet": LayerSpec(lambda i, o, cfg, l, last: MoNetLayer(i, o, cfg), _pseudo, pseudo=True),
    "monet_tied": LayerSpec(lambda i, o, cfg, l, last: TiedMoNetConv(i, o, cfg.kernels), _tied, tied_kernels=True),
    "cheb": LayerSpec(lambda i, o, cfg, l, last: ChebConv(i, o, K=cfg.K), _edges),
    "gcnii": LayerSpec(
        lambda i, o, cfg, l, last: GCN2Conv(
            i, alpha=cfg.alpha, theta=cfg.theta, layer=l, shared_weights=cfg.shared_weights, normalize=False
        ),
        _initial,
        norm="gcn",
        encoder=True,
    ),
    "appnp": LayerSpec(lambda i, o, cfg, l, last: nn.Linear(i, o), _node_only, norm="gcn", propagate=True),
}


class BaselineGNN(nn.Module):
    """A stack of ``num_layers`` PyG layers of one kind (module docstring); ``model(x, graph)`` -> [N, out]."""

    def __init__(self, in_dim: int, out_dim: int, cfg: BaselineModelCfg) -> None:
        super().__init__()
        if cfg.layer not in LAYERS:
            raise ValueError(unknown_choice("model.layer", cfg.layer, LAYERS))
        self.spec = spec = LAYERS[cfg.layer]
        self.norm = spec.norm(cfg) if callable(spec.norm) else spec.norm
        self.dropedge = cfg.dropedge
        self.dropout = nn.Dropout(cfg.dropout)
        # on the raw features (sparse-aware): `dropout` unless `input_dropout` says otherwise
        self.input_dropout = InputDropout(cfg.dropout if cfg.input_dropout is None else cfg.input_dropout)
        self.act = ACTIVATIONS[cfg.activation]()
        hidden, n = cfg.hidden_dim, cfg.num_layers
        encode = cfg.encoder or spec.encoder
        decode = encode or spec.decoder
        self.encoder = nn.Linear(in_dim, hidden) if encode else None
        self.decoder = nn.Linear(hidden, out_dim) if decode else None
        first = hidden if encode else in_dim
        dims = [first] + [hidden] * n if decode else [in_dim] + [hidden] * (n - 1) + [out_dim]
        self.layers = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.skips: list[bool] = []
        for l in range(1, n + 1):
            last = not decode and l == n  # the output layer: no norm, activation or skip
            self.layers.append(spec.make(dims[l - 1], dims[l], cfg, l, last))
            self.norms.append(nn.BatchNorm1d(dims[l]) if cfg.batch_norm and not last else nn.Identity())
            self.skips.append(cfg.residual and not last and (encode or l > 1))  # hidden -> hidden layers
        self.hidden_layers = n if decode else n - 1
        self.propagation = APPNP(cfg.K, cfg.alpha, normalize=False) if spec.propagate else None
        self.kernels = TiedGaussianKernels(cfg.kernels, cfg.pseudo_dim) if spec.tied_kernels else None

    @property
    def first_layer(self) -> nn.Module:
        """The layer that reads the input features (optim.decay_scope=first_layer decays its weights alone)."""
        return self.encoder if self.encoder is not None else self.layers[0]

    def edges(self, graph: EdgeGraph) -> Edges:
        """The edges of this forward pass: DropEdge in training, then the layer's normalisation."""
        index = graph.edge_index
        pseudo = pseudo_coordinates(graph) if self.spec.pseudo else None
        dropped = self.training and self.dropedge > 0
        if dropped:
            index, kept = dropout_edge(index, p=self.dropedge, training=True)
            pseudo = pseudo[kept] if pseudo is not None else None
        if self.kernels is not None:

            def loop() -> tuple[Tensor, Tensor]:
                return TiedGaussianKernels.looped_edges(index, graph.num_nodes)

            looped, coordinates = loop() if dropped else graph.cached("monet_tied", loop)
            return Edges(looped, kernels=self.kernels(coordinates, looped[1], graph.num_nodes))
        if self.norm is None:
            return Edges(index, pseudo=pseudo)
        # DropEdge: the kept edges as a graph of this pass alone, renormalised on them as DropEdge does
        source = EdgeGraph(index, graph.num_nodes) if dropped else graph
        return Edges(*source.normalised(self.norm), *source.propagation(self.norm))

    def forward(self, x: Tensor, graph: EdgeGraph) -> Tensor:
        needs_edges = self.spec.call is not _node_only or self.propagation is not None
        edges = self.edges(graph) if needs_edges else Edges(graph.edge_index)
        h = x
        if self.encoder is not None:
            h = self.act(self.encoder(self.input_dropout(h)))
        x0 = h
        for l, (layer, norm, skip) in enumerate(zip(self.layers, self.norms, self.skips, strict=True)):
            dropout = self.input_dropout if l == 0 and self.encoder is None else self.dropout
            out = self.spec.call(layer, dropout(h), x0, edges)
            if l < self.hidden_layers:
                out = self.act(norm(out))
            h = h + out if skip else out
        if self.decoder is not None:
            h = self.decoder(self.dropout(h))
        if self.propagation is not None:
            h = self.propagation(h, edges.adj)
        return h


def build_baseline(cfg: BaselineModelCfg, solver: SolverCfg, data: Data) -> BaselineGNN:
    """The family's model builder; ``solver`` is unused (no ODE block, so the Trainer reports NFE 0)."""
    return BaselineGNN(data.num_features, int(data.num_classes), cfg)


def check_baseline_cfg(cfg: BaselineModelCfg) -> list[str]:
    """Problems with a baseline config, as messages naming the option, the value and what is allowed."""
    problems = []
    if cfg.layer not in LAYERS:
        problems.append(unknown_choice("model.layer", cfg.layer, LAYERS))
    if cfg.activation not in ACTIVATIONS:
        problems.append(unknown_choice("model.activation", cfg.activation, ACTIVATIONS))
    if cfg.aggr not in AGGRS:
        problems.append(unknown_choice("model.aggr", cfg.aggr, AGGRS))
    counts = ("num_layers", "hidden_dim", "heads", "out_heads", "kernels", "pseudo_dim", "K", "pool_dim", "num_samples")
    for key in counts:
        if getattr(cfg, key) < 1:
            problems.append(f"model.{key} must be >= 1, got {getattr(cfg, key)}")
    for key in ("dropout", "dropedge", "attn_dropout", "input_dropout", "value_dropout"):
        if getattr(cfg, key) is not None and not 0 <= getattr(cfg, key) < 1:
            problems.append(f"model.{key} must be in [0, 1), got {getattr(cfg, key)}")
    if cfg.value_dropout and cfg.layer != "gat":
        problems.append(f"model.value_dropout is for layer=gat, not {cfg.layer!r}")
    if cfg.self_weight and cfg.layer != "gcn":
        problems.append(f"model.self_weight is for layer=gcn, not {cfg.layer!r}")
    if not cfg.shared_weights and cfg.layer != "gcnii":
        problems.append(f"model.shared_weights=false (GCNII*) is for layer=gcnii, not {cfg.layer!r}")
    if cfg.layer == "gat" and cfg.heads >= 1 and cfg.hidden_dim % cfg.heads:
        problems.append(f"model.heads={cfg.heads} must divide model.hidden_dim={cfg.hidden_dim} (gat)")
    if cfg.layer in ("gcnii", "appnp") and not 0 <= cfg.alpha <= 1:
        problems.append(f"model.alpha must be in [0, 1], got {cfg.alpha}")
    if cfg.layer == "gcnii" and not cfg.theta > 0:
        problems.append(f"model.theta must be > 0, got {cfg.theta}")
    return problems
