"""GRAFF: graph neural networks as gradient flows (Di Giovanni, Rowbottom, Chamberlain, Markovich, Bronstein 2022).

    dF/dt = -F Omega + Abar F W + beta F(0)                                     (GRAFF eq. 9, F(0) = encoder(x))

discretised by explicit Euler with step tau (eq. 10: F(t + tau) = F(t) + tau (-F Omega + Abar F W + beta F(0)),
``solver=euler``, step ``model.dt``). Abar = D^-1/2 (A + I) D^-1/2 is the symmetric-normalised adjacency (cached
per graph); ``norm_degree=without_loops`` takes D from the graph without its self-loops, as the reference code does
unless the data graph itself carries loops (its chameleon / squirrel): loop weight 1/d_i, isolated nodes 0. With
Omega and W symmetric this is the gradient flow F' = -grad E of the energy (eq. 5)

    E(F) = 1/2 <F, F Omega> - 1/2 <F, Abar F W> - beta <F, F(0)>,

so E(F(t)) is non-increasing along exact trajectories; positive eigenvalues of W (lambda+) attract
neighbours (smoothing, low-frequency dominance), negative ones (lambda-) repel them (sharpening,
high-frequency dominance, the heterophily case).

W parametrisations (``w_style``; reference §5.2), shared over time unless ``time_dependent`` (one W_t per
Euler step, GRAFF-timedep): ``sum`` (W' + W'^T)/2; ``prod`` W'^T W' (spectrum >= 0); ``neg_prod`` -W'^T W'
(spectrum <= 0); ``diag`` diag(w); ``diag_dom`` (DD) W0 + diag(q * rowsum|W0| + r) with W0 symmetric and
zero on the diagonal (Gershgorin: q, r move the spectrum); ``asymm`` W' itself (the non-gradient-flow
control). ``w_init`` for diag / DD: ``uniform`` (w, q, r ~ U(-1, 1), W0 glorot; the 2022 code's default and
the tuning sweeps') or ``identity`` (W = I: w = 1; W0 = 0, q = r = 1; the camera-ready argparse default, which
with the shipped Texas values gives 61% instead of 83%). W is built once per forward pass, in ``prepare``. Omega
(``omega_style``): ``diag`` (learned vector ~ U(-1, 1)), ``zero``, ``const`` (omega_value * I, fixed).

GRAFF-NL (``nonlinearity: relu``) applies the non-linearity to the right-hand side at every step, as the
camera-ready code does (no longer a gradient flow). ``conv_batch_norm: layerwise`` standardises the right-hand
side per channel over the nodes before it (the shipped Squirrel and GRAFF-NL settings): the reference's
BatchNorm1d modules sit in a plain Python list, so their affine parameters are never trained and ``model.eval()``
does not reach them, and batch statistics are used at test time too (reference §5.2). No gradient flow either.
The pipeline is ``ContinuousGNN``'s: input dropout, linear encoder [+ residual MLP], the flow, ReLU, dropout,
linear decoder (reference §5.2).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.utils import add_remaining_self_loops

from ..config import GraffModelCfg, SolverCfg
from ..errors import unknown_choice
from ..solvers import GraphODEFunc, ODEBlock, is_fixed_step
from .base import ContinuousGNN, activation, solver_with_step
from .graph import SparseGraph

W_STYLES = ("sum", "prod", "neg_prod", "diag", "diag_dom", "asymm")
SYMMETRIC_W = ("sum", "prod", "neg_prod", "diag", "diag_dom")
W_INITS = ("identity", "uniform")  # diag / diag_dom only; sum, prod, neg_prod and asymm start from glorot
OMEGA_STYLES = ("diag", "zero", "const")
NONLINEARITIES = ("none", "relu", "tanh")
NORM_DEGREES = ("with_loops", "without_loops")
CONV_BATCH_NORMS = ("none", "layerwise")


def _glorot(*shape: int) -> Tensor:
    bound = math.sqrt(6.0 / (shape[-2] + shape[-1]))
    return torch.empty(shape).uniform_(-bound, bound)


class ChannelMixing(nn.Module):
    """W in R^{d x d} (or ``count`` of them, [count, d, d]) from a parametrisation ``style``."""

    def __init__(self, dim: int, style: str, count: int = 1, trainable: bool = True, init: str = "uniform") -> None:
        super().__init__()
        self.dim, self.style, self.count = dim, style, count
        identity = init == "identity"
        if style == "diag":
            self.weight = nn.Parameter(torch.ones(count, dim) if identity else torch.empty(count, dim).uniform_(-1, 1))
        elif style == "diag_dom":  # identity: W0 = 0, q = r = 1, so W = I
            self.weight = nn.Parameter(torch.zeros(count, dim, dim - 1) if identity else _glorot(count, dim, dim - 1))
            self.q = nn.Parameter(torch.ones(count, dim) if identity else torch.empty(count, dim).uniform_(-1, 1))
            self.r = nn.Parameter(torch.ones(count, dim) if identity else torch.empty(count, dim).uniform_(-1, 1))
        elif style in W_STYLES:
            self.weight = nn.Parameter(_glorot(count, dim, dim))
        else:
            raise ValueError(unknown_choice("model.w_style", style, W_STYLES))
        if not trainable:
            self.requires_grad_(False)

    def forward(self) -> Tensor:
        w = self.weight
        if self.style == "sum":
            out = 0.5 * (w + w.transpose(-1, -2))
        elif self.style == "prod":
            out = w.transpose(-1, -2) @ w
        elif self.style == "neg_prod":
            out = -(w.transpose(-1, -2) @ w)
        elif self.style == "diag":
            out = torch.diag_embed(w)
        elif self.style == "diag_dom":
            off_diagonal = ~torch.eye(self.dim, dtype=torch.bool, device=w.device)
            m = w.new_zeros(self.count, self.dim, self.dim)
            m[:, off_diagonal] = w.reshape(self.count, -1)
            m = 0.5 * (m + m.transpose(-1, -2))
            out = m + torch.diag_embed(self.q * m.abs().sum(-1) + self.r)
        else:  # asymm (a copy: a Parameter assigned to a module attribute would be registered again)
            out = w.clone()
        return out if self.count > 1 else out[0]


class GraffFlow(GraphODEFunc):
    """f(t, F) = act(norm(Abar F W_t - F Omega + beta F(0))) (module docstring); act and norm are the identity
    for linear GRAFF."""

    closure_names = ("x0", "source", "w", "omega")

    def __init__(self, hidden_dim: int, cfg: GraffModelCfg, steps: int = 1, step_size: float | None = None) -> None:
        super().__init__()
        # one W per Euler step; a flow of one step (T <= dt) has one W, as a time-shared one
        self.time_dependent = cfg.time_dependent and steps > 1
        self.steps, self.step_size = steps, step_size
        self.w_style, self.omega_style, self.omega_value = cfg.w_style, cfg.omega_style, cfg.omega_value
        self.norm_degree = cfg.norm_degree
        count = steps if self.time_dependent else 1
        self.mixing = ChannelMixing(hidden_dim, cfg.w_style, count, cfg.w_trainable, cfg.w_init)
        self.omega_param = None
        if cfg.omega_style == "diag":
            self.omega_param = nn.Parameter(torch.empty(hidden_dim).uniform_(-1.0, 1.0))
            self.omega_param.requires_grad_(cfg.w_trainable)
        self.beta = nn.Parameter(torch.zeros(())) if cfg.add_source else None
        self.nonlinearity = activation(cfg.nonlinearity)
        self.linear = cfg.nonlinearity == "none"
        self.standardise = cfg.conv_batch_norm == "layerwise"
        self.graph: SparseGraph | None = None
        self.abar: Tensor | None = None
        self.x0 = self.source = self.w = self.omega = None

    def prepare(self, x0: Tensor, graph: SparseGraph) -> None:
        self.x0, self.graph = x0, graph
        # F(0) enters the source term detached, as the reference's ``set_x0`` stores x0.clone().detach(): the
        # encoder learns through the flow only, beta through the source (reference §5.2). Once per pass.
        self.source = self.beta * x0.detach() if self.beta is not None else None
        loops = self.norm_degree == "with_loops"
        self.abar = graph.cached(f"sym_norm_{self.norm_degree}", lambda: symmetric_normalisation(graph, loops))
        self.w = self.mixing()  # once per forward pass, not per evaluation
        if self.omega_style == "diag":
            self.omega = self.omega_param.clone()  # a plain tensor: assigning the Parameter would register it
        elif self.omega_style == "const":
            self.omega = torch.full((x0.shape[-1],), self.omega_value, device=x0.device, dtype=x0.dtype)
        else:
            self.omega = None

    def w_at(self, t: Tensor | float) -> Tensor:
        """W_t: the W of the Euler step containing t (the same W for every t unless time_dependent)."""
        if not self.time_dependent:
            return self.w
        index = min(int(float(t) / self.step_size + 1e-6), self.steps - 1)
        return self.w[index]

    def drift(self, t: Tensor | float, f: Tensor) -> Tensor:
        """-F Omega + Abar F W_t + beta F(0), before the non-linearity."""
        if self.source is None:
            out = self.graph.matmul(self.abar, f @ self.w_at(t))
        else:
            out = self.graph.matmul_add(self.abar, f @ self.w_at(t), self.source)
        if self.omega is not None:
            out = torch.addcmul(out, f, self.omega, value=-1.0)  # - F Omega with Omega diagonal
        return out

    def forward(self, t: Tensor, f: Tensor) -> Tensor:
        out = self.drift(t, f)
        if self.standardise:  # BatchNorm1d with batch statistics and no affine, in training and evaluation
            out = nn.functional.batch_norm(out, None, None, training=True)
        return self.nonlinearity(out)

    def floor_kernels(self, f: Tensor) -> Callable[[], Tensor]:
        """One channel mixing F W and one product with the normalised adjacency."""
        a = self.graph.matrix(self.abar.detach())
        w = self.w_at(0.0).detach()
        return lambda: a @ (f @ w)

    @property
    def gradient_flow(self) -> bool:
        """True when F' = -grad E exactly: symmetric, time-independent W, no non-linearity, no normalisation."""
        return self.w_style in SYMMETRIC_W and not self.time_dependent and self.linear and not self.standardise

    def energy(self, f: Tensor) -> Tensor:
        """E(F) = 1/2 <F, F Omega> - 1/2 <F, Abar F W> - beta <F, F(0)> (GRAFF eq. 5 with the source term)."""
        w = self.w_at(0.0)
        e = -0.5 * (f * self.graph.matmul(self.abar, f @ w)).sum()
        if self.omega is not None:
            e = e + 0.5 * (f * f * self.omega).sum()
        if self.beta is not None:
            e = e - self.beta * (f * self.x0).sum()
        return e

    def spectrum(self) -> dict:
        """Eigenvalues of W (of its symmetric part for ``asymm``); per step for time-dependent W."""
        w = self.w.detach()
        sym = 0.5 * (w + w.transpose(-1, -2))
        eig = torch.linalg.eigvalsh(sym.double()).float()
        eig = eig if eig.dim() == 2 else eig[None]
        return {
            "lambda_plus": [round(float(e.max().clamp(min=0)), 6) for e in eig],
            "lambda_minus": [round(float(e.min().clamp(max=0)), 6) for e in eig],
            "n_positive": [int((e > 0).sum()) for e in eig],
            "n_negative": [int((e < 0).sum()) for e in eig],
            "eigenvalues": [[round(float(v), 5) for v in e] for e in eig],
            "symmetric": self.w_style in SYMMETRIC_W,
        }

    @torch.no_grad()
    def diagnostics(self, states: Tensor, times: Tensor) -> dict:
        """GRAFF's own diagnostics: the spectrum of W and E(F(t)) along the trajectory."""
        return {
            "w_spectrum": self.spectrum(),
            "energy": [round(float(self.energy(f)), 6) for f in states],
            "energy_is_lyapunov": self.gradient_flow,
        }


