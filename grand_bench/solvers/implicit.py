"""Implicit schemes for right-hand sides affine in the state: backward Euler, Adams-Moulton, IMEX Euler.

GRAND §3.3 (Thm. 2, Fig. 3): for linear diffusion dX/dt = (A - I) X the explicit Euler step is stable only
for tau < 1, the implicit step (I - tau (A - I)) X_{k+1} = X_k for every tau. With f(t, x) = M(t) x + b(t):

* ``backward_euler``: (I - tau M_{k+1}) x_{k+1} = x_k + tau b_{k+1}                         (L-stable, order 1)
* ``adams_moulton``: the order-2 Adams-Moulton corrector (trapezoidal rule)
  (I - tau/2 M_{k+1}) x_{k+1} = x_k + tau/2 f(t_k, x_k) + tau/2 b_{k+1}, started from the explicit
  Adams-Bashforth-2 predictor (Euler on the first step) as the Krylov initial guess. The corrector is
  *solved*, not iterated to a fixed point as torchdiffeq's ``implicit_adams`` does, so the scheme keeps
  the A-stability of the trapezoidal rule instead of inheriting an explicit step-size limit.
* ``imex_euler`` (RDGNN, Eliasof et al. 2024): for f = M x + g(t, x) split by the model (``SplitRHS``),
  (I - tau M_{k+1}) x_{k+1} = x_k + tau g(t_k, x_k): the linear diffusion implicit, the reaction explicit.

The systems are solved matrix-free with M v = f(t, v) - f(t, 0) (one counted RHS evaluation per product,
so NFE and ``solver.max_nfe`` cover the Krylov iterations): conjugate gradients when M is symmetric
(``I - c M`` is then symmetric positive definite for a diffusion), otherwise CG on the normal equations
(CGLS). CGLS converges for every non-singular operator, with monotonically decreasing residual, where
BiCGSTAB can break down and restarted GMRES can stagnate on non-normal operators (GRAND's attention
matrices are neither symmetric nor normal); its price, the squared condition number, is small here
because I - tau M with a stable diffusion M is well conditioned. M^T v comes from autograd (a vector-
Jacobian product of the affine f). ``solver.linear_solver`` picks cg / cgnr or ``auto`` (a symmetry
probe). A solve that misses ``solver.linear_tol`` within ``solver.linear_max_iters`` raises SolverError.

Affinity is checked once per solve with random probes (f(u + v) - f(u) - f(v) + f(0) = 0): a non-linear
RHS (GRAND-nl, GREAD's non-linear reactions under ``backward_euler``) raises SolverError instead of being
solved wrongly; ``validate`` rejects the known non-linear configurations before training.

Gradients follow the implicit function theorem instead of back-propagating through the Krylov iterations:
the step returns z = base + c f(t_{k+1}, x*) with x* the solved (detached) state, which equals x* and has
the right dependence on x_k and on the parameters, and its backward maps the incoming gradient g to
(I - c M)^{-T} g by one more Krylov solve. Memory is one state per step, whatever the iteration count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..config import SolverCfg
from ..errors import ConfigError, SolverError, unknown_choice
from .schemes import RHS, fixed_grid, register_scheme

LINEAR_SOLVERS = ("auto", "cg", "cgnr")
AFFINE_SCHEMES = ("backward_euler", "adams_moulton")  # need f affine in x
SPLIT_SCHEMES = ("imex_euler",)  # need a SplitRHS model whose implicit part is linear
AFFINE_TOL = 1e-4  # relative deviation from affinity tolerated (float32 rounding of sums over the graph)
SYMMETRY_TOL = 1e-4


class SplitRHS:
    """Mixin for a ``GraphODEFunc`` with f(t, x) = implicit(t, x) + explicit(t, x), ``implicit`` linear in x.

    ``imex_euler`` treats ``implicit`` (the stiff diffusion) implicitly and ``explicit`` (the reaction)
    explicitly. Every other solver sees the full f; ``full`` may be overridden to share work between parts.
    """

    part: str = "full"  # set by imex_euler around an evaluation: implicit | explicit | full

    def implicit(self, t: Tensor, x: Tensor) -> Tensor:
        raise NotImplementedError

    def explicit(self, t: Tensor, x: Tensor) -> Tensor:
        raise NotImplementedError

    def full(self, t: Tensor, x: Tensor) -> Tensor:
        return self.implicit(t, x) + self.explicit(t, x)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        if self.part == "implicit":
            return self.implicit(t, x)
        if self.part == "explicit":
            return self.explicit(t, x)
        return self.full(t, x)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum()


@dataclass
class KrylovResult:
    x: Tensor
    iterations: int
    residual: float  # relative residual ||b - B x|| / ||b||


def conjugate_gradients(apply: Callable[[Tensor], Tensor], b: Tensor, x: Tensor, tol: float, max_iters: int):
    """CG for B x = b, B symmetric positive definite, over the whole tensor (Frobenius inner product)."""
    b_norm2 = _dot(b, b)
    r = b - apply(x)
    p, rr = r, _dot(r, r)
    for k in range(max_iters):
        if rr <= tol**2 * b_norm2 or not torch.isfinite(rr):
            return KrylovResult(x, k, math.sqrt(rr / b_norm2))
        q = apply(p)
        step = rr / _dot(p, q)
        x, r = x + step * p, r - step * q
        rr_new = _dot(r, r)
        p, rr = r + (rr_new / rr) * p, rr_new
    return KrylovResult(x, max_iters, math.sqrt(rr / b_norm2))


def cg_normal_equations(apply, apply_t, b: Tensor, x: Tensor, tol: float, max_iters: int) -> KrylovResult:
    """CGLS: CG on B^T B x = B^T b, tracking the residual b - B x of the original system."""
    b_norm2 = _dot(b, b)
    r = b - apply(x)
    s = apply_t(r)
    p, ss, rr = s, _dot(s, s), _dot(r, r)
    for k in range(max_iters):
        if rr <= tol**2 * b_norm2 or not torch.isfinite(rr):
            return KrylovResult(x, k, math.sqrt(rr / b_norm2))
        q = apply(p)
        step = ss / _dot(q, q)
        x, r = x + step * p, r - step * q
        s = apply_t(r)
        ss_new = _dot(s, s)
        p, ss, rr = s + (ss_new / ss) * p, ss_new, _dot(r, r)
    return KrylovResult(x, max_iters, math.sqrt(rr / b_norm2))


class ImplicitSystem:
    """B x = rhs with B = I - c M, M v = F(t, v) - F(t, 0) for an affine F, solved matrix-free."""

    def __init__(self, rhs_func: RHS, t: Tensor, coef: float, symmetric: bool, cfg: SolverCfg, scheme: str) -> None:
        self.func, self.t, self.coef, self.symmetric = rhs_func, t, coef, symmetric
        self.tol, self.max_iters, self.scheme = cfg.linear_tol, cfg.linear_max_iters, scheme
        self.offset: Tensor | None = None  # F(t, 0), set on first use

    def offset_at(self, like: Tensor) -> Tensor:
        if self.offset is None:
            with torch.no_grad():
                self.offset = self.func(self.t, torch.zeros_like(like))
        return self.offset

    def apply(self, v: Tensor) -> Tensor:
        return v - self.coef * (self.func(self.t, v) - self.offset_at(v))

    def apply_t(self, v: Tensor) -> Tensor:
        """B^T v = v - c M^T v, M^T v as a vector-Jacobian product (the Jacobian of an affine F is M)."""
        if self.symmetric:
            return self.apply(v)
        with torch.enable_grad():
            u = torch.zeros_like(v, requires_grad=True)
            (mt_v,) = torch.autograd.grad(self.func(self.t, u), u, v)
        return v - self.coef * mt_v

    def describe(self, transposed: bool) -> str:
        return "the gradient (transposed) system" if transposed else f"the step to t={float(self.t):.4g}"

    def solve(self, rhs: Tensor, guess: Tensor, transposed: bool = False) -> Tensor:
        with torch.no_grad():
            size = rhs.abs().sum()
            if not torch.isfinite(size):
                what = self.describe(transposed)
                raise SolverError(f"{self.scheme}: NaN/Inf in the right-hand side of {what} (the solve diverged)")
            if size == 0:
                return torch.zeros_like(rhs)
            if self.symmetric:
                out = conjugate_gradients(self.apply, rhs, guess, self.tol, self.max_iters)
            else:
                apply, apply_t = (self.apply_t, self.apply) if transposed else (self.apply, self.apply_t)
                out = cg_normal_equations(apply, apply_t, rhs, guess, self.tol, self.max_iters)
        if math.isnan(out.residual):
            what = self.describe(transposed)
            raise SolverError(f"{self.scheme}: {what} overflowed to NaN/Inf in the linear solve (the solve diverged)")
        if not out.residual <= self.tol:
            method = "conjugate gradients" if self.symmetric else "CG on the normal equations"
            raise SolverError(
                f"{self.scheme}: {method} for {self.describe(transposed)} did not reach "
                f"solver.linear_tol={self.tol:g} within "
                f"solver.linear_max_iters={self.max_iters} iterations (relative residual {out.residual:.2e}); "
                "raise linear_max_iters, loosen linear_tol or lower solver.step_size"
            )
        return out.x

    def step(self, base: Tensor, guess: Tensor) -> Tensor:
        """x solving x = base + c F(t, x), differentiable in base and in F's parameters (module docstring)."""
        rhs = base.detach() + self.coef * self.offset_at(base)
        x_star = self.solve(rhs, guess.detach())
        if not torch.is_grad_enabled():
            return x_star
        z = base + self.coef * self.func(self.t, x_star)
        return _InverseTransposeGrad.apply(z, self)


