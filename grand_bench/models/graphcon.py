"""GraphCON: graph-coupled oscillator networks (Rusch, Chamberlain, Rowbottom, Mishra, Bronstein; ICML 2022).

    X'' = sigma(F_theta(X)) - gamma X - alpha X'                                          (GraphCON eq. 2)

written as the first-order system on the state [X, Y] (Y = X', concatenated along the channels)

    X' = Y,    Y' = sigma(F_theta(X)) - gamma X - alpha Y,

so every solver applies; ``solver=symplectic_euler`` with step dt is the paper's IMEX discretisation (eq. 3),
an N-layer GNN with weights shared over layers, T = N dt (solvers/imex.py). F_theta is one PyG layer
(``coupling``): GCNConv (GraphCON-GCN), GATConv (GraphCON-GAT; heads averaged), TransformerConv, GINConv,
ResGatedGraphConv (GatedGCN), or ``grand_attention``: F(X) = A X with A = A(X(0)) GRAND's multi-head attention
(attention.py, eq. 10 of GRAND) on the graph plus unit self-loops, computed once per forward pass as in GRAND-l.
The last is what the homophilic code runs as GraphCON-Tran (its default ``block=attention``, ``function=
laplacian``; reference §4.3), so conf/model/graphcon_tran.yaml uses it.

Residual terms of the heterophilic and graph-level code (reference §4.2, §4.4), added to F before sigma:
``linear`` + W_res X (MNIST, GAT); ``v1`` - W_res(W_conv X); ``v2`` - W_conv X + W_res X (heterophilic v2 and
ZINC: with GCN this is (Abar - I) X W_conv + W_res X, a Laplacian term plus a free skip), where W_conv is the
GCN's own weight without propagation. ``step_dropout`` drops X and Y out after the encoder and after every
step, as that code does (only the IMEX schemes run it). Graph-level set-up: decode every node, then
``readout: sum`` pools per graph of the mini-batch.

The node-level homophilic code (a copy of GRAND's, reference §4.3; its Cora depth sweep is Table 8) integrates
a different system, ``source: true`` here (off by default: it is not in the paper's equations):

    Y' = (1 - s(b1)) (sigma(F(X)) - gamma X - alpha Y) + s(b1) X(0),
    X' = (1 - s(b2)) s(a) Y + s(b2) Y(0),                  s = sigmoid, a, b1, b2 learned scalars from 0,

so both rates start as half the paper's plus a pull towards the encoding; at depth these sources keep X(T)
tied to the input (without them 64 steps of size 1 with alpha = gamma = 1 reduce to X^n = sigma(F(X^{n-1})),
a plain weight-shared GCN). Deviation: the code detaches X(0), Y(0) in the sources; here gradients flow
through them (as in grand.py). The pipeline (input dropout, linear encoder, ReLU, dropout, decoder on X) is
the same.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import GATConv, GINConv, ResGatedGraphConv, TransformerConv

from ..config import AttentionCfg, GraphconModelCfg, SolverCfg
from ..errors import unknown_choice
from ..solvers import GraphODEFunc, ODEBlock
from ..solvers.imex import split_state
from .attention import EdgeAttention, check_attention_cfg
from .base import ACTIVATIONS, READOUTS, ContinuousGNN, activation, solver_with_step
from .edge_graph import EdgeGraph, FixedGCNConv

COUPLINGS = ("gcn", "gat", "transformer", "gin", "gatedgcn", "grand_attention")
RESIDUALS = ("none", "linear", "v1", "v2")
INITIAL_VELOCITIES = ("encoding", "zero")
SELECTION_STATES = ("position", "velocity")  # eval.state: the half of [X, Y] the time selection decodes
IMEX_SCHEMES = ("symplectic_euler", "leapfrog")


class Coupling(nn.Module):
    """F_theta(X): one PyG layer hidden -> hidden, shared by every step."""

    def __init__(self, kind: str, dim: int, heads: int, attention: AttentionCfg | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.attention: EdgeAttention | None = None
        if kind == "gcn":
            self.conv = FixedGCNConv(dim, dim)  # the normalised matrix (and its transpose) cached on the graph
        elif kind == "gat":
            self.conv = GATConv(dim, dim, heads=heads, concat=False, add_self_loops=False)  # loops cached
        elif kind == "transformer":
            self.conv = TransformerConv(dim, dim, heads=heads, concat=False)
        elif kind == "gin":
            mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
            self.conv = GINConv(mlp, train_eps=True)
        elif kind == "gatedgcn":
            self.conv = ResGatedGraphConv(dim, dim)
        elif kind == "grand_attention":
            self.attention = EdgeAttention(dim, attention if attention is not None else AttentionCfg())
        else:
            raise ValueError(unknown_choice("model.coupling", kind, COUPLINGS))

    def attention_at(self, x0: Tensor, graph: EdgeGraph) -> Tensor:
        """grand_attention: A(X(0)) on the edges of ``graph.sparse_with_self_loops()``, shape [E]."""
        return self.attention(x0, graph.sparse_with_self_loops())

    def forward(self, x: Tensor, graph: EdgeGraph, values: Tensor | None = None) -> Tensor:
        """F(X); ``values`` is the fixed attention A(X(0)) of the grand_attention coupling."""
        if values is not None:
            return graph.sparse_with_self_loops().matmul(values, x)
        if self.kind == "gcn":
            return self.gcn(x, graph)
        if self.kind == "gat":
            return self.conv(x, graph.with_self_loops())
        return self.conv(x, graph.edge_index)

    def gcn(self, x: Tensor, graph: EdgeGraph) -> Tensor:
        """Abar (X W) + b on the cached normalised adjacency, as one sparse addmm (``FixedGCNConv``): PyG's
        message-passing dispatch costs more than the product on Cora (tests/test_graphcon.py checks it against
        GCNConv's own forward)."""
        return self.conv(x, *graph.propagation("gcn"))

    def weight_only(self, x: Tensor) -> Tensor:
        """X W_conv: the GCN layer's linear map without propagation (the heterophilic residuals)."""
        return self.conv.lin(x)


class OscillatorDynamics(GraphODEFunc):
    """f(t, [X, Y]) = [Y, sigma(F(X) + R(X)) - gamma X - alpha Y], or the sourced rates (module docstring)."""

    closure_names = ("x0", "y0", "values")

    def __init__(self, cfg: GraphconModelCfg) -> None:
        super().__init__()
        dim = cfg.hidden_dim
        self.coupling = Coupling(cfg.coupling, dim, cfg.heads, cfg.attention)
        self.residual = cfg.residual
        self.res = nn.Linear(dim, dim) if cfg.residual in ("linear", "v1", "v2") else None
        self.sigma = activation(cfg.activation)
        self.alpha, self.gamma = cfg.alpha, cfg.gamma
        self.step_dropout = nn.Dropout(cfg.step_dropout) if cfg.step_dropout > 0 else None
        # source: true: mixing logits b1 (Y'), b2 (X') and the X' speed a, all learned from 0 as in the code
        self.mix = nn.Parameter(torch.zeros(3)) if cfg.source else None
        self.x0: Tensor | None = None
        self.y0: Tensor | None = None
        self.values: Tensor | None = None  # grand_attention: A(X(0)) on the edges, fixed during the solve

    def prepare(self, x0: Tensor, graph: EdgeGraph) -> None:
        self.graph = graph
        if self.mix is not None:
            self.x0, self.y0 = split_state(x0)  # the initial state [X(0), Y(0)]
        if self.coupling.attention is not None:
            self.values = self.coupling.attention_at(split_state(x0)[0], graph)

    def coupling_term(self, x: Tensor) -> Tensor:
        f = self.coupling(x, self.graph, self.values)
        if self.residual == "linear":
            f = f + self.res(x)
        elif self.residual == "v1":
            f = f - self.res(self.coupling.weight_only(x))
        elif self.residual == "v2":
            f = f - self.coupling.weight_only(x) + self.res(x)
        return f

    def acceleration(self, x: Tensor, y: Tensor) -> Tensor:
        # sigma(F) - gamma X - alpha Y in two fused passes (sub_ acts on the fresh result of sub)
        rate = torch.sub(self.sigma(self.coupling_term(x)), x, alpha=self.gamma).sub_(y, alpha=self.alpha)
        if self.mix is None:
            return rate
        return torch.lerp(rate, self.x0, torch.sigmoid(self.mix[0]))  # (1 - s(b1)) rate + s(b1) X(0)

    def forward(self, t: Tensor, state: Tensor) -> Tensor:
        x, y = split_state(state)
        return torch.cat([self.velocity_term(y), self.acceleration(x, y)], -1)

    def floor_kernels(self, state: Tensor) -> Callable[[], Tensor] | None:
        """For the GCN coupling: the layer's projection and one product with the normalised adjacency."""
        if self.coupling.kind != "gcn":
            return None
        x, _ = split_state(state)
        adj, conv = self.graph.matrix("gcn"), self.coupling.conv
        weight = conv.lin.weight.detach()
        if conv.bias is None:
            return lambda: adj @ (x @ weight.t())
        bias = conv.bias.detach()
        return lambda: torch.addmm(bias, adj, x @ weight.t())

    def velocity_term(self, y: Tensor) -> Tensor:
        """X' = Y, or its sourced mixture (1 - s(b2)) s(a) Y + s(b2) Y(0)."""
        if self.mix is None:
            return y
        b2, a = torch.sigmoid(self.mix[1]), torch.sigmoid(self.mix[2])
        return torch.lerp(a * y, self.y0, b2)  # (1 - s(b2)) s(a) Y + s(b2) Y(0)

    def position_rate(self, t: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """X' read by the IMEX schemes without a message-passing evaluation."""
        return self.velocity_term(y)

    def velocity_rate(self, t: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """Y' on its own: the IMEX schemes' one counted evaluation per step, without concatenating [X, Y]."""
        return self.acceleration(x, y)

    @property
    def after_step(self) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None:
        """Dropout of X and Y after every IMEX step (heterophilic code); None when off, so schemes skip it."""
        if self.step_dropout is None:
            return None
        return lambda x, y: (self.step_dropout(x), self.step_dropout(y))


class OscillatorBlock(ODEBlock):
    """Integrates [X, Y] from [X(0), Y(0)] and returns the position X (at T, or at each of ``times``), or
    with ``half="velocity"`` Y (the homophilic code's early-stop integrator decodes it; reference §4.3), or with
    ``half="both"`` X at each of ``times`` followed by Y at each of them, from one solve."""

    def __init__(self, func: OscillatorDynamics, cfg: SolverCfg, time: float, initial_velocity: str) -> None:
        super().__init__(func, cfg, time)
        self.initial_velocity = initial_velocity

    def initial_state(self, x0: Tensor) -> Tensor:
        """[X(0), Y(0)] with Y(0) = X(0) (``initial_velocity: encoding``) or 0."""
        y0 = x0 if self.initial_velocity == "encoding" else torch.zeros_like(x0)
        return torch.cat([x0, y0], -1)

    def forward(self, x0: Tensor, graph: EdgeGraph, times: Tensor | None = None, half: str = "position") -> Tensor:
        position, velocity = split_state(super().forward(self.initial_state(x0), graph, times))
        if half == "both":
            if times is None:
                raise ValueError('half="both" needs the times to return the states at')
            return torch.cat([position, velocity])
        return velocity if half == "velocity" else position


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
    if cfg.attention is not None:
        problems.extend(check_attention_cfg(cfg.attention))
    if cfg.residual in ("v1", "v2") and cfg.coupling != "gcn":
        problems.append(f"model.residual '{cfg.residual}' uses the GCN weight; needs model.coupling 'gcn'")
    if cfg.step_dropout > 0 and solver.method not in IMEX_SCHEMES:
        problems.append(
            f"model.step_dropout > 0 runs between steps of {' or '.join(IMEX_SCHEMES)}; got solver.method"
            f" '{solver.method}'"
        )
    return problems