def symmetric_normalisation(graph: SparseGraph, count_loops: bool = True) -> Tensor:
    """Edge weights d_i^-1/2 d_j^-1/2 on every edge of ``graph`` (self-loops included).

    ``count_loops``: d_i counts all of the graph's edges, the loop too (D~^-1/2 (A + I) D~^-1/2). Otherwise d_i
    counts the non-loop edges only, as the reference's ``get_deg_inv_sqrt`` counts degrees on the data graph before
    the block adds self-loops: a self-loop then weighs 1/d_i and a node with d_i = 0 gets 0 (inf masked to 0).
    """
    dst = graph.dst if count_loops else graph.dst[graph.dst != graph.src]
    degree = torch.bincount(dst, minlength=graph.num_nodes).to(torch.get_default_dtype())
    inv_sqrt = torch.where(degree > 0, degree.clamp(min=1).rsqrt(), torch.zeros_like(degree))
    return inv_sqrt[graph.dst] * inv_sqrt[graph.src]


def graff_graph(data: Data, cfg: GraffModelCfg) -> SparseGraph:
    """The data graph (undirected, as every loader returns it) plus self-loops unless ``self_loops`` is false."""
    edge_index = data.edge_index
    if cfg.self_loops:
        edge_index, _ = add_remaining_self_loops(edge_index, num_nodes=data.num_nodes)
    return SparseGraph(edge_index, data.num_nodes)


