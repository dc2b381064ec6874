"""Partitioned (IMEX / symplectic) schemes for second-order dynamics written as x' = g(x, y), y' = h(x, y).

The state is [x, y] concatenated along the last dimension: the first half is the position x, the second
half the velocity y (GraphCON's [X, Y]). Both schemes evaluate the right-hand side once per step:

* ``symplectic_euler`` (GraphCON eq. 3, the IMEX step):
      y_{n+1} = y_n + h * h(x_n, y_n),    x_{n+1} = x_n + h * g(x_n, y_{n+1})
  For GraphCON (g = y) this is Y^n = Y^{n-1} + dt (sigma(F(X^{n-1})) - gamma X^{n-1} - alpha Y^{n-1}),
  X^n = X^{n-1} + dt Y^n. First order; symplectic for Hamiltonian systems.
* ``leapfrog`` (Stormer-Verlet, drift-kick-drift):
      x_{n+1/2} = x_n + h/2 g(x_n, y_n),  y_{n+1} = y_n + h * h(x_{n+1/2}, y_n),
      x_{n+1} = x_{n+1/2} + h/2 g(x_{n+1/2}, y_{n+1})
  Second order and symplectic when h does not depend on y (no damping); with damping (alpha > 0) the
  damping term is taken explicitly at y_n, which is first order in it.

The velocity rate h is read from the ODE function's ``velocity_rate(t, x, y)`` when it has one (one counted
evaluation, no concatenation of the state), otherwise it is the second half of the counted right-hand side
f(t, [x, y]). Likewise the position rate g comes from ``position_rate(t, x, y)`` (GraphCON: g = y, no message
passing, not counted as an evaluation), otherwise it is the first half of another full evaluation. An ODE
function may also define ``after_step(x, y) -> (x, y)``, applied to the initial state and after every step
(GraphCON's heterophilic code drops out X and Y between layers); it runs only in these schemes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..config import SolverCfg
from .schemes import RHS, fixed_grid, register_scheme


def split_state(state: Tensor) -> tuple[Tensor, Tensor]:
    """(position, velocity): the two halves of the last dimension."""
    half = state.shape[-1] // 2
    if 2 * half != state.shape[-1]:
        raise ValueError(f"a position/velocity state needs an even last dimension, got {state.shape[-1]}")
    return state[..., :half], state[..., half:]


Rate = Callable[[Tensor, Tensor, Tensor], Tensor]  # (t, x, y) -> rate
AfterStep = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def _inner(func: RHS):
    return getattr(func, "func", func)  # ODEBlock hands schemes its counting wrapper around the ODE function


def _position_rate(func: RHS) -> Rate:
    rate = getattr(_inner(func), "position_rate", None)
    if rate is not None:
        return rate
    return lambda t, x, y: split_state(func(t, torch.cat([x, y], -1)))[0]


def _velocity_rate(func: RHS) -> Rate:
    rate, evaluate = getattr(_inner(func), "velocity_rate", None), getattr(func, "evaluate", None)
    if rate is not None and evaluate is not None:
        return lambda t, x, y: evaluate(rate, t, x, y)
    return lambda t, x, y: split_state(func(t, torch.cat([x, y], -1)))[1]


def _symplectic_euler_step(g: Rate, v: Rate, t: Tensor, h: float, x: Tensor, y: Tensor):
    y = torch.add(y, v(t, x, y), alpha=h)
    return torch.add(x, g(t, x, y), alpha=h), y


def _leapfrog_step(g: Rate, v: Rate, t: Tensor, h: float, x: Tensor, y: Tensor):
    x_half = torch.add(x, g(t, x, y), alpha=0.5 * h)
    y = torch.add(y, v(t + 0.5 * h, x_half, y), alpha=h)
    return torch.add(x_half, g(t + 0.5 * h, x_half, y), alpha=0.5 * h), y


def _integrate(step, func: RHS, x0: Tensor, times: Tensor, cfg: SolverCfg) -> Tensor:
    """States at ``times``; each interval between output times is covered by steps of cfg.step_size."""
    g, v = _position_rate(func), _velocity_rate(func)
    after: AfterStep | None = getattr(_inner(func), "after_step", None)
    x, y = split_state(x0)
    if after is not None:
        x, y = after(x, y)
    out = [torch.cat([x, y], -1)]
    for t0, t1 in zip(times[:-1].tolist(), times[1:].tolist(), strict=True):
        grid = fixed_grid(t0, t1, cfg.step_size)
        for a, b in zip(grid[:-1], grid[1:], strict=True):
            x, y = step(g, v, torch.tensor(a, dtype=x0.dtype, device=x0.device), b - a, x, y)
            if after is not None:
                x, y = after(x, y)
        out.append(torch.cat([x, y], -1))
    return torch.stack(out)


@register_scheme("symplectic_euler", fixed_step=True)
def symplectic_euler(func: RHS, x0: Tensor, times: Tensor, cfg: SolverCfg) -> Tensor:
    return _integrate(_symplectic_euler_step, func, x0, times, cfg)


@register_scheme("leapfrog", fixed_step=True)
def leapfrog(func: RHS, x0: Tensor, times: Tensor, cfg: SolverCfg) -> Tensor:
    return _integrate(_leapfrog_step, func, x0, times, cfg)
