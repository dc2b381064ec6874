"""Command-line entry of ``tune.py``: the same Hydra composition as ``train.py`` plus the ``tuner`` group.

Errors print as one line (exit 2 for bad input, 1 when no trial finished ok or Ray stopped the sweep, 130 when
interrupted).
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from ..cli import CONF_DIR, check_group_choices, fail, group_options, override_key
from ..config import register_configs
from ..errors import GrandBenchError, unknown_choice

DEFAULT_TUNER = "asha"


def check_tuner_choice(argv: list[str]) -> str | None:
    """One line for an unknown ``tuner=`` (``none`` is for train.py), else None."""
    valid = [name for name in group_options("tuner") if name != "none"]
    for arg in argv:
        if override_key(arg) == "tuner" and arg.partition("=")[2] not in valid:
            return unknown_choice("tuner", arg.partition("=")[2], valid)
    return None


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_entry(cfg: DictConfig) -> None:
    from .sweep import run_sweep

    try:
        outcome = run_sweep(cfg)
    except (GrandBenchError, ValueError) as err:
        fail(str(err), 2)
    summary = outcome.summary
    resume = "python tune.py " + " ".join(
        [*(a for a in sys.argv[1:] if override_key(a) != "tuner.resume"), "tuner.resume=true"]
    )
    if summary.stopped:
        fail(
            f"sweep '{summary.sweep}' stopped by Ray after {len(summary.ranked) + len(summary.failed)} finished "
            f"trial(s): {summary.stopped}; summary in {outcome.summary_file}; continue it (with a lower "
            f"tuner.max_concurrent_trials if a worker ran out of memory): {resume}",
            1,
        )
    if outcome.interrupted:
        fail(
            f"sweep '{summary.sweep}' interrupted with {summary.unfinished} trial(s) unfinished; continue it: {resume}",
            130,
        )
    if summary.best is None:
        reasons = [r["error"] for r in summary.failed] + list(summary.errored.values())
        fail(f"no trial of sweep '{summary.sweep}' finished ok; first error: {reasons[0] if reasons else '?'}", 1)


def main() -> None:
    argv = sys.argv[1:]
    message = check_group_choices(argv) or check_tuner_choice(argv)
    if message:
        fail(message, 2)
    if not any(override_key(arg) == "tuner" for arg in argv):
        sys.argv.append(f"tuner={DEFAULT_TUNER}")  # tune.py always sweeps; config.yaml's `tuner: none` is train.py's
    register_configs()
    _hydra_entry()
