"""Reaction-diffusion GNNs: GRAND++, GREAD and RDGNN as one ODE function with a registry of reaction terms.

    dX/dt = alpha ⊙ (A X - X) + beta ⊙ r(X),   X(0) = encoder(x)          (GREAD; reference §6.1)

with A GRAND's diffusivity (``model.diffusivity``: ``fixed_attention`` = GREAD's "soft adjacency",
attention from X(0); ``laplacian`` = GREAD's "original adjacency", normalised per ``laplacian_norm``;
``attention`` = recomputed at every evaluation), alpha = sigmoid(alpha_train) scalar or per channel, and
the reaction r one of ``REACTIONS``:

* GREAD (Choi et al., ICML 2023; reference §6): ``fisher`` X ⊙ (1 - X), ``allen_cahn`` X ⊙ (1 - X²),
  ``zeldovich`` X ⊙ (X - X²), ``bspm`` blurring-sharpening (A - A²) X, ``source`` X(0), ``filter_bank``
  (I + A) X and ``filter_bank_star`` (I + A) X + X (GREAD-FB*, as the original code computes them).
  beta = sigmoid(beta_train) (scalar or per channel), or with ``beta_diag`` a free per-channel b drawn from
  U(-1, 1) (every shipped GREAD config).
* GRAND++ (Thorpe et al., ICLR 2022; reference §3): ``trusted_source``, r_i = 1[i ∈ I] (X_i(0) - x̄) with I
  the labelled training nodes and x̄ their mean encoding: labelled nodes keep injecting their centred
  initial features, so X(t) does not converge to a constant (the equation as recalled in the reference;
  the paper's text and equation number were not available); beta = sigmoid(beta_train) from ``beta_init``
  (-4 in grand_pp.yaml: the source starts almost off). The trainer hands I over through
  ``set_train_nodes`` (run.train_one), so the source never sees labels, only which nodes are labelled.
* RDGNN (Eliasof, Haber, Treister, SIAM J. Sci. Comput. 2024; reference §7): dH/dt = -Σ ⊙ L H + R_θ(H, H(0))
  with L = I - D^{-1/2} Ã D^{-1/2} (``laplacian_norm: sym``), per-channel Σ = sigmoid(alpha) and
  ``mlp`` R_θ(H, H0) = tanh(W [H, H0, H ⊙ H0] + c) (our choice: the paper's parametrisation was not
  available). Explicit Euler with step h is H <- H - h Σ L H + h β R_θ (ε_d = hΣ, ε_r = hβ);
  ``solver=imex_euler`` makes the diffusion half implicit, (I + h Σ L) H_{k+1} = H_k + h β R_θ(H_k, H0),
  solved by conjugate gradients (Σ L is symmetric positive semi-definite).

The diffusion is the implicit part and beta ⊙ r (+ GRAND's ``add_source``) the explicit part of the
``SplitRHS`` split that ``imex_euler`` uses.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.utils import scatter

from ..config import ReactionDiffusionModelCfg, SolverCfg
from ..errors import ConfigError, unknown_choice
from ..solvers import GraphODEFunc, ODEBlock
from ..solvers.implicit import AFFINE_SCHEMES, SPLIT_SCHEMES, SplitRHS
from .attention import EdgeAttention
from .base import ACTIVATIONS, ContinuousGNN
from .grand import laplacian_values
from .graph import SparseGraph

Adjacency = Callable[[Tensor], Tensor]  # v -> A v


class ReactionNet(nn.Module):
    """RDGNN's learned reaction R_θ(H, H0) = tanh(W [H, H0, H ⊙ H0] + c)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(3 * dim, dim)

    def forward(self, h: Tensor, h0: Tensor) -> Tensor:
        return torch.tanh(self.linear(torch.cat([h, h0, h * h0], dim=-1)))


# r(func, X, A X, A·): the reaction terms. A X is passed because the diffusion computes it anyway.
REACTIONS: dict[str, Callable[[ReactionDiffusion, Tensor, Tensor, Adjacency], Tensor]] = {
    "fisher": lambda f, x, ax, adj: x * (1 - x),
    "allen_cahn": lambda f, x, ax, adj: x * (1 - x**2),
    "zeldovich": lambda f, x, ax, adj: x * (x - x**2),
    "bspm": lambda f, x, ax, adj: ax - adj(ax),  # (A - A²) X, blurring then sharpening
    "source": lambda f, x, ax, adj: f.x0,
    "filter_bank": lambda f, x, ax, adj: x + ax,
    "filter_bank_star": lambda f, x, ax, adj: 2 * x + ax,
    "trusted_source": lambda f, x, ax, adj: f.source,
    "mlp": lambda f, x, ax, adj: f.reaction_net(x, f.x0),
}
LINEAR_REACTIONS = ("bspm", "source", "filter_bank", "filter_bank_star", "trusted_source")  # affine in X
COEFFICIENT_DIMS = ("scalar", "channel")
LAPLACIAN_NORMS = ("row", "column", "sym")


