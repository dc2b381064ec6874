"""GraphCON: graph-coupled oscillator networks (Rusch, Chamberlain, Rowbottom, Mishra, Bronstein; ICML 2022).

    X'' = sigma(F_theta(X)) - gamma X - alpha X'                                          (GraphCON eq. 2)

written as the first-order system on the state [X, Y] (Y = X', concatenated along the channels)

    X' = Y,    Y' = sigma(F_theta(X)) - gamma X - alpha Y,

so every solver applies; ``solver=symplectic_euler`` with step dt is the paper's IMEX discretisation (eq. 3),
an N-layer GNN with weights shared over layers, T = N dt (solvers/imex.py). F_theta is one PyG layer
(``coupling``): GCNConv (GraphCON-GCN), GATConv (GraphCON-GAT; heads averaged), TransformerConv (transformer
attention, GraphCON-Tran), GINConv, ResGatedGraphConv (GatedGCN).

Residual terms of the heterophilic and graph-level code (reference §4.2, §4.4), added to F before sigma:
``linear`` + W_res X (MNIST, GAT); ``v1`` - W_res(W_conv X); ``v2`` - W_conv X + W_res X (heterophilic v2 and
ZINC: with GCN this is (Abar - I) X W_conv + W_res X, a Laplacian term plus a free skip), where W_conv is the
GCN's own weight without propagation. ``step_dropout`` drops X and Y out after the encoder and after every
step, as that code does (only the IMEX schemes run it). Graph-level set-up: decode every node, then
``readout: sum`` pools per graph of the mini-batch.

Deviations from the node-level homophilic code (a copy of GRAND's, reference §4.3): no sigma(alpha_train)
scaling of X' and no sigmoid-mixed source terms (they are not in the paper's equations); the pipeline
(input dropout, linear encoder, ReLU, dropout, decoder on X) is the same.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import GATConv, GCNConv, GINConv, ResGatedGraphConv, TransformerConv

from ..config import GraphconModelCfg, SolverCfg
from ..errors import unknown_choice
from ..solvers import GraphODEFunc, ODEBlock
from ..solvers.imex import split_state
from .base import ACTIVATIONS, READOUTS, ContinuousGNN, activation, solver_with_step
from .edge_graph import EdgeGraph

COUPLINGS = ("gcn", "gat", "transformer", "gin", "gatedgcn")
RESIDUALS = ("none", "linear", "v1", "v2")
INITIAL_VELOCITIES = ("encoding", "zero")
IMEX_SCHEMES = ("symplectic_euler", "leapfrog")


class Coupling(nn.Module):
    """F_theta(X): one PyG layer hidden -> hidden, shared by every step."""

    def __init__(self, kind: str, dim: int, heads: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "gcn":
            self.conv = GCNConv(dim, dim, normalize=False)  # the normalisation is cached on the graph
        elif kind == "gat":
            self.conv = GATConv(dim, dim, heads=heads, concat=False, add_self_loops=False)  # loops cached
        elif kind == "transformer":
            self.conv = TransformerConv(dim, dim, heads=heads, concat=False)
        elif kind == "gin":
            mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
            self.conv = GINConv(mlp, train_eps=True)
        elif kind == "gatedgcn":
            self.conv = ResGatedGraphConv(dim, dim)
        else:
            raise ValueError(unknown_choice("model.coupling", kind, COUPLINGS))

    def forward(self, x: Tensor, graph: EdgeGraph) -> Tensor:
        if self.kind == "gcn":
            return self.conv(x, graph.gcn_matrix())  # the layer's spmm path on the cached CSR matrix
        if self.kind == "gat":
            return self.conv(x, graph.with_self_loops())
        return self.conv(x, graph.edge_index)

    def weight_only(self, x: Tensor) -> Tensor:
        """X W_conv: the GCN layer's linear map without propagation (the heterophilic residuals)."""
        return self.conv.lin(x)


