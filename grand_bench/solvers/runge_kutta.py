"""Explicit Runge-Kutta integration without torchdiffeq's per-step overhead (issue 7).

torchdiffeq stacks the stages of every step into one tensor along a new last dimension and forms each
stage input as a strided reduction over it; on a sparse graph ODE whose function costs well under a
millisecond that glue (and its backward) costs several times the function itself. Here every stage
input is an axpy chain, ``y + h * sum_j a_ij k_j``, the error estimate and the step-size control run
outside autograd, and an adaptive step is shortened to land on each requested output time instead of
overshooting and interpolating.

The tableaux and the step-size controller are torchdiffeq's (Dormand-Prince 5(4) with FSAL,
Bogacki-Shampine 3(2), adaptive Heun 2(1); the initial-step heuristic of Hairer et al. II.4; the rk4
"3/8 rule"), so tolerances mean the same thing in both backends. Results agree with torchdiffeq to
within the tolerance (tests/test_solvers.py); the step sequences differ only at the final step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import SolverError
from .schemes import fixed_grid

RHS = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Tableau:
    c: tuple[float, ...]  # stage times
    a: tuple[tuple[float, ...], ...]  # a[i] weights stages 0..i-1 for stage i (a[0] is empty)
    b: tuple[float, ...]  # solution weights
    b_error: tuple[float, ...] = ()  # b - b_hat of the embedded lower-order solution (adaptive only)
    order: int = 1  # order of the solution that is kept
    fsal: bool = False  # the last stage is f(t + h, y_next): reuse it as the next step's first stage


_1_3, _2_3 = 1 / 3, 2 / 3

TABLEAUX: dict[str, Tableau] = {
    "euler": Tableau(c=(0.0,), a=((),), b=(1.0,)),
    "midpoint": Tableau(c=(0.0, 0.5), a=((), (0.5,)), b=(0.0, 1.0), order=2),
    "rk4": Tableau(  # torchdiffeq's "rk4" is Kutta's 3/8 rule
        c=(0.0, _1_3, _2_3, 1.0),
        a=((), (_1_3,), (-_1_3, 1.0), (1.0, -1.0, 1.0)),
        b=(1 / 8, 3 / 8, 3 / 8, 1 / 8),
        order=4,
    ),
    "dopri5": Tableau(
        c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
        a=(
            (),
            (1 / 5,),
            (3 / 40, 9 / 40),
            (44 / 45, -56 / 15, 32 / 9),
            (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
            (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
            (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
        ),
        b=(35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
        b_error=(
            35 / 384 - 1951 / 21600,
            0.0,
            500 / 1113 - 22642 / 50085,
            125 / 192 - 451 / 720,
            -2187 / 6784 + 12231 / 42400,
            11 / 84 - 649 / 6300,
            -1 / 60,
        ),
        order=5,
        fsal=True,
    ),
    "bosh3": Tableau(
        c=(0.0, 0.5, 0.75, 1.0),
        a=((), (0.5,), (0.0, 0.75), (2 / 9, 1 / 3, 4 / 9)),
        b=(2 / 9, 1 / 3, 4 / 9, 0.0),
        b_error=(2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8),
        order=3,
        fsal=True,
    ),
    "adaptive_heun": Tableau(c=(0.0, 1.0), a=((), (1.0,)), b=(0.5, 0.5), b_error=(0.5 - 1.0, 0.5), order=2),
}
FIXED_RK = ("euler", "midpoint", "rk4")
ADAPTIVE_RK = ("dopri5", "bosh3", "adaptive_heun")
NATIVE_RK = FIXED_RK + ADAPTIVE_RK

SAFETY, IFACTOR, DFACTOR = 0.9, 10.0, 0.2  # torchdiffeq's step-size controller constants


def combine(y: Tensor | None, h: float, weights: tuple[float, ...], stages: list[Tensor]) -> Tensor:
    """y + h * sum_j weights[j] * stages[j] (y None: the sum alone), one fused multiply-add per non-zero weight."""
    out = None
    for w, k in zip(weights, stages, strict=False):
        if w == 0.0:
            continue
        if out is None:
            out = k * (h * w) if y is None else torch.add(y, k, alpha=h * w)
        else:
            out.add_(k, alpha=h * w)
    return y if out is None else out


def rk_step(func: RHS, tab: Tableau, t: float, y: Tensor, h: float, k0: Tensor) -> tuple[Tensor, list[Tensor]]:
    """One step from (t, y) with first stage k0 = f(t, y); returns y_next and all stages."""
    stages, y_stage = [k0], y
    for c, a in zip(tab.c[1:], tab.a[1:], strict=True):
        y_stage = combine(y, h, a, stages)
        stages.append(func(y.new_tensor(t + c * h), y_stage))
    if tab.fsal:  # the last stage was evaluated at y_next itself
        return y_stage, stages
    return combine(y, h, tab.b, stages), stages


def rms(x: Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


@torch.no_grad()
def initial_step(func: RHS, t0: float, y0: Tensor, f0: Tensor, order: int, rtol: float, atol: float) -> float:
    """Hairer, Norsett & Wanner II.4's starting step for a method of ``order`` (torchdiffeq's rule): one NFE."""
    scale = atol + y0.abs() * rtol
    d0, d1 = rms(y0 / scale), rms(f0 / scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    f1 = func(y0.new_tensor(t0 + h0), y0 + h0 * f0)
    d2 = rms((f1 - f0) / scale) / h0
    flat = d1 <= 1e-15 and d2 <= 1e-15
    h1 = max(1e-6, h0 * 1e-3) if flat else (0.01 / max(d1, d2)) ** (1.0 / order)
    return min(100 * h0, h1)


@torch.no_grad()
def error_ratio(
    h: float, b_error: tuple[float, ...], stages: list[Tensor], y_abs: Tensor, y_next: Tensor, rtol: float, atol: float
) -> tuple[float, Tensor]:
    """rms(err / (atol + rtol max(|y|, |y_next|))) with err = h sum_j b_error[j] k_j, and |y_next| (the next
    step's |y|). In place where possible: on a small graph these passes cost as much as the evaluations."""
    error = combine(None, h, b_error, stages)
    y_next_abs = y_next.detach().abs()
    scale = torch.maximum(y_abs, y_next_abs).mul_(rtol).add_(atol)
    ratio = float(torch.linalg.vector_norm(error.div_(scale))) / error.numel() ** 0.5
    return ratio, y_next_abs


def next_step(h: float, error_ratio: float, order: int) -> float:
    if error_ratio == 0:
        return h * IFACTOR
    dfactor = 1.0 if error_ratio < 1 else DFACTOR
    return h * min(IFACTOR, max(SAFETY / error_ratio ** (1.0 / order), dfactor))


OnStep = Callable[[float, list[Tensor]], None]  # (h, the step's stages): an accepted step, for a reverse pass


def _ignore(*args) -> None:
    return None


def integrate_fixed(
    func: RHS,
    method: str,
    y0: Tensor,
    times: Tensor,
    step_size: float,
    on_step: OnStep = _ignore,
    on_output: Callable[[], None] = _ignore,
) -> Tensor:
    """States at ``times`` with steps of ``step_size``, each interval's last step shortened to land on it.
    ``on_step`` / ``on_output`` report every step and every output time (solvers/rk_backprop.py)."""
    tab = TABLEAUX[method]
    ts = times.tolist()
    y, out = y0, [y0]
    for t_start, t_end in zip(ts[:-1], ts[1:], strict=True):
        grid = fixed_grid(t_start, t_end, step_size)
        for t, t_next in zip(grid[:-1], grid[1:], strict=True):
            y, stages = rk_step(func, tab, t, y, t_next - t, func(y.new_tensor(t), y))
            on_step(t_next - t, stages)
        out.append(y)
        on_output()
    return torch.stack(out)


def integrate_adaptive(
    func: RHS,
    method: str,
    y0: Tensor,
    times: Tensor,
    rtol: float,
    atol: float,
    on_step: OnStep = _ignore,
    on_output: Callable[[], None] = _ignore,
) -> Tensor:
    """States at ``times`` with an error-controlled step (rms norm of err / (atol + rtol max|y|)); the
    callbacks as in ``integrate_fixed`` (rejected steps are not reported)."""
    tab = TABLEAUX[method]
    ts = times.tolist()
    t, y = ts[0], y0
    k0 = func(y0.new_tensor(t), y0)
    h = initial_step(func, t, y0, k0, tab.order, rtol, atol)
    out = [y0]
    y_abs = y0.detach().abs()
    for t_out in ts[1:]:
        while t < t_out:
            step = min(h, t_out - t)
            if t + step <= t:
                raise SolverError(f"adaptive step size underflow at t={t:.6g} (step {h:.3g})")
            y_next, stages = rk_step(func, tab, t, y, step, k0)
            ratio, y_next_abs = error_ratio(step, tab.b_error, stages, y_abs, y_next, rtol, atol)
            if ratio != ratio:  # NaN: the state blew up inside the step
                raise SolverError(f"ODE state became NaN/Inf at t={t:.6g} (method {method})")
            if ratio <= 1:
                on_step(step, stages)
                t, y, y_abs = (t_out if step == t_out - t else t + step), y_next, y_next_abs
                # torchdiffeq reuses the last stage even without FSAL (adaptive_heun); that is f at the
                # Euler predictor, not at y_next, so a non-FSAL method evaluates f(t, y_next) afresh.
                k0 = stages[-1] if tab.fsal else func(y.new_tensor(t), y)
            h = next_step(step, ratio, tab.order)
        out.append(y)
        on_output()
    return torch.stack(out)


def integrate_native(
    func: RHS,
    method: str,
    y0: Tensor,
    times: Tensor,
    step_size: float | None,
    rtol: float,
    atol: float,
    on_step: OnStep = _ignore,
    on_output: Callable[[], None] = _ignore,
) -> Tensor:
    """``integrate_fixed`` for a fixed-step ``method`` (with ``step_size``), else ``integrate_adaptive``."""
    if method in FIXED_RK:
        return integrate_fixed(func, method, y0, times, step_size, on_step, on_output)
    return integrate_adaptive(func, method, y0, times, rtol, atol, on_step, on_output)