def sym_values(graph: SparseGraph) -> Tensor:
    """Edge values of D^{-1/2} Ã D^{-1/2} (GCN normalisation; Ã = the graph with its weighted self-loops)."""
    weight = graph.edge_weight
    if weight is None:
        weight = torch.ones(graph.num_edges, device=graph.src.device)
    degree = scatter(weight, graph.dst, dim=0, dim_size=graph.num_nodes, reduce="sum")
    inv_sqrt = degree.clamp_min(1e-16).rsqrt()
    return inv_sqrt[graph.dst] * weight * inv_sqrt[graph.src]


class ReactionDiffusion(SplitRHS, GraphODEFunc):
    """f(t, X) = alpha ⊙ (A X - X) + beta ⊙ r(X) [+ beta_0 X(0)] (module docstring).

    A is built as in GRAND (models/grand.py: same attention, same normalised adjacency, same graph); the
    diffusion is ``implicit`` and the reaction ``explicit`` for ``imex_euler``.
    """

    closure_names = ("x0", "values", "source")

    def __init__(self, hidden_dim: int, cfg: ReactionDiffusionModelCfg) -> None:
        super().__init__()
        width = {"scalar": (), "channel": (hidden_dim,)}
        self.diffusivity, self.reaction = cfg.diffusivity, cfg.reaction
        self.norm = cfg.laplacian_norm or cfg.attention.norm
        self.alpha_sigmoid, self.beta_diag = cfg.alpha_sigmoid, cfg.beta_diag
        self.alpha_train = nn.Parameter(torch.zeros(width[cfg.alpha_dim]))
        if cfg.beta_diag:  # GREAD's "beta with VC dimension": free sign, U(-1, 1) init
            self.beta_train = nn.Parameter(torch.empty(hidden_dim).uniform_(-1, 1))
        else:
            self.beta_train = nn.Parameter(torch.full(width[cfg.beta_dim], float(cfg.beta_init)))
        self.source_beta = nn.Parameter(torch.zeros(())) if cfg.add_source else None  # GRAND's add_source
        self.detach_source = cfg.detach_source
        self.attention = EdgeAttention(hidden_dim, cfg.attention) if cfg.diffusivity != "laplacian" else None
        self.reaction_net = ReactionNet(hidden_dim) if cfg.reaction == "mlp" else None
        self.graph: SparseGraph | None = None
        self.values: Tensor | None = None  # A's edge values when fixed during the solve
        self.x0: Tensor | None = None
        self.source: Tensor | None = None  # GRAND++: 1_I (X(0) - mean_I X(0))
        self.train_nodes: Tensor | None = None

    def set_train_nodes(self, index: Tensor) -> None:
        """The labelled nodes I of GRAND++'s source (indices); called by run.train_one with the split."""
        self.train_nodes = index

    def prepare(self, x0: Tensor, graph: SparseGraph) -> None:
        self.x0, self.graph, self.values, self.source = x0, graph, None, None
        if self.diffusivity == "laplacian":
            build = (lambda: sym_values(graph)) if self.norm == "sym" else (lambda: laplacian_values(graph, self.norm))
            self.values = graph.cached(f"laplacian_{self.norm}", build)
        elif self.diffusivity == "fixed_attention":
            self.values = self.attention(x0, graph)
        if self.reaction == "trusted_source":
            if self.train_nodes is None:
                raise ConfigError(
                    "model.reaction 'trusted_source' (GRAND++) needs the labelled nodes: call "
                    "set_train_nodes(split.train) before the forward pass (run.train_one does)"
                )
            trusted = x0[self.train_nodes]
            self.source = torch.zeros_like(x0).index_copy(0, self.train_nodes, trusted - trusted.mean(0))

    @property
    def alpha(self) -> Tensor:
        return torch.sigmoid(self.alpha_train) if self.alpha_sigmoid else self.alpha_train

    @property
    def beta(self) -> Tensor:
        return self.beta_train if self.beta_diag else torch.sigmoid(self.beta_train)

    def adjacency(self, x: Tensor) -> Adjacency:
        """v -> A v with A fixed for the pass, or A(x) for the ``attention`` diffusivity."""
        values = self.values if self.values is not None else self.attention(x, self.graph)
        return lambda v: self.graph.matmul(values, v)

    def implicit(self, t: Tensor, x: Tensor) -> Tensor:
        return self.alpha * (self.adjacency(x)(x) - x)

    def explicit(self, t: Tensor, x: Tensor, adj: Adjacency | None = None, ax: Tensor | None = None) -> Tensor:
        if adj is None or ax is None:
            adj = self.adjacency(x)
            ax = adj(x)
        f = self.beta * REACTIONS[self.reaction](self, x, ax, adj)
        if self.source_beta is None:
            return f
        return f + self.source_beta * (self.x0.detach() if self.detach_source else self.x0)

    def full(self, t: Tensor, x: Tensor) -> Tensor:
        adj = self.adjacency(x)
        ax = adj(x)
        return self.alpha * (ax - x) + self.explicit(t, x, adj, ax)


