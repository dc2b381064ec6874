"""Exceptions whose message is meant for the user: one line, naming the value and what is allowed."""

from collections.abc import Iterable


def unknown_choice(key: str, value: object, valid: Iterable[object]) -> str:
    """The one-line message for a value outside a fixed set: ``unknown <key> <repr(value)>; valid: a, b``."""
    return f"unknown {key} {value!r}; valid: {', '.join(map(str, valid))}"


class GrandBenchError(RuntimeError):
    """Base class: the CLI prints these as one line instead of a traceback."""


class ConfigError(GrandBenchError, ValueError):
    """A configuration value is invalid (raised before any data loads)."""


class RunFailed(GrandBenchError):
    """A run diverged or could not continue; the run is recorded as failed with this reason."""


class SolverError(RunFailed):
    """The ODE solve broke down: too many function evaluations, step-size underflow, NaN/Inf state."""


class MaxNFEExceeded(SolverError):
    """An ODE solve needed more right-hand-side evaluations than solver.max_nfe allows."""
