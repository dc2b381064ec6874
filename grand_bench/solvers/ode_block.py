"""Integrate dX/dt = f(t, X) from 0 to T with torchdiffeq, counting function evaluations (NFE).

The ODE block owns the solver settings; the right-hand side f is a ``GraphODEFunc``. Two details that
the original GRAND code gets wrong or leaves implicit are handled here:

* a fixed-step method without a step size is an error (torchdiffeq would silently take one step
  from 0 to T);
* with the adjoint method, gradients reach only the tensors handed to ``odeint_adjoint``. The RHS
  also closes over non-parameter tensors that need gradients (X(0) of the source term, GRAND-l's
  attention computed from X(0)). Handing those to ``odeint_adjoint`` as parameters double-counts
  gradients (autograd walks from one closure into the history of another, e.g. A(X(0)) back to X(0)).
  Instead, under the adjoint the closure tensors named in ``closure_names`` travel in the ODE state
  with zero time derivative; torchdiffeq detaches the state in its backward dynamics, and their
  gradients come out as the adjoint of their initial value.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torchdiffeq import odeint, odeint_adjoint

from ..config import SolverCfg
from ..errors import ConfigError, MaxNFEExceeded, SolverError, unknown_choice
from .rk_backprop import solve_with_reverse_pass
from .runge_kutta import NATIVE_RK, integrate_native
from .schemes import SCHEMES

BACKENDS = ("native", "torchdiffeq")

NOT_CONVERGED = "Functional iteration did not converge"  # torchdiffeq fixed_adams.py's warning

TORCHDIFFEQ_FIXED = ("euler", "midpoint", "rk4", "heun2", "heun3", "explicit_adams", "implicit_adams")
ADAMS_METHODS = ("explicit_adams", "implicit_adams")  # multistep: solver.max_order caps their order
ADAMS_ORDERS = (4, 12)  # torchdiffeq: below 4 an Adams solver is rk4, above 12 it has no coefficients
TORCHDIFFEQ_ADAPTIVE = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
TORCHDIFFEQ_METHODS = TORCHDIFFEQ_FIXED + TORCHDIFFEQ_ADAPTIVE


def methods() -> tuple[str, ...]:
    """Every valid solver.method: torchdiffeq's and the registered schemes (solvers/schemes.py)."""
    return TORCHDIFFEQ_METHODS + tuple(name for name in SCHEMES if name not in TORCHDIFFEQ_METHODS)


def is_fixed_step(method: str) -> bool:
    if method in SCHEMES:
        return SCHEMES[method].fixed_step
    return method in TORCHDIFFEQ_FIXED


class GraphODEFunc(nn.Module):
    """Right-hand side f(t, x) of a graph ODE.

    ``prepare(x0, graph)`` runs once per forward pass before the solve: it receives the graph of this
    pass (one graph for node tasks, a mini-batch of graphs for graph-level tasks) and fixes what is
    constant during the integration (X(0), attention at t=0, a sampled edge set). The counting of
    evaluations and the max-NFE guard live in ``ODEBlock``.
    """

    graph: Any = None

    def prepare(self, x0: Tensor, graph: Any) -> None:
        self.graph = graph

    def floor_kernels(self, x: Tensor) -> Callable[[], object] | None:
        """The unavoidable kernels of one evaluation at state ``x`` (after ``prepare``), as a callable
        timed bare by the benchmark (grand_bench/bench.py) for its overhead ratio; None if not declared."""
        return None

    closure_names: tuple[str, ...] = ()  # attributes holding per-pass tensors that forward reads

    def closures(self) -> dict[str, Tensor]:
        """The closure tensors of this pass that need gradients."""
        found = {name: getattr(self, name, None) for name in self.closure_names}
        return {k: v for k, v in found.items() if isinstance(v, Tensor) and v.requires_grad}


