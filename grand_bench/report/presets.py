"""A table cell's runs as its preset composes them today (shared by ``reproduce.py`` and ``make tables``).

A cell's command line is ``model=<row> dataset=<column> experiment=<preset>`` plus the table's, column's and
row's overrides; each of the table's ``repeat`` variants adds its own. ``cell_settings`` is the set of
setting keys (``run_key.setting_key``) of those composed configs: a record counts for the cell only when its
config has one of them, so a record made under an earlier version of the preset (other hyper-parameters,
epochs, a trial override) drops out of the table instead of mixing with the current preset's runs.
"""

from __future__ import annotations

import functools
import itertools

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from ..cli import CONF_DIR
from ..config import register_configs
from ..run_key import setting_key
from .tables import Column, Row, TableSpec, cell_overrides


def hydra_value(value) -> str:
    """A Python value as a Hydra command-line value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    return str(value)


def compose_config(overrides: list[str]) -> DictConfig:
    register_configs()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose("config", overrides=overrides)


def cell_command(spec: TableSpec, row: Row, col: Column, extra: list[str]) -> list[str]:
    preset = row.preset or spec.preset
    overrides = [f"model={row.model}", f"dataset={col.dataset}"]
    overrides += [f"experiment={preset}"] if preset else []
    if row.best and (CONF_DIR / "best" / f"{row.best}_{col.dataset}.yaml").is_file():
        overrides.append(f"best={row.best}_{col.dataset}")
    overrides += [f"{k}={hydra_value(v)}" for k, v in cell_overrides(spec, row, col).items()]
    return [*overrides, f"tag={spec.tags[0]}", "train.progress=false", *extra]


def repeat_variants(spec: TableSpec) -> list[list[str]]:
    """The overrides of each of the table's repeat variants (one empty variant when it has none)."""
    keys = list(spec.repeat)
    return [
        [f"{k}={hydra_value(x)}" for k, x in zip(keys, values, strict=True)]
        for values in itertools.product(*spec.repeat.values())
    ]


def cell_settings(spec: TableSpec, row: Row, col: Column) -> frozenset[str]:
    """The setting keys of the cell's runs under today's preset; empty when the cell does not compose."""
    return _settings(tuple(cell_command(spec, row, col, [])), tuple(map(tuple, repeat_variants(spec))))


@functools.cache
def _settings(command: tuple[str, ...], variants: tuple[tuple[str, ...], ...]) -> frozenset[str]:
    try:
        return frozenset(setting_key(compose_config([*command, *variant])) for variant in variants)
    except Exception:  # a cell whose model or preset no longer composes counts no record
        return frozenset()
