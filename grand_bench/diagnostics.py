"""Oversmoothing diagnostics shared by every model: Dirichlet energy of the hidden states per step or layer.

* ``dirichlet_energy`` (GraphCON eq. 13):  E(X) = 1/N sum_i sum_{j in N(i)} ||X_i - X_j||^2. It decays
  exponentially with depth when a model oversmooths (GraphCON Fig. 2).
* ``normalised_dirichlet_energy`` (GRAFF §3): the Rayleigh quotient tr(X^T Delta X) / ||X||^2 with
  Delta = I - D^-1/2 (A + I) D^-1/2, in [0, 2): near 0 the state is low-frequency dominated (smooth), large
  values mean high-frequency dominance (sharpening, what heterophily needs). Scale-free, so it separates
  collapse to a constant from a state that merely shrinks.

States come from ``hidden_states``: for a continuous model (``ContinuousGNN``: ``encode`` and an ODE
block) the solution at every step of a fixed-step solver (at ``points`` evenly spaced times if set, or for
adaptive solvers); for a discrete model the output of every PyG message-passing layer, caught by forward
hooks. ``layer_energies`` measures an untrained model as GraphCON's Fig. 2 does: the input X^0 goes straight
into the ODE block (no encoder), or through every layer of a discrete model. ``BestModelDiagnostics`` keeps the
weights of the best-validation epoch during training and measures that model once training ends (the final
model if the run was resumed past its best epoch); the ODE function may add its own entries with
``diagnostics(states, times)`` (GRAFF: the spectrum of W and E(F(t))).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.utils import add_remaining_self_loops, remove_self_loops, scatter

from .config import DiagnosticsCfg
from .solvers import fixed_grid, is_fixed_step

ADAPTIVE_POINTS = 21


def dirichlet_energy(x: Tensor, edge_index: Tensor, num_nodes: int | None = None) -> Tensor:
    """1/N sum over edges (i, j) of ||x_i - x_j||^2 (GraphCON eq. 13; each undirected edge listed both ways)."""
    n = num_nodes if num_nodes is not None else x.shape[0]
    edge_index, _ = remove_self_loops(edge_index)
    src, dst = edge_index
    return (x[dst] - x[src]).pow(2).sum() / n


def normalised_dirichlet_energy(x: Tensor, edge_index: Tensor, num_nodes: int | None = None) -> Tensor:
    """tr(X^T (I - Abar) X) / ||X||_F^2 with Abar = D^-1/2 (A + I) D^-1/2 (GRAFF's normalised energy)."""
    n = num_nodes if num_nodes is not None else x.shape[0]
    edge_index, _ = add_remaining_self_loops(edge_index, num_nodes=n)
    src, dst = edge_index
    degree = torch.bincount(dst, minlength=n).to(x.dtype)
    inv_sqrt = degree.rsqrt()
    weight = (inv_sqrt[dst] * inv_sqrt[src]).unsqueeze(-1)
    abar_x = scatter(weight * x[src], dst, dim=0, dim_size=n, reduce="sum")
    norm = x.pow(2).sum()
    return (norm - (x * abar_x).sum()) / norm.clamp(min=torch.finfo(x.dtype).tiny)


def diagnostic_times(block: nn.Module, points: int | None) -> Tensor:
    """Every step of a fixed-step solver from 0 to T, or ``points`` evenly spaced times."""
    step = block.cfg.step_size
    if points is None and is_fixed_step(block.cfg.method) and step is not None:
        return torch.tensor(fixed_grid(0.0, float(block.time), float(step)))
    return torch.linspace(0.0, float(block.time), points or ADAPTIVE_POINTS)


@torch.no_grad()
def hidden_states(
    model: nn.Module, x: Tensor, graph: Any, points: int | None = None
) -> tuple[str, list[float], Tensor | list[Tensor]]:
    """(axis, positions, states [K, N, d]): ODE states over time, or the outputs of every PyG layer."""
    model.eval()
    block = getattr(model, "ode", None)
    if block is not None and hasattr(model, "encode"):
        times = diagnostic_times(block, points).to(x.device)
        return "time", [round(t, 6) for t in times.tolist()], block(model.encode(x), graph, times)
    outputs: list[Tensor] = []
    hooks = [
        module.register_forward_hook(lambda _m, _i, out: outputs.append(out[0] if isinstance(out, tuple) else out))
        for module in model.modules()
        if isinstance(module, MessagePassing)
    ]
    try:
        model(x, graph)
    finally:
        for hook in hooks:
            hook.remove()
    if not outputs:
        raise ValueError(f"diagnostics: {type(model).__name__} has neither an ODE block nor PyG message-passing layers")
    return "layer", list(range(1, len(outputs) + 1)), outputs


@torch.no_grad()
def layer_energies(model: nn.Module, x: Tensor, graph: Any, edge_index: Tensor) -> list[float]:
    """E(X^0), E(X^1), ..., E(X^L) (eq. 13): X^0 = ``x`` itself and X^n the n-th layer's output, or the ODE
    block's state after n steps when ``x`` is fed to the block directly (``x`` must have the hidden width)."""
    model.eval()
    block = getattr(model, "ode", None)
    if block is not None:
        states = block(x, graph, diagnostic_times(block, None).to(x.device))
    else:
        states = [x, *hidden_states(model, x, graph)[2]]
    return [float(dirichlet_energy(s, edge_index, x.shape[0])) for s in states]


@torch.no_grad()
def collect(model: nn.Module, x: Tensor, graph: Any, edge_index: Tensor, cfg: DiagnosticsCfg) -> dict:
    """The diagnostics of ``model`` on one graph, as stored in the run record."""
    axis, positions, states = hidden_states(model, x, graph, cfg.points)
    out: dict = {
        "axis": axis,
        axis: positions,
        "dirichlet": [float(dirichlet_energy(s, edge_index, x.shape[0])) for s in states],
        "dirichlet_normalised": [
            round(float(normalised_dirichlet_energy(s, edge_index, x.shape[0])), 6) for s in states
        ],
    }
    func = getattr(getattr(model, "ode", None), "func", None)
    if axis == "time" and hasattr(func, "diagnostics"):
        out.update(func.diagnostics(states, torch.tensor(positions)))
    return out


class BestModelDiagnostics:
    """A training callback that keeps the best-validation weights, then ``collect`` on that model."""

    def __init__(self, cfg: DiagnosticsCfg) -> None:
        self.cfg = cfg
        self.best_state: dict | None = None
        self.best_epoch: int | None = None

    def on_epoch_end(self, trainer, epoch: int, metrics: dict[str, float]) -> None:
        if trainer.outcome.best_epoch == epoch:
            self.best_state = copy.deepcopy(trainer.model.state_dict())
            self.best_epoch = epoch

    def collect(self, model: nn.Module, x: Tensor, graph: Any, edge_index: Tensor) -> dict:
        if self.best_state is None:
            out = collect(model, x, graph, edge_index, self.cfg)
        else:  # measure the best weights, then put the final ones back
            final = copy.deepcopy(model.state_dict())
            model.load_state_dict(self.best_state)
            try:
                out = collect(model, x, graph, edge_index, self.cfg)
            finally:
                model.load_state_dict(final)
        return {"model": "best_val_epoch" if self.best_state is not None else "final", "epoch": self.best_epoch, **out}