def euler_steps(time: float, step_size: float) -> int:
    return max(1, math.ceil(time / step_size - 1e-9))


def build_graff(cfg: GraffModelCfg, solver: SolverCfg, data: Data) -> ContinuousGNN:
    solver = solver_with_step(solver, cfg.dt)
    step = solver.step_size if is_fixed_step(solver.method) else cfg.dt
    func = GraffFlow(cfg.hidden_dim, cfg, euler_steps(cfg.time, step), step)
    return ContinuousGNN.from_config(cfg, data, ODEBlock(func, solver, cfg.time), use_mlp=cfg.use_mlp)


def check_graff_cfg(cfg: GraffModelCfg, solver: SolverCfg) -> list[str]:
    """Problems with a GRAFF model config, each naming the option, the value and what is allowed."""
    problems = []
    choices = {
        "w_style": W_STYLES,
        "w_init": W_INITS,
        "omega_style": OMEGA_STYLES,
        "nonlinearity": NONLINEARITIES,
        "norm_degree": NORM_DEGREES,
        "conv_batch_norm": CONV_BATCH_NORMS,
    }
    for key, valid in choices.items():
        if getattr(cfg, key) not in valid:
            problems.append(unknown_choice(f"model.{key}", getattr(cfg, key), valid))
    for key in ("hidden_dim", "time", "dt"):
        if not getattr(cfg, key) > 0:
            problems.append(f"model.{key} must be > 0, got {getattr(cfg, key)}")
    for key in ("input_dropout", "dropout"):
        if not 0 <= getattr(cfg, key) < 1:
            problems.append(f"model.{key} must be in [0, 1), got {getattr(cfg, key)}")
    if cfg.time_dependent and not is_fixed_step(solver.method):
        problems.append(
            f"model.time_dependent=true needs a fixed-step solver (one W_t per step); got '{solver.method}'"
        )
    return problems
