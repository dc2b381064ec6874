"""Run the cells of a paper's table that the results store does not hold yet (``scripts/reproduce.py``).

A cell is a row × column of ``conf/tables/<table>.yaml`` whose model and dataset grand_bench has. Its config
is composed from the cell's preset (``conf/experiment/<preset>.yaml``: split protocol, seeds × splits, tag),
the cell's overrides and the command line's; its runs are the preset's (split, seed) pairs, splits first
(so ``runs=N`` covers N different splits before repeating one), times the table's ``repeat`` values.

A run counts as done when the store holds a record of it on any device (``run_key.replicate_key``: the
resolved config without paths, labels and the device, ``run_key.py``) under one of the table's tags, as
``make tables`` counts it. The other runs go through
``run.run`` in this process with ``resume=true`` (each call loads the data once and continues a killed run
from its checkpoint); a run that fails is recorded as failed and the others go on, and a cell whose config
or data cannot be prepared is reported and skipped.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf

from .cli import override_key
from .errors import ConfigError, unknown_choice
from .report import read_records
from .report.presets import cell_command, compose_config, repeat_variants
from .report.store import record_path
from .report.tables import Column, Row, TableSpec, implemented, load_spec
from .run import absolute, run, run_configs
from .run_key import replicate_key
from .validate import validate

# Overrides that change where files go or what is printed, never what a run computes.
ENVIRONMENT_KEYS = (
    "results_dir",
    "data_root",
    "raw_mirror",
    "device",
    "checkpoint_dir",
    "resume",
    "train.progress",
    "train.checkpoint_every",
    "logger",
)
# Overrides that choose which runs of a cell's setting are made (more splits or seeds than the preset's): the
# setting is unchanged, so make tables counts those runs in the cell (run_key.VOLATILE, tables.SELECTION_KEYS).
RUN_SELECTION_KEYS = ("seeds", "splits")


@dataclass
class PlannedRun:
    cfg: DictConfig  # one resolved run
    variant: int  # which of the cell's repeat variants
    state: str  # done | todo | other_tag (recorded, but under a tag the table does not count)


@dataclass
class PlannedCell:
    row: Row
    column: Column
    overrides: list[str]  # the command line that composes the cell (before a repeat variant's)
    variants: list[tuple[list[str], DictConfig]] = field(default_factory=list)  # (its overrides, composed)
    runs: list[PlannedRun] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.row.name} × {self.column.name} ({self.row.model}, {self.column.dataset})"

    def count(self, state: str) -> int:
        return sum(r.state == state for r in self.runs)


def stored_runs(cfg: DictConfig) -> dict[str, set]:
    """Replicate key (a run on any device) -> the tags it is recorded under, in the store file of the config's
    (model, dataset)."""
    path = record_path(absolute(cfg.results_dir), cfg.model.name, cfg.dataset.name)
    found: dict[str, set] = {}
    for record in read_records(path) if path.exists() else []:
        if isinstance(record.get("config"), dict):
            found.setdefault(replicate_key(record["config"]), set()).add(record.get("tag"))
    return found


def ordered_runs(cfg: DictConfig) -> list[tuple[int, int, DictConfig]]:
    """(seed position, split position, resolved run) for every run of a composed config."""
    seeds = len(cfg.seeds) if cfg.seeds is not None else 1
    return [(s, p, one) for k, one in enumerate(run_configs(cfg)) for p, s in [divmod(k, seeds)]]


def plan_cell(spec: TableSpec, row: Row, col: Column, extra: list[str], limit: int | None) -> PlannedCell:
    cell = PlannedCell(row, col, cell_command(spec, row, col, extra))
    try:
        ordered = []
        for v, variant in enumerate(repeat_variants(spec)):
            cfg = compose_config(cell.overrides + variant)
            validate(cfg)
            cell.variants.append((variant, cfg))
            ordered += [(s, p, v, one) for s, p, one in ordered_runs(cfg)]
        ordered.sort(key=lambda t: t[:3])
        if limit is not None:
            ordered = ordered[:limit]
        stored = stored_runs(cell.variants[0][1])
        for _, _, v, one in ordered:
            tags = stored.get(replicate_key(one), set())
            state = "done" if tags & set(spec.tags) else ("other_tag" if tags else "todo")
            cell.runs.append(PlannedRun(one, v, state))
    except Exception as err:  # a cell that cannot be composed is reported; the other cells go on
        cell.error = f"{type(err).__name__}: {err}".splitlines()[0]
    return cell


def plan(
    spec: TableSpec,
    models: Iterable[str] | None = None,
    datasets: Iterable[str] | None = None,
    limit: int | None = None,
    extra: list[str] | None = None,
) -> tuple[list[PlannedCell], list[str]]:
    """The runnable cells (columns outer, so one dataset's cells follow each other) and notes on the rest."""
    models, datasets = _choose(spec, models, datasets)
    cells, notes = [], []
    for row in spec.rows:
        if row.model is not None and row.model in models and not implemented("model", row.model):
            notes.append(f"{row.name}: model {row.model!r} is not in grand_bench yet (paper value only)")
    for col in spec.columns:
        if col.dataset is not None and col.dataset in datasets and not implemented("dataset", col.dataset):
            notes.append(f"{col.name}: dataset {col.dataset!r} is not in grand_bench (paper value only)")
    for col in spec.columns:
        if col.dataset not in datasets or not implemented("dataset", col.dataset):
            continue
        for row in spec.rows:
            if row.model in models and implemented("model", row.model):
                cells.append(plan_cell(spec, row, col, list(extra or []), limit))
    return cells, notes


def _choose(spec: TableSpec, models, datasets) -> tuple[set, set]:
    ours_models = [r.model for r in spec.rows if r.model is not None]
    ours_datasets = [c.dataset for c in spec.columns if c.dataset is not None]
    chosen = []
    for key, given, valid in (("model", models, ours_models), ("dataset", datasets, ours_datasets)):
        given = list(given) if given is not None else list(valid)
        for name in given:
            if name not in valid:
                raise ConfigError(f"table {spec.name}: " + unknown_choice(key, name, sorted(set(valid))))
        chosen.append(set(given))
    return chosen[0], chosen[1]


def run_groups(
    runs: list[PlannedRun], split_follows_seed: bool = False
) -> list[tuple[list[int] | None, list[int], bool]]:
    """(splits, seeds, resume) for the ``run.run`` calls covering the runs to do, each a splits × seeds product.

    ``split_follows_seed``: the split index is the seed (``split=random``'s default), so one call with
    ``splits=None`` covers every run. A run recorded under another tag would be skipped by resume=true, so
    its call runs with resume=false (a checkpoint of it is then not continued).
    """
    pairs = [(int(r.cfg.split.index), int(r.cfg.seed), r.state == "other_tag") for r in runs]
    if not pairs:
        return []
    if split_follows_seed and all(split == seed for split, seed, _ in pairs):
        return [(None, [seed for _, seed, _ in pairs], not any(o for _, _, o in pairs))]
    by_seed: dict[int, list] = {}
    by_split: dict[int, list] = {}
    for split, seed, other in pairs:
        by_seed.setdefault(seed, []).append((split, other))
        by_split.setdefault(split, []).append((seed, other))
    if len(by_split) < len(by_seed):
        return [([p], [s for s, _ in v], not any(o for _, o in v)) for p, v in by_split.items()]
    return [([p for p, _ in v], [s], not any(o for _, o in v)) for s, v in by_seed.items()]


def execute(cells: list[PlannedCell]) -> tuple[int, int, int]:
    """Run the cells' remaining runs; (runs ok, runs failed, cells that could not run)."""
    ok = failed = broken = 0
    for number, cell in enumerate(cells, 1):
        todo = [r for r in cell.runs if r.state != "done"]
        print(f"[cell {number}/{len(cells)}] {cell.label}: {_counts(cell)}", flush=True)
        if cell.error:
            print(f"  cannot run: {cell.error}", flush=True)
            broken += 1
            continue
        groups = [
            (v, group)
            for v, (_, base) in enumerate(cell.variants)
            for group in run_groups(
                _of(todo, v), base.splits is None and OmegaConf.is_interpolation(base.split, "index")
            )
        ]
        for v, (splits, seeds, resume) in groups:
            cfg = copy.deepcopy(cell.variants[v][1])
            cfg.splits, cfg.seeds, cfg.resume = splits, seeds, resume
            try:
                records = run(cfg)
            except Exception as err:  # data missing, a broken model...: the other cells go on
                print(f"  cannot run: {type(err).__name__}: {str(err).splitlines()[0]}", flush=True)
                broken += 1
                break
            ok += sum(r.get("status") == "ok" for r in records)
            failed += sum(r.get("status") != "ok" for r in records)
    return ok, failed, broken


def _of(runs: list[PlannedRun], variant: int) -> list[PlannedRun]:
    return [r for r in runs if r.variant == variant]


def _counts(cell: PlannedCell) -> str:
    if cell.error:
        return "not composed"
    text = f"{len(cell.runs)} runs, {cell.count('done')} recorded, {len(cell.runs) - cell.count('done')} to run"
    if cell.count("other_tag"):
        text += f" ({cell.count('other_tag')} of them recorded under another tag: run again with this table's tag)"
    return text


def protocol_overrides(extra: list[str]) -> list[str]:
    """The command-line overrides that change what a run computes (not paths, devices, output or which runs)."""
    return [o for o in extra if not _names_runs_or_environment(override_key(o))]


def _names_runs_or_environment(key: str) -> bool:
    return key in RUN_SELECTION_KEYS or key.startswith(ENVIRONMENT_KEYS)


def parse_args(argv: list[str]) -> dict:
    """``key=value`` arguments: table, models, datasets, runs, dry_run; anything else is a config override."""
    args: dict = {"table": None, "models": None, "datasets": None, "runs": None, "dry_run": False, "extra": []}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep:
            raise ConfigError(f"arguments are key=value, got {arg!r} (e.g. table=grand2021_table1)")
        if key in ("models", "datasets"):
            args[key] = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
        elif key == "runs":
            if not value.isdigit() or int(value) < 1:
                raise ConfigError(f"runs must be a positive integer, got {value!r}")
            args["runs"] = int(value)
        elif key == "dry_run":
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ConfigError(f"dry_run must be true or false, got {value!r}")
            args["dry_run"] = value.lower() in ("true", "1", "yes")
        elif key == "table":
            args["table"] = value
        else:
            args["extra"].append(arg)
    if args["table"] is None:
        raise ConfigError("table=<name> is required, e.g. table=grand2021_table2 (conf/tables/)")
    return args


def main(argv: list[str]) -> int:
    """The reproduce.py command: 0 when every run succeeded, 1 when some failed or a cell could not run."""
    args = parse_args(argv)
    spec = load_spec(args["table"])
    cells, notes = plan(spec, args["models"], args["datasets"], args["runs"], args["extra"])
    total = sum(len(c.runs) for c in cells)
    done = sum(c.count("done") for c in cells)
    print(f"{spec.name}: {spec.title}", flush=True)
    print(f"{len(cells)} cell(s), {total} run(s): {done} recorded, {total - done} to run", flush=True)
    for note in notes:
        print(f"  not run: {note}", flush=True)
    changed = protocol_overrides(args["extra"])
    if changed and not any(o.startswith("results_dir=") for o in args["extra"]):
        print(
            f"note: {' '.join(changed)} change(s) the protocol: make tables will not count these runs in "
            f"{spec.name} (it counts runs of the preset as it stands) but lists them apart; pass results_dir=... to "
            "keep trial runs out of the store",
            flush=True,
        )
    if args["dry_run"]:
        for number, cell in enumerate(cells, 1):
            print(f"[cell {number}/{len(cells)}] {cell.label}: {_counts(cell)}")
            if cell.error:
                print(f"  cannot run: {cell.error}")
            for variant, _ in cell.variants:
                print("  python train.py " + " ".join(_quote(o) for o in cell.overrides + variant) + " resume=true")
        return 1 if any(c.error for c in cells) else 0
    ok, failed, broken = execute(cells)
    print(f"{spec.name}: {ok} run(s) ok, {failed} failed, {broken} cell(s) could not run", flush=True)
    print("tables: make tables (or python scripts/make_tables.py)", flush=True)
    return 1 if failed or broken else 0


def _quote(override: str) -> str:
    return f"'{override}'" if any(ch in override for ch in "[], ") else override