def check_reaction_diffusion_cfg(cfg: ReactionDiffusionModelCfg, solver: SolverCfg | None = None) -> list[str]:
    """Problems with the reaction-diffusion options (beside GRAND's, checked by validate), one message each."""
    problems = []
    if cfg.reaction not in REACTIONS:
        problems.append(unknown_choice("model.reaction", cfg.reaction, REACTIONS))
    if cfg.decoder_activation not in ACTIVATIONS:
        problems.append(unknown_choice("model.decoder_activation", cfg.decoder_activation, ACTIVATIONS))
    for key in ("alpha_dim", "beta_dim"):
        if getattr(cfg, key) not in COEFFICIENT_DIMS:
            problems.append(unknown_choice(f"model.{key}", getattr(cfg, key), COEFFICIENT_DIMS))
    if cfg.edge_sampling < 1:
        problems.append(
            f"model.edge_sampling={cfg.edge_sampling}: edge sampling is GRAND-nl-rw's; reaction_diffusion uses 1"
        )
    if cfg.laplacian_norm is not None:
        if cfg.laplacian_norm not in LAPLACIAN_NORMS:
            problems.append(unknown_choice("model.laplacian_norm", cfg.laplacian_norm, LAPLACIAN_NORMS))
        if cfg.diffusivity != "laplacian":
            problems.append(
                f"model.laplacian_norm={cfg.laplacian_norm} applies to model.diffusivity 'laplacian', "
                f"not {cfg.diffusivity!r} (attention is normalised per model.attention.norm)"
            )
    return problems


def check_implicit_solver(model_cfg, solver: SolverCfg) -> list[str]:
    """An implicit scheme on a model it cannot integrate (known non-linear configurations), for ``validate``.

    Families not listed here are checked when the solve starts (the scheme's affinity probe).
    """
    method, family = solver.method, getattr(model_cfg, "family", None)
    reason = None
    if method in SPLIT_SCHEMES and family != "reaction_diffusion":
        reason = f"model.family {family!r} does not split its right-hand side (for a linear model: backward_euler)"
    elif method in AFFINE_SCHEMES + SPLIT_SCHEMES and family in ("grand", "reaction_diffusion"):
        if model_cfg.diffusivity == "attention":
            reason = "model.diffusivity 'attention' recomputes A(X(t)), so the diffusion is not linear in X"
        elif method in AFFINE_SCHEMES and family == "reaction_diffusion" and model_cfg.reaction not in LINEAR_REACTIONS:
            reason = (
                f"model.reaction {model_cfg.reaction!r} is non-linear in X (affine: {', '.join(LINEAR_REACTIONS)}); "
                "solver=imex_euler treats only the diffusion implicitly"
            )
    return [f"solver.method '{method}' needs a right-hand side linear in the state: {reason}"] if reason else []


def build_reaction_diffusion(cfg: ReactionDiffusionModelCfg, solver: SolverCfg, data: Data) -> ContinuousGNN:
    return ContinuousGNN.from_config(
        cfg,
        data,
        ODEBlock(ReactionDiffusion(cfg.hidden_dim, cfg), solver, cfg.time),
        batch_norm=cfg.batch_norm,
        use_mlp=cfg.use_mlp,
        decoder_activation=cfg.decoder_activation,
    )
