"""Command-line entry (``train.py``): Hydra composition, then ``run``; errors as one line, not a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from .config import register_configs
from .errors import GrandBenchError, RunFailed, unknown_choice

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS_WITH_OPTIONS = ("dataset", "split", "model", "solver", "optim", "logger", "experiment")


def group_options(group: str) -> list[str]:
    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def check_group_choices(argv: list[str]) -> str | None:
    """The message for the first unknown ``group=option`` on the command line, or None.

    Hydra would also refuse it, but with a multi-line report; a user who typed ``model=gran_l`` wants
    one line with the valid names.
    """
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or key not in GROUPS_WITH_OPTIONS or value in ("null", ""):
            continue
        valid = group_options(key)
        for option in value.split(","):  # multirun: model=a,b
            if option not in valid:
                return unknown_choice(key, option, valid)
    return None


def fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_entry(cfg: DictConfig) -> None:
    from .run import run

    if cfg.tuner.name != "none":
        fail(f"tuner={cfg.tuner.name} is a sweep: run it with tune.py (python tune.py ... tuner={cfg.tuner.name})", 2)
    try:
        records = run(cfg)
    except RunFailed as err:
        fail(str(err), 1)
    except (GrandBenchError, ValueError) as err:
        fail(str(err), 2)
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        fail(f"{len(failed)} of {len(records)} run(s) failed; first: {failed[0]['error']}", 1)


def main() -> None:
    message = check_group_choices(sys.argv[1:])
    if message:
        fail(message, 2)
    register_configs()
    _hydra_entry()