class _InverseTransposeGrad(torch.autograd.Function):
    """Identity forward; backward g -> B^{-T} g, turning dz into dx of the implicit step."""

    @staticmethod
    def forward(ctx, z: Tensor, system: ImplicitSystem) -> Tensor:
        ctx.system = system
        return z.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):
        return ctx.system.solve(grad, grad, transposed=True), None


def probe_operator(func: RHS, t: Tensor, like: Tensor, scheme: str, what: str) -> bool:
    """Check that ``func`` is affine in x (else SolverError); return whether its linear part is symmetric.

    Probes are drawn from a private generator at the scale of ``like``, so the global RNG stream (dropout)
    is the same as with any other solver.
    """
    gen = torch.Generator(device=like.device).manual_seed(0)
    scale = like.detach().abs().mean().clamp_min(1e-3)
    u, v = (torch.randn(like.shape, generator=gen, device=like.device, dtype=like.dtype) * scale for _ in range(2))
    with torch.no_grad():
        f0 = func(t, torch.zeros_like(like))
        mu, mv = func(t, u) - f0, func(t, v) - f0
        muv = func(t, u + v) - f0
    size = (mu.norm() + mv.norm()).clamp_min(1e-30)
    deviation = float((muv - mu - mv).norm() / size)
    if not deviation <= AFFINE_TOL:
        raise SolverError(
            f"solver '{scheme}' needs {what} affine in the state (f(t, x) = M x + b), but this model's is not: "
            f"f(u + v) - f(u) - f(v) + f(0) is {deviation:.1e} of |M u| + |M v|; use an explicit or adaptive "
            "method (e.g. solver=dopri5)"
        )
    asymmetry = abs(float(_dot(v, mu) - _dot(u, mv))) / float(u.norm() * mv.norm() + v.norm() * mu.norm() + 1e-30)
    return asymmetry <= SYMMETRY_TOL


