"""ODE solvers: the torchdiffeq wrapper with NFE counting and guards, and the schemes torchdiffeq lacks.

Importing a scheme module registers its methods (solvers/schemes.py); add new scheme modules here.
"""

from . import (
    imex,  # noqa: F401  (registers symplectic_euler, leapfrog)
    implicit,  # noqa: F401  (registers backward_euler, adams_moulton, imex_euler)
)
from .ode_block import (
    ADAMS_METHODS,
    ADAMS_ORDERS,
    TORCHDIFFEQ_ADAPTIVE,
    TORCHDIFFEQ_FIXED,
    TORCHDIFFEQ_METHODS,
    GraphODEFunc,
    ODEBlock,
    is_fixed_step,
    methods,
    solver_tolerances,
)
from .schemes import SCHEMES, Scheme, fixed_grid, register_scheme

__all__ = [
    "ADAMS_METHODS",
    "ADAMS_ORDERS",
    "SCHEMES",
    "TORCHDIFFEQ_ADAPTIVE",
    "TORCHDIFFEQ_FIXED",
    "TORCHDIFFEQ_METHODS",
    "GraphODEFunc",
    "ODEBlock",
    "Scheme",
    "fixed_grid",
    "is_fixed_step",
    "methods",
    "register_scheme",
    "solver_tolerances",
]
