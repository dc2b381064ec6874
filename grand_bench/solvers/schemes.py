"""Integration schemes grand_bench implements itself, beside torchdiffeq's methods.

A scheme integrates dx/dt = f(t, x) and returns the states at the requested times, stacked along a new
first dimension (torchdiffeq's ``odeint`` contract), so ``ODEBlock`` treats both kinds alike. Register
one with ``@register_scheme("name", fixed_step=True)``; its module must be imported in
``solvers/__init__.py`` so the name is known when configs are validated.

Schemes here are for what torchdiffeq lacks (implicit linear solves, IMEX / symplectic steps) or
does slowly; they run under plain backprop (``solver.adjoint=true`` needs a torchdiffeq method).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from torch import Tensor

from ..config import SolverCfg

RHS = Callable[[Tensor, Tensor], Tensor]  # f(t, x)


class SchemeFn(Protocol):
    def __call__(self, func: RHS, x0: Tensor, times: Tensor, cfg: SolverCfg) -> Tensor: ...


@dataclass(frozen=True)
class Scheme:
    name: str
    integrate: SchemeFn  # (f, x0, times [t0 < t1 < ...], solver cfg) -> states [len(times), *x0.shape]
    fixed_step: bool  # needs solver.step_size


SCHEMES: dict[str, Scheme] = {}


def register_scheme(name: str, fixed_step: bool = True) -> Callable[[SchemeFn], SchemeFn]:
    def add(fn: SchemeFn) -> SchemeFn:
        if name in SCHEMES:
            raise ValueError(f"solver scheme '{name}' is registered twice")
        SCHEMES[name] = Scheme(name, fn, fixed_step)
        return fn

    return add


def fixed_grid(t0: float, t1: float, step_size: float) -> list[float]:
    """Times t0, t0+h, ..., t1; the last step is shortened to land on t1 exactly."""
    tol = 1e-9 * max(1.0, abs(t1))
    grid = [t0 + k * step_size for k in range(int((t1 - t0) / step_size + 1e-9) + 1)]
    if t1 - grid[-1] > tol:
        grid.append(t1)
    grid[-1] = t1
    return grid