def _is_symmetric(cfg: SolverCfg, probed: bool) -> bool:
    if cfg.linear_solver not in LINEAR_SOLVERS:
        raise ConfigError(unknown_choice("solver.linear_solver", cfg.linear_solver, LINEAR_SOLVERS))
    return probed if cfg.linear_solver == "auto" else cfg.linear_solver == "cg"


def _split_parts(func: RHS) -> tuple[RHS, RHS]:
    """(implicit, explicit) parts of a ``SplitRHS`` model, both evaluated through the counted ``func``."""
    inner = getattr(func, "func", func)
    if not isinstance(inner, SplitRHS):
        raise ConfigError(
            f"solver 'imex_euler' needs a right-hand side split into implicit and explicit parts (SplitRHS); "
            f"{type(inner).__name__} has none: use solver=backward_euler for a linear model"
        )

    def part(name: str) -> RHS:
        def evaluate(t: Tensor, x: Tensor) -> Tensor:
            inner.part = name
            try:
                return func(t, x)
            finally:
                inner.part = "full"

        return evaluate

    return part("implicit"), part("explicit")


def _integrate(func: RHS, x0: Tensor, times: Tensor, cfg: SolverCfg, scheme: str) -> Tensor:
    """Fixed steps of ``scheme`` through ``times``; the states at ``times`` stacked along a new first axis."""
    implicit, explicit = _split_parts(func) if scheme == "imex_euler" else (func, None)
    what = "the implicit part of its right-hand side" if explicit is not None else "a right-hand side"
    symmetric = _is_symmetric(cfg, probe_operator(implicit, times[1], x0, scheme, what)) if len(times) > 1 else True
    theta = 0.5 if scheme == "adams_moulton" else 1.0
    x, f_prev, f_prev_prev, out = x0, None, None, [x0]
    for t_start, t_end in zip(times[:-1].tolist(), times[1:].tolist(), strict=True):
        grid = fixed_grid(t_start, t_end, cfg.step_size)
        for t0, t1 in zip(grid[:-1], grid[1:], strict=True):
            tau = t1 - t0
            t0_, t1_ = (torch.tensor(s, dtype=x0.dtype, device=x0.device) for s in (t0, t1))
            system = ImplicitSystem(implicit, t1_, theta * tau, symmetric, cfg, scheme)
            if explicit is not None:  # IMEX: x_k + tau g(t_k, x_k)
                base, guess = x + tau * explicit(t0_, x), x
            elif theta == 1.0:  # backward Euler: x_k
                base, guess = x, x
            else:  # Adams-Moulton 2: x_k + tau/2 f_k; predictor AB2 (Euler on the first step) as initial guess
                f_prev_prev, f_prev = f_prev, func(t0_, x)
                base = x + (1 - theta) * tau * f_prev
                slope = f_prev if f_prev_prev is None else 1.5 * f_prev - 0.5 * f_prev_prev
                guess = x + tau * slope
            x = system.step(base, guess)
        out.append(x)
    return torch.stack(out)


@register_scheme("backward_euler", fixed_step=True)
def backward_euler(func: RHS, x0: Tensor, times: Tensor, cfg: SolverCfg) -> Tensor:
    return _integrate(func, x0, times, cfg, "backward_euler")


@register_scheme("adams_moulton", fixed_step=True)
def adams_moulton(func: RHS, x0: Tensor, times: Tensor, cfg: SolverCfg) -> Tensor:
    return _integrate(func, x0, times, cfg, "adams_moulton")


@register_scheme("imex_euler", fixed_step=True)
def imex_euler(func: RHS, x0: Tensor, times: Tensor, cfg: SolverCfg) -> Tensor:
    return _integrate(func, x0, times, cfg, "imex_euler")
