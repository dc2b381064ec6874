"""CGNN: continuous graph neural networks (Xhonneux, Qu and Tang, ICML 2020).

dX/dt = (sigma(a)/2) ⊙ (A_hat X - X) + X(0)          (CGNN eq. 6, the variant without the weight W)

A_hat = D^-1/2 (A + w I) D^-1/2 is the data graph with self-loops of weight w, normalised by the degrees
that count them; a holds one learned a_i per node (sigmoid(a_i)/2 scales node i's row) and X(0) is the
encoded input, a constant source (the authors' ``set_x0`` stores it detached). Without W the channels never
mix, so the authors' zero augmentation of the state (ANODE) leaves the solution unchanged and is left out.
The encoder, ReLU and decoder around the solve are GRAND's (models/base.py), as in the authors' code.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from ..config import CgnnModelCfg, SolverCfg
from ..solvers import GraphODEFunc, ODEBlock
from .base import ContinuousGNN
from .grand import with_self_loops
from .graph import SparseGraph
from .reaction_diffusion import sym_values


class CgnnDiffusion(GraphODEFunc):
    """f(t, X) = (sigma(a)/2) ⊙ (A_hat X - X) + X(0), with a_i per node (module docstring)."""

    closure_names = ("speed",)

    def __init__(self, num_nodes: int, cfg: CgnnModelCfg) -> None:
        super().__init__()
        self.alpha_train = nn.Parameter(torch.full((num_nodes, 1), float(cfg.alpha_init)))
        self.values: Tensor | None = None  # A_hat's edge values
        self.speed: Tensor | None = None  # sigmoid(a) / 2, once per pass
        self.source: Tensor | None = None  # X(0), detached

    def prepare(self, x0: Tensor, graph: SparseGraph) -> None:
        self.graph, self.source = graph, x0.detach()
        self.values = graph.cached("cgnn_sym", lambda: sym_values(graph))
        self.speed = torch.sigmoid(self.alpha_train) / 2

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return self.speed * (self.graph.matmul(self.values, x) - x) + self.source


def cgnn_graph(data: Data, cfg: CgnnModelCfg) -> SparseGraph:
    """The data graph plus self-loops of weight ``self_loop_weight`` (existing self-loops keep weight 1)."""
    return with_self_loops(data, cfg.self_loop_weight)


def build_cgnn(cfg: CgnnModelCfg, solver: SolverCfg, data: Data) -> ContinuousGNN:
    ode = ODEBlock(CgnnDiffusion(data.num_nodes, cfg), solver, cfg.time)
    return ContinuousGNN.from_config(cfg, data, ode)
