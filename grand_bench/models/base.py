"""Encoder -> ODE block -> decoder, the pipeline every continuous-depth model shares (reference §1.1).

x -> dropout(input_dropout) -> Linear encoder [-> activation] [-> 2 residual MLP blocks] [-> BatchNorm] = X(0)
X(T) = ODE block(X(0)); logits = Linear(dropout(ReLU(X(T)))). No dropout inside the ODE; the ODE
function's weights are shared over time. Options for the other families' original pipelines: an activation
after the encoder and none before the decoder (GraphCON's heterophilic and graph-level code), and a readout
that pools the decoded nodes of each graph of a mini-batch (graph-level tasks; ``graph.batch``).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

from ..config import SolverCfg
from ..errors import unknown_choice
from ..solvers import ODEBlock, is_fixed_step
from .edge_graph import int32_indices

ACTIVATIONS: dict[str, type[nn.Module]] = {"none": nn.Identity, "relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh}
READOUTS = {"node": None, "sum": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(unknown_choice("activation", name, ACTIVATIONS))
    return ACTIVATIONS[name]()


def solver_with_step(solver: SolverCfg, dt: float) -> SolverCfg:
    """The solver settings with ``step_size`` defaulting to the model's own step ``dt`` (GraphCON, GRAFF).

    An explicit ``solver.step_size`` wins (e.g. a finer step for the same T); adaptive methods ignore it.
    """
    if solver.step_size is not None or not is_fixed_step(solver.method):
        return solver
    if dataclasses.is_dataclass(solver):
        return dataclasses.replace(solver, step_size=dt)
    solver = copy.deepcopy(solver)  # a DictConfig from Hydra
    solver.step_size = dt
    return solver


class ResidualMLP(nn.Module):
    """Two blocks x <- dropout(x + Linear(ReLU(x))) (the original code's `use_mlp`)."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(dim, dim) for _ in range(2)])
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.dropout(x)
        for layer in self.layers:
            x = self.dropout(x + layer(x.relu()))
        return x


SPARSE_INPUT_DENSITY = 0.1  # below this fraction of non-zeros, input dropout + encoder work on the non-zeros


class InputDropout(nn.Dropout):
    """Dropout on a node feature matrix that touches only its non-zeros when it is mostly zeros.

    Bag-of-words features (Cora: 1.3% non-zero) make dense input dropout the most expensive op of an
    epoch on CPU (``bernoulli_`` over every entry: 90% of a GCN epoch on Cora). Dropping the stored non-zeros
    of a CSR copy draws the same distribution (a zero stays zero either way). The CSR copy is made once per
    input tensor (node tasks reuse one x every epoch); an input that needs gradients stays dense.
    """

    def __init__(self, p: float) -> None:
        super().__init__(p)
        self._cache: tuple[tuple, Tensor | None] = ((), None)

    def csr(self, x: Tensor) -> Tensor | None:
        """A CSR copy of x when x is mostly zeros (and needs no gradient), else None."""
        if x.requires_grad or x.dim() != 2:
            return None
        key = (x.data_ptr(), tuple(x.shape), x._version, x.device)
        if self._cache[0] != key:
            sparse = int(torch.count_nonzero(x)) < SPARSE_INPUT_DENSITY * x.numel()
            self._cache = (key, int32_indices(x.to_sparse_csr()) if sparse else None)
        return self._cache[1]

    def dropped_csr(self, csr: Tensor) -> Tensor:
        """The CSR matrix with dropout applied to its stored values (identity in eval mode)."""
        values = super().forward(csr.values())
        return torch.sparse_csr_tensor(csr.crow_indices(), csr.col_indices(), values, csr.shape, check_invariants=False)

    def forward(self, x: Tensor) -> Tensor:
        csr = self.csr(x) if self.training and self.p > 0 else None
        return super().forward(x) if csr is None else self.dropped_csr(csr).to_dense()


class SparseInputEncoder(nn.Module):
    """Linear(dropout(x)); on mostly-zero features the product is a CSR x dense matmul (``InputDropout``)."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        self.dropout = InputDropout(dropout)
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        csr = self.dropout.csr(x)
        if csr is None:
            return self.linear(self.dropout(x))
        return torch.addmm(self.linear.bias, self.dropout.dropped_csr(csr), self.linear.weight.t())


class ContinuousGNN(nn.Module):
    """Node classifier whose hidden layers are the solution of a graph ODE."""

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        ode: ODEBlock,
        input_dropout: float = 0.0,
        dropout: float = 0.0,
        batch_norm: bool = False,
        use_mlp: bool = False,
        encoder_activation: str = "none",
        decoder_activation: str = "relu",
        readout: str = "node",
    ) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(unknown_choice("readout", readout, READOUTS))
        self.encoder = SparseInputEncoder(in_dim, hidden_dim, input_dropout)
        self.encoder_activation = activation(encoder_activation)
        self.mlp = ResidualMLP(hidden_dim, dropout) if use_mlp else nn.Identity()
        self.norm = nn.BatchNorm1d(hidden_dim) if batch_norm else nn.Identity()
        self.ode = ode
        self.dropout = nn.Dropout(dropout)
        self.decoder_activation = activation(decoder_activation)
        self.decoder = nn.Linear(hidden_dim, out_dim)
        self.readout = READOUTS[readout]

    @classmethod
    def from_config(cls, cfg: Any, data: Any, ode: ODEBlock, **options: Any) -> ContinuousGNN:
        """Sizes from ``data`` and the shared keys (hidden_dim, input_dropout, dropout) from a model config."""
        return cls(
            in_dim=data.num_features,
            hidden_dim=cfg.hidden_dim,
            out_dim=int(data.num_classes),
            ode=ode,
            input_dropout=cfg.input_dropout,
            dropout=cfg.dropout,
            **options,
        )

    def encode(self, x: Tensor) -> Tensor:
        return self.norm(self.mlp(self.encoder_activation(self.encoder(x))))

    def decode(self, h: Tensor) -> Tensor:
        return self.decoder(self.dropout(self.decoder_activation(h)))

    def pool(self, out: Tensor, graph: Any) -> Tensor:
        """Node outputs [..., N, C] -> per-graph outputs [..., G, C] with the readout (identity for "node")."""
        if self.readout is None:
            return out
        batch = getattr(graph, "batch", None)
        size = getattr(graph, "num_graphs", None)
        if out.dim() == 2:
            return self.readout(out, batch, size)
        return torch.stack([self.readout(step, batch, size) for step in out])

    def forward(self, x: Tensor, graph: Any) -> Tensor:
        return self.pool(self.decode(self.ode(self.encode(x), graph)), graph)

    def forward_at(self, x: Tensor, graph: Any, times: Tensor, **readout: Any) -> Tensor:
        """Logits of the states at each of ``times``: shape [len(times), N (or graphs), out_dim]. ``readout``
        goes to the ODE block (GraphCON's ``half``)."""
        return self.pool(self.decode(self.ode(self.encode(x), graph, times, **readout)), graph)

    @property
    def nfe(self) -> int:
        return self.ode.nfe