class OscillatorDynamics(GraphODEFunc):
    """f(t, [X, Y]) = [Y, sigma(F(X) + R(X)) - gamma X - alpha Y] (module docstring)."""

    def __init__(self, cfg: GraphconModelCfg) -> None:
        super().__init__()
        dim = cfg.hidden_dim
        self.coupling = Coupling(cfg.coupling, dim, cfg.heads)
        self.residual = cfg.residual
        self.res = nn.Linear(dim, dim) if cfg.residual in ("linear", "v1", "v2") else None
        self.sigma = activation(cfg.activation)
        self.alpha, self.gamma = cfg.alpha, cfg.gamma
        self.step_dropout = nn.Dropout(cfg.step_dropout) if cfg.step_dropout > 0 else None

    def prepare(self, x0: Tensor, graph: EdgeGraph) -> None:
        self.graph = graph

    def coupling_term(self, x: Tensor) -> Tensor:
        f = self.coupling(x, self.graph)
        if self.residual == "linear":
            f = f + self.res(x)
        elif self.residual == "v1":
            f = f - self.res(self.coupling.weight_only(x))
        elif self.residual == "v2":
            f = f - self.coupling.weight_only(x) + self.res(x)
        return f

    def acceleration(self, x: Tensor, y: Tensor) -> Tensor:
        return self.sigma(self.coupling_term(x)) - self.gamma * x - self.alpha * y

    def forward(self, t: Tensor, state: Tensor) -> Tensor:
        x, y = split_state(state)
        return torch.cat([y, self.acceleration(x, y)], -1)

    def floor_kernels(self, state: Tensor) -> Callable[[], Tensor] | None:
        """For the GCN coupling: the layer's projection and one product with the normalised adjacency."""
        if self.coupling.kind != "gcn":
            return None
        x, _ = split_state(state)
        adj, weight = self.graph.gcn_matrix(), self.coupling.conv.lin.weight.detach()
        return lambda: adj @ (x @ weight.t())

    def position_rate(self, t: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """X' = Y: read by the IMEX schemes without a message-passing evaluation."""
        return y

    def after_step(self, state: Tensor) -> Tensor:
        return self.step_dropout(state) if self.step_dropout is not None else state


class OscillatorBlock(ODEBlock):
    """Integrates [X, Y] from [X(0), Y(0)] and returns the position X (at T, or at each of ``times``)."""

    def __init__(self, func: OscillatorDynamics, cfg: SolverCfg, time: float, initial_velocity: str) -> None:
        super().__init__(func, cfg, time)
        self.initial_velocity = initial_velocity

    def initial_state(self, x0: Tensor) -> Tensor:
        """[X(0), Y(0)] with Y(0) = X(0) (``initial_velocity: encoding``) or 0."""
        y0 = x0 if self.initial_velocity == "encoding" else torch.zeros_like(x0)
        return torch.cat([x0, y0], -1)

    def forward(self, x0: Tensor, graph: EdgeGraph, times: Tensor | None = None) -> Tensor:
        return split_state(super().forward(self.initial_state(x0), graph, times))[0]


def graphcon_graph(data: Data, cfg: GraphconModelCfg) -> EdgeGraph:
    """The data graph (or mini-batch of graphs) as PyG layers take it."""
    return EdgeGraph.from_data(data)


def build_graphcon(cfg: GraphconModelCfg, solver: SolverCfg, data: Data) -> ContinuousGNN:
    solver = solver_with_step(solver, cfg.dt)
    block = OscillatorBlock(OscillatorDynamics(cfg), solver, cfg.layers * cfg.dt, cfg.initial_velocity)
    return ContinuousGNN.from_config(
        cfg,
        data,
        block,
        encoder_activation=cfg.encoder_activation,
        decoder_activation=cfg.decoder_activation,
        readout=cfg.readout,
    )


def check_graphcon_cfg(cfg: GraphconModelCfg, solver: SolverCfg) -> list[str]:
    """Problems with a GraphCON model config, each naming the option, the value and what is allowed."""
    problems = []
    choices = {
        "coupling": COUPLINGS,
        "residual": RESIDUALS,
        "activation": tuple(ACTIVATIONS),
        "encoder_activation": tuple(ACTIVATIONS),
        "decoder_activation": tuple(ACTIVATIONS),
        "initial_velocity": INITIAL_VELOCITIES,
        "readout": tuple(READOUTS),
    }
    for key, valid in choices.items():
        if getattr(cfg, key) not in valid:
            problems.append(unknown_choice(f"model.{key}", getattr(cfg, key), valid))
    for key in ("hidden_dim", "layers", "dt", "heads"):
        if not getattr(cfg, key) > 0:
            problems.append(f"model.{key} must be > 0, got {getattr(cfg, key)}")
    for key in ("alpha", "gamma"):
        if getattr(cfg, key) < 0:
            problems.append(f"model.{key} must be >= 0, got {getattr(cfg, key)}")
    for key in ("input_dropout", "dropout", "step_dropout"):
        if not 0 <= getattr(cfg, key) < 1:
            problems.append(f"model.{key} must be in [0, 1), got {getattr(cfg, key)}")
    if cfg.residual in ("v1", "v2") and cfg.coupling != "gcn":
        problems.append(f"model.residual '{cfg.residual}' uses the GCN weight; needs model.coupling 'gcn'")
    if cfg.step_dropout > 0 and solver.method not in IMEX_SCHEMES:
        problems.append(
            f"model.step_dropout > 0 runs between steps of {' or '.join(IMEX_SCHEMES)}; got solver.method"
            f" '{solver.method}'"
        )
    return problems
