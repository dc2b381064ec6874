"""Command-line entry (``train.py``): Hydra composition, then ``run``; errors as one line, not a traceback."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from .config import register_configs
from .errors import GrandBenchError, RunFailed, unknown_choice

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS_WITH_OPTIONS = ("dataset", "split", "model", "solver", "optim", "logger", "experiment")


def override_key(arg: str) -> str:
    """The config key a command-line override sets: ``+model.x=1`` -> ``model.x``."""
    return arg.partition("=")[0].lstrip("+~")


def group_options(group: str) -> list[str]:
    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def check_group_choices(argv: list[str]) -> str | None:
    """The message for the first unknown ``group=option`` on the command line, or None.

    Hydra would also refuse it, but with a multi-line report; a user who typed ``model=gran_l`` wants
    one line with the valid names.
    """
    for arg in argv:
        _, sep, value = arg.partition("=")
        key = override_key(arg)
        if not sep or key not in GROUPS_WITH_OPTIONS or value in ("null", ""):
            continue
        valid = group_options(key)
        for option in value.split(","):  # multirun: model=a,b
            if option not in valid:
                return unknown_choice(key, option, valid)
    return None


def composition_problem(argv: list[str]) -> str | None:
    """One line for an override that does not compose (misspelt key, wrong type), or None.

    Hydra reports these over several lines; composing once here gives the key, the value and what is
    allowed in one. Runs with Hydra's own flags (``--cfg``, ``-m``) are left to Hydra.
    """
    if any(arg.startswith("-") for arg in argv):
        return None
    from hydra import compose, initialize_config_dir

    overrides = [arg for arg in argv if not override_key(arg).startswith("hydra")]
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            compose("config", overrides=overrides)
    except Exception as err:  # Hydra wraps the OmegaConf error that names the key
        cause = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
        return _one_line(cause)
    return None


def _one_line(err: BaseException) -> str:
    if isinstance(err, ConfigAttributeError | ConfigKeyError) and getattr(err, "full_key", None):
        parent, _, _ = err.full_key.rpartition(".")
        schema = getattr(err, "object_type", None)
        keys = [f.name for f in dataclasses.fields(schema)] if dataclasses.is_dataclass(schema) else []
        valid = f"; valid keys of {parent or 'the config'}: {', '.join(keys)}" if keys else ""
        return f"unknown key {err.full_key!r}{valid}"
    if isinstance(err, ValidationError) and getattr(err, "full_key", None):
        return f"{err.full_key}={err.value!r}: {str(err.msg).splitlines()[0]}"
    if isinstance(err, OmegaConfBaseException) and getattr(err, "full_key", None) and getattr(err, "msg", None):
        return f"{err.full_key}: {str(err.msg).splitlines()[0]}"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


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
    except OmegaConfBaseException as err:  # e.g. an interpolation that cannot be resolved
        fail(_one_line(err), 2)
    except (GrandBenchError, ValueError) as err:
        fail(str(err), 2)
    except KeyboardInterrupt:
        fail("interrupted; the same command with resume=true skips the recorded runs and continues the others", 130)
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        fail(f"{len(failed)} of {len(records)} run(s) failed; first: {failed[0]['error']}", 1)


def main() -> None:
    message = check_group_choices(sys.argv[1:])
    if message:
        fail(message, 2)
    register_configs()
    message = composition_problem(sys.argv[1:])
    if message:
        fail(message, 2)
    _hydra_entry()