class _WithConstants(nn.Module):
    """f(t, (x, c_1, ..., c_k)) = (f(t, x), 0, ..., 0), with the c_i set as the function's closures."""

    def __init__(self, counted: _CountedFunc, names: list[str]) -> None:
        super().__init__()
        self.counted, self.names = counted, names

    def forward(self, t: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        for name, value in zip(self.names, state[1:], strict=True):
            setattr(self.counted.func, name, value)
        return (self.counted(t, state[0]), *(torch.zeros_like(c) for c in state[1:]))


class _CountedFunc(nn.Module):
    """Counts evaluations of the wrapped RHS and stops a solve that exceeds ``max_nfe``.

    With ``timing`` on (the benchmark only), the wall time spent inside evaluations is summed in
    ``seconds``: the solver's own arithmetic between evaluations is not in it.
    """

    def __init__(self, func: GraphODEFunc, max_nfe: int) -> None:
        super().__init__()
        self.func = func
        self.max_nfe = max_nfe
        self.nfe = 0
        self.phase = "forward"
        self.timing = False
        self.seconds = 0.0

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return self.evaluate(self.func, t, x)

    def evaluate(self, rate: Callable[..., Tensor], t: Tensor, *state: Tensor) -> Tensor:
        """One counted evaluation of ``rate(t, *state)`` (the RHS, or a part of it that a scheme reads
        on its own, such as GraphCON's velocity rate)."""
        self.nfe += 1
        if self.nfe > self.max_nfe:
            raise MaxNFEExceeded(
                f"the {self.phase} ODE solve exceeded solver.max_nfe={self.max_nfe} function evaluations"
            )
        if not self.timing:
            return rate(t, *state)
        start = _clock(state[0])
        out = rate(t, *state)
        self.seconds += _clock(out) - start
        return out


def _clock(x: Tensor) -> float:
    """Wall time after the device has finished the work queued so far (bench timing only)."""
    if x.is_cuda:
        torch.cuda.synchronize(x.device)
    return time.perf_counter()


def solver_tolerances(rtol: float, atol: float, tol_scale: float | None) -> tuple[float, float]:
    """(rtol, atol); with ``tol_scale`` the original code's convention rtol=s*1e-9, atol=s*1e-7."""
    if tol_scale is None:
        return rtol, atol
    return tol_scale * 1e-9, tol_scale * 1e-7


def _options(method: str, step_size: float | None, cfg: SolverCfg, step_key: str) -> dict:
    """torchdiffeq options for ``method``; ``step_key`` names the config key a missing step size comes from."""
    if is_fixed_step(method):
        if step_size is None:
            raise ConfigError(f"fixed-step method '{method}' needs a step size (set {step_key})")
        options: dict = {"step_size": step_size}
        if method == "implicit_adams":
            options["max_iters"] = cfg.max_iters
        if method in ADAMS_METHODS and cfg.max_order is not None:
            options["max_order"] = cfg.max_order
        return options
    return {}


class ODEBlock(nn.Module):
    """X(T) = X(0) + int_0^T f(t, X) dt, solved by torchdiffeq with the configured method."""

    def __init__(self, func: GraphODEFunc, cfg: SolverCfg, time: float) -> None:
        super().__init__()
        if cfg.method not in methods():
            raise ConfigError(unknown_choice("solver.method", cfg.method, methods()))
        if cfg.backend not in BACKENDS:
            raise ConfigError(unknown_choice("solver.backend", cfg.backend, BACKENDS))
        self.counted = _CountedFunc(func, cfg.max_nfe)
        self.cfg = cfg
        self.time = time
        self.rtol, self.atol = solver_tolerances(cfg.rtol, cfg.atol, cfg.tol_scale)
        self.options = _options(cfg.method, cfg.step_size, cfg, "solver.step_size")
        self.adjoint_method = cfg.adjoint_method or cfg.method
        if cfg.adjoint and (cfg.method not in TORCHDIFFEQ_METHODS or self.adjoint_method not in TORCHDIFFEQ_METHODS):
            bad = cfg.method if cfg.method not in TORCHDIFFEQ_METHODS else self.adjoint_method
            raise ConfigError(
                f"solver.adjoint=true needs torchdiffeq methods; '{bad}' is a grand_bench scheme"
                f" (use adjoint=false, or one of: {', '.join(TORCHDIFFEQ_METHODS)})"
            )
        adjoint_step = cfg.adjoint_step_size if cfg.adjoint_step_size is not None else cfg.step_size
        self.adjoint_options = {}
        if cfg.adjoint:
            self.adjoint_options = _options(self.adjoint_method, adjoint_step, cfg, "solver.adjoint_step_size")
        self.adjoint_rtol, self.adjoint_atol = solver_tolerances(
            cfg.adjoint_rtol, cfg.adjoint_atol, cfg.adjoint_tol_scale
        )

    @property
    def func(self) -> GraphODEFunc:
        return self.counted.func

    @property
    def nfe(self) -> int:
        return self.counted.nfe

    def reset_nfe(self, phase: str = "forward") -> None:
        self.counted.nfe = 0
        self.counted.phase = phase

    def initial_state(self, x0: Tensor) -> Tensor:
        """The ODE state the solve starts from, given the encoded X(0) (a second-order block adds velocity)."""
        return x0

    def forward(self, x0: Tensor, graph: Any, times: Tensor | None = None) -> Tensor:
        """Integrate from X(0)=x0 on ``graph``. Returns X(T), or the states at ``times`` ([len(times), ...])."""
        self.func.prepare(x0, graph)
        t = times if times is not None else torch.tensor([0.0, self.time])
        t = t.to(device=x0.device, dtype=x0.dtype)
        try:
            with warnings.catch_warnings():
                # torchdiffeq's implicit_adams only warns when its corrector does not converge: make it fail the run.
                warnings.filterwarnings("error", message=NOT_CONVERGED)
                if self.cfg.method in SCHEMES:
                    out = SCHEMES[self.cfg.method].integrate(self.counted, x0, t, self.cfg)
                elif self.cfg.adjoint and self.training:
                    out = self._adjoint_solve(x0, t)
                elif self._reverse_pass(x0):
                    out = solve_with_reverse_pass(self, x0, t)
                elif self.cfg.backend == "native" and self.cfg.method in NATIVE_RK:
                    out = integrate_native(
                        self.counted, self.cfg.method, x0, t, self.cfg.step_size, self.rtol, self.atol
                    )
                else:
                    out = odeint(
                        self.counted,
                        x0,
                        t,
                        rtol=self.rtol,
                        atol=self.atol,
                        method=self.cfg.method,
                        options=self.options,
                    )
        except AssertionError as err:  # torchdiffeq signals step-size underflow with assert
            raise SolverError(f"ODE solver '{self.cfg.method}' broke down: {err}") from err
        except UserWarning as err:  # only NOT_CONVERGED is turned into an error above
            raise SolverError(
                f"the implicit solve of '{self.cfg.method}' did not converge in solver.max_iters="
                f"{self.cfg.max_iters} iterations"
            ) from err
        if not torch.isfinite(out).all():
            raise SolverError(f"ODE state became NaN/Inf (solver '{self.cfg.method}', T={self.time})")
        return out if times is not None else out[-1]

    def _reverse_pass(self, x0: Tensor) -> bool:
        """Whether this solve backpropagates through solvers/rk_backprop.py: a native RK method, asked for,
        and something to differentiate."""
        cfg = self.cfg
        native = cfg.backend == "native" and cfg.method in NATIVE_RK
        if not (native and cfg.reverse_pass and torch.is_grad_enabled()):
            return False
        return x0.requires_grad or any(p.requires_grad for p in self.func.parameters()) or bool(self.func.closures())

    def _adjoint_solve(self, x0: Tensor, t: Tensor) -> Tensor:
        closures = self.func.closures()
        func = _WithConstants(self.counted, list(closures)) if closures else self.counted
        state = (x0, *closures.values()) if closures else x0
        try:
            out = odeint_adjoint(
                func,
                state,
                t,
                rtol=self.rtol,
                atol=self.atol,
                method=self.cfg.method,
                options=self.options,
                adjoint_rtol=self.adjoint_rtol,
                adjoint_atol=self.adjoint_atol,
                adjoint_method=self.adjoint_method,
                adjoint_options=self.adjoint_options,
                adjoint_params=tuple(p for p in self.func.parameters() if p.requires_grad),
            )
        finally:
            for name, value in closures.items():  # the solver left its detached copies there
                setattr(self.func, name, value)
        return out[0] if closures else out

    def extra_repr(self) -> str:
        step = f", step_size={self.cfg.step_size}" if is_fixed_step(self.cfg.method) else ""
        return f"method={self.cfg.method}, T={self.time}{step}, rtol={self.rtol:.2e}, atol={self.atol:.2e}"
