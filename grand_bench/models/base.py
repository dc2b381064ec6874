"""Encoder -> ODE block -> decoder, the pipeline every continuous-depth model shares (reference §1.1).

x -> dropout(input_dropout) -> Linear encoder [-> 2 residual MLP blocks] [-> BatchNorm] = X(0)
X(T) = ODE block(X(0)); logits = Linear(dropout(ReLU(X(T)))). No dropout inside the ODE; the ODE
function's weights are shared over time.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..solvers import ODEBlock


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
    ) -> None:
        super().__init__()
        self.input_dropout = nn.Dropout(input_dropout)
        self.encoder = nn.Linear(in_dim, hidden_dim)
        self.mlp = ResidualMLP(hidden_dim, dropout) if use_mlp else nn.Identity()
        self.norm = nn.BatchNorm1d(hidden_dim) if batch_norm else nn.Identity()
        self.ode = ode
        self.dropout = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden_dim, out_dim)

    def encode(self, x: Tensor) -> Tensor:
        return self.norm(self.mlp(self.encoder(self.input_dropout(x))))

    def decode(self, h: Tensor) -> Tensor:
        return self.decoder(self.dropout(h.relu()))

    def forward(self, x: Tensor, graph: Any) -> Tensor:
        return self.decode(self.ode(self.encode(x), graph))

    def forward_at(self, x: Tensor, graph: Any, times: Tensor) -> Tensor:
        """Logits of the states at each of ``times``: shape [len(times), N, out_dim]."""
        return self.decode(self.ode(self.encode(x), graph, times))

    @property
    def nfe(self) -> int:
        return self.ode.nfe
