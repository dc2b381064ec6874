"""ODE solvers: the torchdiffeq wrapper with NFE counting and guards (schemes it lacks come later)."""

from .ode_block import (
    ADAPTIVE_METHODS,
    FIXED_STEP_METHODS,
    METHODS,
    GraphODEFunc,
    ODEBlock,
    solver_tolerances,
)

__all__ = [
    "ADAPTIVE_METHODS",
    "FIXED_STEP_METHODS",
    "METHODS",
    "GraphODEFunc",
    "ODEBlock",
    "solver_tolerances",
]
