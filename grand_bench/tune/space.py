"""Search spaces: ``conf/search_space/<name>.yaml`` -> Ray Tune domains on the composed config.

A space file maps dotted config keys to a fixed value or a domain::

    optim.lr: {type: loguniform, low: 1.0e-3, high: 0.1}
    model.hidden_dim: {type: choice, values: [64, 128]}
    model.input_dropout: 0.5

Everything is checked in the driver before Ray starts: the domain type and its arguments, that the key
exists and may be searched, and that every bound or choice fits the key's type in the typed schema, so a
typo fails in one line instead of in every trial.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from ray import tune

from ..cli import CONF_DIR
from ..errors import ConfigError

SPACE_DIR = CONF_DIR / "search_space"

# type -> (required arguments, builder). Ray's conventions: randint excludes `high`, qrandint includes it.
DOMAINS: dict[str, tuple[tuple[str, ...], Callable[[dict], Any]]] = {
    "uniform": (("low", "high"), lambda a: tune.uniform(a["low"], a["high"])),
    "quniform": (("low", "high", "q"), lambda a: tune.quniform(a["low"], a["high"], a["q"])),
    "loguniform": (("low", "high"), lambda a: tune.loguniform(a["low"], a["high"])),
    "qloguniform": (("low", "high", "q"), lambda a: tune.qloguniform(a["low"], a["high"], a["q"])),
    "randint": (("low", "high"), lambda a: tune.randint(a["low"], a["high"])),
    "qrandint": (("low", "high", "q"), lambda a: tune.qrandint(a["low"], a["high"], a["q"])),
    "choice": (("values",), lambda a: tune.choice(a["values"])),
    "grid": (("values",), lambda a: tune.grid_search(a["values"])),
}
INTEGER_DOMAINS = ("randint", "qrandint")

# The data are loaded once per sweep and shipped to every trial, so only keys that act after loading may
# vary: the model, solver, optimiser, training and evaluation settings, the seed and the split index.
SEARCHABLE_PREFIXES = ("model.", "solver.", "optim.", "train.", "eval.")
SEARCHABLE_KEYS = ("seed", "split.index")
_MISSING = object()


def available_spaces() -> list[str]:
    return sorted(p.stem for p in SPACE_DIR.glob("*.yaml"))


def space_name(cfg: DictConfig) -> str:
    """``tuner.space`` (a name in conf/search_space or a path to a .yaml file), else ``<model>_<dataset>``,
    else ``<model>``: the first file that exists."""
    valid = available_spaces()
    if cfg.tuner.space is not None:
        if cfg.tuner.space.endswith(".yaml"):
            if not space_path(cfg.tuner.space).is_file():
                raise ConfigError(f"tuner.space: no search-space file at {space_path(cfg.tuner.space)}")
        elif cfg.tuner.space not in valid:
            raise ConfigError(f"unknown tuner.space '{cfg.tuner.space}'; valid: {', '.join(valid)} (or a .yaml path)")
        return cfg.tuner.space
    for name in (f"{cfg.model.name}_{cfg.dataset.name}", cfg.model.name):
        if name in valid:
            return name
    raise ConfigError(
        f"no search space for model '{cfg.model.name}' on '{cfg.dataset.name}': add "
        f"conf/search_space/{cfg.model.name}_{cfg.dataset.name}.yaml or {cfg.model.name}.yaml, or pick one with "
        f"tuner.space=...; valid: {', '.join(valid)}"
    )


def load_space(name: str) -> dict[str, Any]:
    """The raw entries of one space file: {dotted key: fixed value or {type: ..., ...}}."""
    path = space_path(name)
    entries = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f"search space {path} must map dotted config keys to values or domains")
    return entries


def check_key(space: str, key: str, cfg: DictConfig) -> None:
    if not (key.startswith(SEARCHABLE_PREFIXES) or key in SEARCHABLE_KEYS):
        raise ConfigError(
            f"search space '{space}': '{key}' cannot be searched (the data are loaded once per sweep); "
            f"valid: keys under {', '.join(SEARCHABLE_PREFIXES)} or {', '.join(SEARCHABLE_KEYS)}"
        )
    if OmegaConf.select(cfg, key, default=_MISSING) is _MISSING:
        known = leaf_keys(OmegaConf.to_container(cfg, resolve=False))
        close = difflib.get_close_matches(key, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"search space '{space}': unknown key '{key}'{hint}")


def leaf_keys(node: dict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in node.items():
        keys.extend(leaf_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"])
    return keys


def make_domain(space: str, key: str, spec: Any) -> Any:
    """A Ray Tune domain for ``spec`` (a dict with ``type``), or ``spec`` itself when it is a fixed value."""
    if not isinstance(spec, dict):
        return spec
    kind = spec.get("type")
    if kind not in DOMAINS:
        raise ConfigError(f"search space '{space}': {key}: unknown type '{kind}'; valid: {', '.join(DOMAINS)}")
    required, build = DOMAINS[kind]
    given = set(spec) - {"type"}
    if given != set(required):
        raise ConfigError(
            f"search space '{space}': {key}: type {kind} takes {', '.join(required)}; got {', '.join(sorted(given))}"
        )
    if "values" in required:
        if not isinstance(spec["values"], list) or not spec["values"]:
            raise ConfigError(f"search space '{space}': {key}: values must be a non-empty list, got {spec['values']}")
    else:
        for arg in required:
            value = spec[arg]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"search space '{space}': {key}: {arg} must be a number, got '{value}'")
            if kind in INTEGER_DOMAINS and not isinstance(value, int):
                raise ConfigError(f"search space '{space}': {key}: {kind} needs integer {arg}, got {value}")
        if not spec["low"] < spec["high"]:
            raise ConfigError(f"search space '{space}': {key}: low must be < high, got {spec['low']} >= {spec['high']}")
        if "log" in kind and spec["low"] <= 0:
            raise ConfigError(f"search space '{space}': {key}: {kind} needs low > 0, got {spec['low']}")
    try:
        return build(spec)
    except (ValueError, TypeError) as err:  # Ray's own argument checks
        raise ConfigError(f"search space '{space}': {key}: {err}") from None


def candidates(spec: Any) -> list[Any]:
    """Values that stand for what a domain can produce: its choices, or its bounds."""
    if not isinstance(spec, dict):
        return [spec]
    if "values" in spec:
        return list(spec["values"])
    if spec["type"] in INTEGER_DOMAINS:
        return [int(spec["low"])]
    return [float(spec["low"]), float(spec["high"])]


def check_types(space: str, key: str, spec: Any, typed: DictConfig) -> None:
    """Every candidate value must merge into the typed schema (e.g. no 'abc' or 64.5 into an int key)."""
    for value in candidates(spec):
        try:
            OmegaConf.merge(typed, _nested(key, value))
        except OmegaConfBaseException as err:
            reason = str(err).splitlines()[0]
            raise ConfigError(f"search space '{space}': {key}: value {value!r} does not fit: {reason}") from None


def _nested(key: str, value: Any) -> dict:
    node: Any = value
    for part in reversed(key.split(".")):
        node = {part: node}
    return node


def set_dotted(container: dict, key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = container
    for part in parents:
        node = node[part]
    node[leaf] = value


def build_param_space(cfg: DictConfig, container: dict, name: str) -> tuple[dict, dict[str, Any]]:
    """``container`` (the resolved config as a dict) with the space's keys replaced by Tune domains.

    Returns the param space and the searched entries {dotted key: raw spec} (fixed values included).
    ``cfg`` is the typed, composed config the keys and types are checked against.
    """
    entries = load_space(name)
    param_space = copy.deepcopy(container)
    for key, spec in entries.items():
        check_key(name, key, cfg)
        domain = make_domain(name, key, spec)
        check_types(name, key, spec, cfg)
        set_dotted(param_space, key, domain)
    return param_space, entries


def searched_keys(entries: dict[str, Any]) -> list[str]:
    """The keys that vary (domains), in file order: the parameter columns of the progress table and summary."""
    return [key for key, spec in entries.items() if isinstance(spec, dict)]


def space_path(name: str) -> Path:
    """conf/search_space/<name>.yaml, or ``name`` itself when it is a .yaml path (relative: to the project)."""
    if not name.endswith(".yaml"):
        return SPACE_DIR / f"{name}.yaml"
    path = Path(name).expanduser()
    return path if path.is_absolute() else CONF_DIR.parent / path
