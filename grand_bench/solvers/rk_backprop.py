"""Backpropagation through a native Runge-Kutta solve with a hand-written reverse pass (issue 7).

Plain autograd through the solve records every stage combination ``Y_i = y + h sum_j a_ij k_j`` as a chain
of add/mul nodes; its backward then multiplies and accumulates one gradient per (stage, term) pair and
pays the autograd engine's per-node cost. On a small graph that glue costs more than the evaluations.

Here the solve runs outside autograd except for the evaluations themselves: each k_i = f(t_i, Y_i) is taken
at a detached copy of Y_i, so its graph reaches only Y_i, the ODE function's per-pass closures (detached
copies, as under the adjoint) and its parameters. The backward is the discrete adjoint of the explicit
Runge-Kutta map (exact gradients of the discrete solve, like autograd, not the continuous adjoint): for
a step y' = y + h sum_j b_j k_j, going over its stages in reverse,

    dL/dk_j = h b_j dL/dy' + h sum_{i>j} a_ij dL/dY_i,    dL/dY_j = (df/dY at Y_j)^T dL/dk_j,
    dL/dy   = dL/dy' + sum_j dL/dY_j,

with one vector-Jacobian product per evaluation and one fused combination per stage. An FSAL method's
last stage is the next step's first: its gradient is complete when that step is reversed. Step sizes
are constants of the graph, as in the forward (the step-size control runs outside autograd).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .runge_kutta import TABLEAUX, integrate_native


class Recorder:
    """The RHS as the integrators see it: evaluates f with a graph from a detached input, returns the rate
    detached, and keeps (input, rate with graph) per evaluation for the reverse pass."""

    def __init__(self, func) -> None:
        self.func = func
        self.records: dict[int, tuple[Tensor, Tensor]] = {}  # id(detached rate) -> (input, rate)
        self.steps: list[tuple[float, list[Tensor]]] = []  # accepted steps: (h, their stages' rates)
        self.reached = [0]  # output i is the state after reached[i] accepted steps (output 0: y0)

    def __call__(self, t: Tensor, y: Tensor) -> Tensor:
        y_in = y.detach().requires_grad_()
        with torch.enable_grad():
            k = self.func(t, y_in)
        out = k.detach()
        self.records[id(out)] = (y_in, k)
        return out

    def accept(self, h: float, stages: list[Tensor]) -> None:
        self.steps.append((h, stages))

    def output(self) -> None:
        self.reached.append(len(self.steps))

    def release_rejected(self) -> None:
        """Drop the graphs of evaluations no accepted step uses (rejected adaptive steps, the initial-step probe)."""
        used = {id(k) for _, stages in self.steps for k in stages}
        self.records = {key: rec for key, rec in self.records.items() if key in used}


class _RKSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec: dict, y0: Tensor, *inputs: Tensor) -> Tensor:
        block, closures = spec["block"], spec["closures"]
        func, cfg = block.counted, block.cfg
        originals = {name: getattr(func.func, name) for name in closures}
        leaves = [x.detach().requires_grad_(x.requires_grad) for x in inputs[: len(closures)]]
        for name, leaf in zip(closures, leaves, strict=True):
            setattr(func.func, name, leaf)
        recorder = Recorder(func)
        try:
            out = integrate_native(
                recorder, cfg.method, y0.detach(), spec["times"], cfg.step_size, block.rtol, block.atol,
                recorder.accept, recorder.output,
            )  # fmt: skip
        finally:
            for name, value in originals.items():
                setattr(func.func, name, value)
        recorder.release_rejected()
        ctx.recorder, ctx.tableau = recorder, TABLEAUX[cfg.method]
        ctx.leaves = [*leaves, *inputs[len(closures) :]]
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> Any:
        recorder, tab = ctx.recorder, ctx.tableau
        leaves = ctx.leaves
        wanted = [i for i, leaf in enumerate(leaves) if leaf.requires_grad]
        leaf_grads: list[Tensor | None] = [None] * len(leaves)
        reached = recorder.reached
        lam = grad_out[-1].clone()
        out_index = len(reached) - 2
        while out_index >= 0 and reached[out_index] == len(recorder.steps):  # repeated final times
            lam.add_(grad_out[out_index])
            out_index -= 1
        for step_index in range(len(recorder.steps) - 1, -1, -1):
            h, stages = recorder.steps[step_index]
            stage_grads: list[Tensor | None] = [None] * len(stages)
            for j, b in enumerate(tab.b):
                if b != 0.0:
                    stage_grads[j] = lam * (h * b)
            lam_y = lam
            for j in range(len(stages) - 1, -1, -1):
                if stage_grads[j] is None:
                    continue
                y_in, k = recorder.records.pop(id(stages[j]))
                grads = torch.autograd.grad(k, [y_in, *(leaves[i] for i in wanted)], stage_grads[j], allow_unused=True)
                mu = grads[0]
                for i, g in zip(wanted, grads[1:], strict=True):
                    if g is not None:
                        leaf_grads[i] = g.clone() if leaf_grads[i] is None else leaf_grads[i].add_(g)
                if mu is None:
                    continue
                lam_y = lam_y + mu if lam_y is lam else lam_y.add_(mu)
                for i, a in enumerate(tab.a[j]):  # Y_j = y + h sum_i a_ji k_i
                    if a != 0.0:
                        previous = stage_grads[i]
                        stage_grads[i] = mu * (h * a) if previous is None else previous.add_(mu, alpha=h * a)
            lam = lam_y  # now dL/dy of the state before this step, i.e. after step_index steps
            while out_index >= 0 and reached[out_index] == step_index:
                lam = lam + grad_out[out_index]
                out_index -= 1
        return (None, lam, *leaf_grads)


def solve_with_reverse_pass(block, y0: Tensor, times: Tensor) -> Tensor:
    """The native RK solve of ``block`` (an ODEBlock, its method and tolerances) from y0 over ``times``,
    differentiable through ``_RKSolve``'s reverse pass with respect to y0, the function's closures and its
    parameters."""
    func = block.func
    closures = list(func.closures())
    params = [p for p in func.parameters() if p.requires_grad]
    spec = {"block": block, "closures": closures, "times": times}
    return _RKSolve.apply(spec, y0, *(getattr(func, name) for name in closures), *params)
