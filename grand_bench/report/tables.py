"""The papers' tables beside ours, from the run records (``make tables``; nothing here trains).

A table spec, ``conf/tables/<name>.yaml`` (schema: conf/tables/README.md), maps a paper's rows and columns to
our model and dataset names and says which records count. The paper's values come from one place only,
``reference/published_results.csv``, looked up by the paper's own row and column names. A cell pools the run
records that match it: ours = mean ± population std (ddof 0, as the papers report) of the test score at the
best validation epoch over the ``ok`` runs, in the paper's unit; Δ = ours − paper; the cell is *within* when
|Δ| ≤ max(paper's std, the table's tolerance). ``make tables`` counts a record only when it is a run of the
cell's preset as it composes today (``report/presets.py``); records of earlier presets are listed apart.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, unknown_choice
from ..provenance import PROJECT_ROOT
from ..run_key import ADDED_WITH_DEFAULT, finished_runs, replicate_key, setting_key
from .reference import published
from .store import summarise

CONF_DIR = PROJECT_ROOT / "conf"
SPEC_DIR = CONF_DIR / "tables"
# Records store fractions; the papers print accuracy and micro-F1 in percent and MAE as is.
METRIC_SCALE = {"accuracy": 100.0, "micro_f1": 100.0, "mae": 1.0}
METRIC_DECIMALS = {"accuracy": 1, "micro_f1": 1, "mae": 3}
METRIC_LABEL = {"accuracy": "test accuracy (%)", "micro_f1": "test micro-F1 (%)", "mae": "test MAE"}
DIRECTIONS = ("max", "min")
# A group override names a config group; the record holds the choice in this field of the group.
GROUP_FIELD = {"model": "name", "dataset": "name", "split": "name", "solver": "method"}
# Overrides that choose which runs are made, not what a run computes: never required of a record.
SELECTION_KEYS = frozenset({"seeds", "splits", "tag"})
SPEC_KEYS = {
    "title": True,
    "citation": True,
    "protocol": True,
    "reference": True,
    "metric": True,
    "direction": True,
    "split": True,
    "columns": True,
    "rows": True,
    "preset": False,
    "tags": False,
    "tolerance": False,
    "overrides": False,
    "repeat": False,
    "cell_notes": False,
    "cell_notes_from": False,
}
COLUMN_KEYS = ("name", "dataset", "vars", "overrides", "note")
ROW_KEYS = ("name", "model", "preset", "best", "overrides", "note")
_ABSENT = object()


@dataclass
class Column:
    name: str  # the paper's column (the reference CSV's `dataset`)
    dataset: str | None  # ours; None: not available in grand_bench
    vars: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass
class Row:
    name: str  # the paper's row (the reference CSV's `model`)
    model: str | None  # ours; None: not implemented in grand_bench
    preset: str | None = None  # conf/experiment/<preset>.yaml; default: the table's
    # The row's own per-dataset values: conf/best/<best>_<dataset>.yaml where it exists replaces
    # <model>_<dataset>.yaml (an ablation row tuned apart from the model's main row).
    best: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass
class TableSpec:
    name: str  # the spec's file name: results/tables/<name>.*
    title: str
    citation: str
    protocol: str
    reference: tuple[str, str] | None  # (paper, table) in reference/published_results.csv
    metric: str
    direction: str
    split: str
    columns: list[Column]
    rows: list[Row]
    preset: str | None = None
    tags: tuple[str, ...] = ()
    tolerance: float = 1.0
    overrides: dict[str, Any] = field(default_factory=dict)
    repeat: dict[str, list] = field(default_factory=dict)
    cell_notes: dict[str, str] = field(default_factory=dict)  # "<row> / <column>" -> what is known of the cell

    def known(self, row: Row, col: Column) -> str:
        """What is known about a cell's gap to the paper: its own note, then its row's and its column's."""
        notes = (self.cell_notes.get(f"{row.name} / {col.name}", ""), row.note, col.note)
        return " ".join(n.strip() for n in notes if n and n.strip())

    @property
    def scale(self) -> float:
        return METRIC_SCALE[self.metric]


# (spec, row, column) -> the setting keys (run_key.setting_key) whose records count for the cell; None: any
CellSettings = Callable[[TableSpec, Row, Column], frozenset[str] | None]


# ---------------------------------------------------------------------------------------------------- specs


def spec_names(spec_dir: Path = SPEC_DIR) -> list[str]:
    return sorted(p.stem for p in Path(spec_dir).glob("*.yaml"))


def load_spec(name: str, spec_dir: Path = SPEC_DIR) -> TableSpec:
    """The spec ``<spec_dir>/<name>.yaml``, checked; a problem is one line naming the file and the key."""
    path = Path(spec_dir) / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(unknown_choice("table", name, spec_names(spec_dir)))
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    where = f"{path.parent.name}/{path.name}"
    _check_keys(raw, SPEC_KEYS, where)
    if raw["metric"] not in METRIC_SCALE:
        raise ConfigError(f"{where}: {unknown_choice('metric', raw['metric'], METRIC_SCALE)}")
    if raw["direction"] not in DIRECTIONS:
        raise ConfigError(f"{where}: {unknown_choice('direction', raw['direction'], DIRECTIONS)}")
    ref = raw["reference"]
    if ref is not None and (not isinstance(ref, dict) or set(ref) != {"paper", "table"}):
        raise ConfigError(f"{where}: reference must be null or {{paper: ..., table: ...}}, got {ref!r}")
    columns = [Column(**_entry(c, COLUMN_KEYS, f"{where} column", ("name", "dataset"))) for c in raw["columns"]]
    rows = [Row(**_entry(r, ROW_KEYS, f"{where} row", ("name", "model"))) for r in raw["rows"]]
    spec = TableSpec(
        name=name,
        title=raw["title"],
        citation=raw["citation"],
        protocol=raw["protocol"],
        reference=(str(ref["paper"]), str(ref["table"])) if ref else None,
        metric=raw["metric"],
        direction=raw["direction"],
        split=raw["split"],
        columns=columns,
        rows=rows,
        preset=raw.get("preset"),
        tags=tuple(raw.get("tags") or [name]),
        tolerance=float(raw.get("tolerance", 1.0)),
        overrides=dict(raw.get("overrides") or {}),
        repeat={k: list(v) for k, v in (raw.get("repeat") or {}).items()},
        cell_notes={str(k): str(v) for k, v in (raw.get("cell_notes") or {}).items()},
    )
    cells = {f"{r.name} / {c.name}" for r in rows for c in columns}
    for key in spec.cell_notes:
        if key not in cells:
            raise ConfigError(f"{where}: cell_notes key {key!r} is not '<row> / <column>' of this table")
    if raw.get("cell_notes_from"):  # a table that shares another's records shares its notes on the same cells
        shared = load_spec(raw["cell_notes_from"], spec_dir).cell_notes
        spec.cell_notes = {**{k: v for k, v in shared.items() if k in cells}, **spec.cell_notes}
    _check_distinct(spec, where)
    for row in rows:
        for col in columns:
            cell_overrides(spec, row, col)  # every placeholder must have its variable
    return spec


def _check_keys(raw: dict, keys: dict[str, bool], where: str) -> None:
    for key in raw:
        if key not in keys:
            raise ConfigError(f"{where}: {unknown_choice('key', key, keys)}")
    for key, required in keys.items():
        if required and key not in raw:
            raise ConfigError(f"{where}: missing key {key!r}")


def _entry(raw: dict, keys: tuple[str, ...], where: str, required: tuple[str, ...]) -> dict:
    _check_keys(raw, {k: k in required for k in keys}, f"{where} {raw.get('name', '?')!r}")
    out = dict(raw)
    for key in ("vars", "overrides"):
        if key in keys:
            out[key] = dict(out.get(key) or {})
    return out


def _check_distinct(spec: TableSpec, where: str) -> None:
    """Row and column names are unique; rows sharing a model (columns a dataset) must be told apart by the
    value of some override (or variable) they both set, or one row's records would count for the other."""
    for kind, items in (("row", spec.rows), ("column", spec.columns)):
        names = Counter(item.name for item in items)
        if dupes := [n for n, c in names.items() if c > 1]:
            raise ConfigError(f"{where}: duplicate {kind} name(s) {dupes}")

    def differ(a: dict, b: dict) -> bool:
        return any(k in b and a[k] != b[k] for k in a)

    for kind, items, ours in (("row", spec.rows, "model"), ("column", spec.columns, "dataset")):
        for i, a in enumerate(items):
            for b in items[i + 1 :]:
                same = getattr(a, ours) is not None and getattr(a, ours) == getattr(b, ours)
                if same and not differ(
                    {**getattr(a, "vars", {}), **a.overrides}, {**getattr(b, "vars", {}), **b.overrides}
                ):
                    raise ConfigError(
                        f"{where}: {kind}s {a.name!r} and {b.name!r} share {ours} {getattr(a, ours)!r}; give both "
                        "an override (or variable) with different values so their records can be told apart"
                    )


def cell_overrides(spec: TableSpec, row: Row, col: Column) -> dict[str, Any]:
    """The table's, the column's and the row's overrides (later wins: a row names its model's protocol),
    ``{var}`` filled from the column's vars."""
    merged: dict[str, Any] = {**spec.overrides, **col.overrides, **row.overrides}
    as_yaml = {name: _yaml_scalar(value) for name, value in col.vars.items()}
    out = {}
    for key, value in merged.items():
        if isinstance(value, str) and "{" in value:
            try:
                value = yaml.safe_load(value.format(**as_yaml))
            except (KeyError, IndexError) as err:
                raise ConfigError(
                    f"tables/{spec.name}.yaml: row {row.name!r} override {key}={value!r} uses {err} but column "
                    f"{col.name!r} has vars {sorted(col.vars)}"
                ) from err
        out[key] = value
    return out


def _yaml_scalar(value: Any) -> str:
    """A column variable written so that YAML reads it back unchanged: Python writes 1e-05, which YAML reads as a
    string; yaml.safe_dump writes 1.0e-05."""
    return yaml.safe_dump(value).removesuffix("...\n").strip() if isinstance(value, float) else str(value)


def cell_split(spec: TableSpec, row: Row, col: Column) -> str:
    return cell_overrides(spec, row, col).get("split", spec.split)


def implemented(group: str, name: str | None) -> bool:
    """Whether grand_bench has ``conf/<group>/<name>.yaml`` (a model or dataset it can run)."""
    return name is not None and (CONF_DIR / group / f"{name}.yaml").is_file()


def paper_values(spec: TableSpec, reference: list[dict[str, str]] | None = None) -> dict[tuple[str, str], dict]:
    """(paper's row, paper's column) -> the reference CSV row, for the spec's (paper, table)."""
    if spec.reference is None:
        return {}
    paper, table = spec.reference
    rows = published() if reference is None else reference
    return {(r["model"], r["dataset"]): r for r in rows if (r["paper"], r["table"]) == (paper, table)}


# ------------------------------------------------------------------------------------------------- matching


def config_value(config: dict, key: str) -> Any:
    """The value at a dotted key of a record's config; a group name reads the group's choice field. A key
    added after the record was made (``run_key.ADDED_WITH_DEFAULT``) reads as the default it ran with."""
    if key in GROUP_FIELD:
        key = f"{key}.{GROUP_FIELD[key]}"
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return ADDED_WITH_DEFAULT.get(key, _ABSENT)
        node = node[part]
    return node


def same_value(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def any_setting(spec: TableSpec, row: Row, col: Column) -> None:
    """Settings for ``aggregate`` that accept every record matching the cell's overrides (fixture stores)."""
    return None


def matches(record: dict, spec: TableSpec, row: Row, col: Column) -> bool:
    """Whether a run record is of the cell (row, col): our model and dataset, one of the table's tags, the
    cell's split and metric, and the value of every override of the cell in the record's config."""
    if row.model is None or col.dataset is None:
        return False
    if (record.get("model"), record.get("dataset")) != (row.model, col.dataset):
        return False
    if record.get("tag") not in spec.tags or record.get("metric") != spec.metric:
        return False
    overrides = cell_overrides(spec, row, col)
    if record.get("split") != overrides.get("split", spec.split):
        return False
    config = record.get("config") or {}
    return all(
        same_value(config_value(config, key), value) for key, value in overrides.items() if key not in SELECTION_KEYS
    )


# ---------------------------------------------------------------------------------------------- aggregation


@dataclass
class Cell:
    row: Row
    column: Column
    state: str  # ours | no runs | not implemented | no dataset
    records: list[dict] = field(default_factory=list)
    n: int = 0  # ok runs
    failed: int = 0
    mean: float | None = None
    std: float | None = None
    paper_mean: float | None = None
    paper_std: float | None = None
    paper_text: str = ""  # as the paper prints it, e.g. "84.7 ± 0.6"
    paper_parts: tuple[str, str] = ("", "")  # the CSV's mean and std text
    decimals: int = 1
    delta: float | None = None
    within: bool | None = None
    better: bool | None = None  # outside the tolerance and better than the paper (direction-aware)

    @property
    def has_paper(self) -> bool:
        return self.paper_mean is not None


def one_per_run(records: list[dict]) -> list[dict]:
    """The latest record of each run (``replicate_key``): one run recorded under two of the table's tags (e.g.
    the same GCN on Texas for GraphCON Table 2 and GRAFF Table 1), or on a GPU and again on a CPU, counts once."""
    return list(finished_runs(records, key=replicate_key).values())


def aggregate(
    spec: TableSpec,
    records: list[dict],
    reference: list[dict[str, str]] | None = None,
    settings: CellSettings = any_setting,
) -> list[list[Cell]]:
    """One Cell per (row, column) of the spec, rows outer. ``settings(spec, row, col)``: the setting keys whose
    records count for the cell (None: any record matching the cell's overrides)."""
    paper = paper_values(spec, reference)
    grid = []
    for row in spec.rows:
        line = []
        for col in spec.columns:
            cell = Cell(row, col, state="ours")
            if not implemented("model", row.model):
                cell.state = "not implemented"
            elif not implemented("dataset", col.dataset):
                cell.state = "no dataset"
            ref = paper.get((row.name, col.name))
            decimals = METRIC_DECIMALS[spec.metric]
            if ref is not None:
                cell.paper_mean = float(ref["mean"])
                cell.paper_std = float(ref["std"]) if ref["std"] else None
                cell.paper_text = ref["mean"] + (f" ± {ref['std']}" if ref["std"] else "")
                cell.paper_parts = (ref["mean"], ref["std"])
                decimals = max(decimals, _decimals(ref["mean"]))
            cell.decimals = decimals
            candidates = [r for r in records if matches(r, spec, row, col)]
            if candidates:  # composing the cell's preset takes time: only for cells with records
                allowed = settings(spec, row, col)
                candidates = [r for r in candidates if allowed is None or setting_key(r.get("config") or {}) in allowed]
            cell.records = one_per_run(candidates)
            ok = [r for r in cell.records if r.get("status") == "ok"]
            cell.failed = len(cell.records) - len(ok)
            mean, std, n = summarise(
                spec.scale * r["test_at_best_val"] for r in ok if r.get("test_at_best_val") is not None
            )
            cell.n = n
            if n:
                cell.state = "ours"
                cell.mean, cell.std = mean, std
            elif cell.state == "ours":
                cell.state = "no runs"
            if n and cell.has_paper:
                cell.delta = mean - cell.paper_mean
                tolerance = max(cell.paper_std or 0.0, spec.tolerance)
                cell.within = abs(cell.delta) <= tolerance + 1e-9
                if not cell.within:
                    cell.better = cell.delta > 0 if spec.direction == "max" else cell.delta < 0
            line.append(cell)
        grid.append(line)
    return grid


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def summary(grid: list[list[Cell]]) -> dict[str, int]:
    cells = [c for line in grid for c in line]
    runs = {id(r): r for c in cells for r in c.records}
    return {
        "paper_cells": sum(c.has_paper for c in cells),
        "runnable": sum(c.state in ("ours", "no runs") for c in cells),
        "with_runs": sum(c.n > 0 for c in cells),
        "compared": sum(c.within is not None for c in cells),
        "within": sum(bool(c.within) for c in cells),
        # distinct records: a run can count for several cells (dopri5 has no step size: every step column)
        "runs_ok": sum(r.get("status") == "ok" for r in runs.values()),
        "runs_failed": sum(r.get("status") != "ok" for r in runs.values()),
        "min_n": min((c.n for c in cells if c.n), default=0),
    }


# ------------------------------------------------------------------------------------------------ rendering


def _num(value: float, decimals: int, sign: bool = False) -> str:
    return f"{value:+.{decimals}f}" if sign else f"{value:.{decimals}f}"


def _ours(cell: Cell) -> str:
    return f"{_num(cell.mean, cell.decimals)} ± {_num(cell.std, cell.decimals)}"


def _mark(cell: Cell) -> str:
    if cell.within is None:
        return ""
    return "✓" if cell.within else ("▲" if cell.better else "▼")


def _markdown_cell(cell: Cell) -> str:
    parts = []
    if cell.n:
        parts.append(f"{_ours(cell)} [{cell.n}" + (f" +{cell.failed} failed]" if cell.failed else "]"))
    elif cell.state == "no runs":
        parts.append("–" + (f" [{cell.failed} failed]" if cell.failed else ""))
    if cell.has_paper:
        parts.append(f"paper {cell.paper_text}" if parts else cell.paper_text)
    if cell.delta is not None:
        # one more decimal than the means, so that a gap just past the tolerance does not read as equal to it
        parts.append(f"Δ {_num(cell.delta, cell.decimals + 1, sign=True)} {_mark(cell)}")
    return "<br>".join(parts)


def _ours_label(row: Row) -> str:
    if row.model is None:
        return "–"
    return f"`{row.model}`" if implemented("model", row.model) else f"`{row.model}` (not yet)"


def to_markdown(spec: TableSpec, grid: list[list[Cell]]) -> str:
    s = summary(grid)
    tags = ", ".join(f"`{t}`" for t in spec.tags)
    lines = [f"# {spec.title}", "", f"{spec.citation}. Paper's protocol: {spec.protocol}.", ""]
    lines.append(
        f"**Ours**: mean ± population std of the {METRIC_LABEL[spec.metric]} at the best validation epoch over the "
        f"`ok` runs whose records carry tag {tags} and the cell's split (`{spec.split}` unless the column says), "
        "[n] runs."
    )
    if spec.reference:
        lines.append(
            f"**Paper**: `reference/published_results.csv` ({spec.reference[0]}, table {spec.reference[1]}). "
            f"Δ = ours − paper; ✓ within max(paper's std, {spec.tolerance}) of the paper's mean, ▲ / ▼ outside "
            "it and better / worse."
        )
    preset = f" (preset `conf/experiment/{spec.preset}.yaml`)" if spec.preset else ""
    lines += [
        f"Runs: `python scripts/reproduce.py table={spec.name}`{preset}. Spec: `conf/tables/{spec.name}.yaml`.",
        "",
    ]
    head = ["model", "ours", *(c.name for c in spec.columns)]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row, line in zip(spec.rows, grid, strict=True):
        lines.append("| " + " | ".join([row.name, _ours_label(row), *(_markdown_cell(c) for c in line)]) + " |")
    lines.append("")
    if spec.reference:
        lines.append(
            f"Cells with runs: {s['with_runs']} of {s['runnable']} runnable ({s['paper_cells']} paper cells); "
            f"within the paper's tolerance: {s['within']} of {s['compared']}; runs: {s['runs_ok']} ok, "
            f"{s['runs_failed']} failed."
        )
    else:
        lines.append(
            f"Cells with runs: {s['with_runs']} of {s['runnable']}; runs: {s['runs_ok']} ok, {s['runs_failed']} failed."
        )
    notes = [f"- {c.name}: {c.note}" for c in spec.columns if c.note] + [
        f"- {r.name}: {r.note}" for r in spec.rows if r.note
    ]
    if notes:
        lines += ["", "Notes:", *notes]
    return "\n".join(lines) + "\n"


LATEX_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}  # noqa: E501


def _tex(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(spec: TableSpec, grid: list[list[Cell]]) -> str:
    def ours(cell: Cell) -> str:
        if not cell.n:
            return "--" if cell.state == "no runs" else ""
        mark = r"^{\dagger}" if cell.within is False else ""
        return (
            f"${_num(cell.mean, cell.decimals)} \\pm {_num(cell.std, cell.decimals)}{mark}$ {{\\scriptsize[{cell.n}]}}"
        )

    def paper(cell: Cell) -> str:
        if not cell.has_paper:
            return ""
        mean, std = cell.paper_parts
        return f"${mean} \\pm {std}$" if std else f"${mean}$"

    caption = f"{_tex(spec.title)}. Ours: mean $\\pm$ population std over [n] runs" + (
        f"; paper: {_tex(spec.citation)}. $^\\dagger$: ours outside max(paper's std, {spec.tolerance}) of the "
        "paper's mean."
        if spec.reference
        else "."
    )
    lines = [
        f"% Written by `make tables` from the run records (conf/tables/{spec.name}.yaml); do not edit by hand.",
        r"\begin{table}[ht]",
        r"\centering",
        f"\\caption{{{caption}}}",
        f"\\label{{tab:{spec.name}}}",
        r"\begin{tabular}{l" + "c" * len(spec.columns) + "}",
        r"\toprule",
        "Model & " + " & ".join(_tex(c.name) for c in spec.columns) + r" \\",
        r"\midrule",
    ]
    for row, line in zip(spec.rows, grid, strict=True):
        if any(c.n or c.state == "no runs" for c in line):
            label = f"{_tex(row.name)} (ours)" if spec.reference else _tex(row.name)
            lines.append(label + " & " + " & ".join(ours(c) for c in line) + r" \\")
        if spec.reference and any(c.has_paper for c in line):
            lines.append(f"{_tex(row.name)} (paper) & " + " & ".join(paper(c) for c in line) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


CSV_FIELDS = (
    "table",
    "row",
    "model",
    "column",
    "dataset",
    "metric",
    "direction",
    "state",
    "ours_mean",
    "ours_std",
    "n",
    "n_failed",
    "paper_mean",
    "paper_std",
    "delta",
    "tolerance",
    "within",
)


def to_csv(spec: TableSpec, grid: list[list[Cell]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()

    def fmt(value: float | None) -> str:
        return "" if value is None else f"{value:.4f}"

    for line in grid:
        for c in line:
            tolerance = max(c.paper_std or 0.0, spec.tolerance) if c.has_paper else None
            writer.writerow(
                {
                    "table": spec.name,
                    "row": c.row.name,
                    "model": c.row.model or "",
                    "column": c.column.name,
                    "dataset": c.column.dataset or "",
                    "metric": spec.metric,
                    "direction": spec.direction,
                    "state": c.state,
                    "ours_mean": fmt(c.mean),
                    "ours_std": fmt(c.std),
                    "n": c.n,
                    "n_failed": c.failed,
                    "paper_mean": fmt(c.paper_mean),
                    "paper_std": fmt(c.paper_std),
                    "delta": fmt(c.delta),
                    "tolerance": fmt(tolerance),
                    "within": "" if c.within is None else str(c.within).lower(),
                }
            )
    return out.getvalue()


# -------------------------------------------------------------------------------------------------- writing


def write_tables(
    records: list[dict],
    out_dir: str | Path,
    names: list[str] | None = None,
    source: str = "results/runs",
    spec_dir: Path = SPEC_DIR,
    settings: CellSettings | None = None,
) -> list[Path]:
    """results/tables/<name>.{md,tex,csv} for every spec, and the index README.md; the paths written.

    ``source`` is how the index names where the records came from (kept relative, so the output is the same
    byte for byte on every machine). ``settings``: see ``aggregate``; default: the cells' presets as they
    compose today (``presets.cell_settings``).
    """
    if settings is None:
        from .presets import cell_settings as settings  # presets imports this module
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index_rows: list[tuple[TableSpec, dict]] = []
    outside: list[tuple[TableSpec, Cell]] = []
    counted: set[int] = set()
    for name in names or spec_names(spec_dir):
        spec = load_spec(name, spec_dir)
        grid = aggregate(spec, records, settings=settings)
        for line in grid:
            for cell in line:
                counted.update(id(r) for r in cell.records)
                if cell.within is False:
                    outside.append((spec, cell))
        for suffix, text in (
            ("md", to_markdown(spec, grid)),
            ("tex", to_latex(spec, grid)),
            ("csv", to_csv(spec, grid)),
        ):
            path = out / f"{name}.{suffix}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
        index_rows.append((spec, summary(grid)))
    uncounted = [r for r in records if id(r) not in counted]
    index = out / "README.md"
    index.write_text(index_markdown(index_rows, uncounted, source, outside), encoding="utf-8")
    written.append(index)
    return written


def index_markdown(
    rows: list[tuple[TableSpec, dict]],
    uncounted: list[dict],
    source: str,
    outside: list[tuple[TableSpec, Cell]] = (),
) -> str:
    lines = [
        "# Reproduced tables",
        "",
        f"Written by `make tables` (`scripts/make_tables.py`) from the run records in `{source}`; it never trains. "
        "Specs: `conf/tables/`; the papers' numbers: `reference/published_results.csv`; figures: "
        "`results/figures/`. Ours: mean ± population std of the test score at the best validation epoch; a cell "
        "is within when |ours − paper| ≤ max(paper's std, the table's tolerance, 1.0 point unless it says).",
        "",
        "| table | paper cells | runnable cells | cells with runs | within tolerance | runs ok / failed | fewest runs in a cell | files |",  # noqa: E501
        "|---|---|---|---|---|---|---|---|",
    ]
    compared = within = 0
    for spec, s in rows:
        files = " ".join(f"[{x}]({spec.name}.{x})" for x in ("md", "tex", "csv"))
        ratio = f"{s['within']} / {s['compared']}" if spec.reference else "–"
        lines.append(
            f"| {spec.title} | {s['paper_cells'] if spec.reference else '–'} | {s['runnable']} | {s['with_runs']} | "
            f"{ratio} | {s['runs_ok']} / {s['runs_failed']} | {s['min_n'] or '–'} | {files} |"
        )
        compared += s["compared"]
        within += s["within"]
    share = f" ({100 * within / compared:.0f} %)" if compared else ""
    lines += ["", f"Cells compared with a paper: {compared}; within the paper's tolerance: {within}{share}.", ""]
    lines += ["## Cells outside the paper's tolerance", ""]
    if not outside:
        lines += ["None.", ""]
    else:
        lines += [
            "What is known comes from the table's spec (`cell_notes`, the row's and the column's `note`).",
            "",
            "| table | row | column | ours [n] | paper | Δ | what is known |",
            "|---|---|---|---|---|---|---|",
        ]
        for spec, cell in outside:
            delta = f"{_num(cell.delta, cell.decimals + 1, sign=True)} {_mark(cell)}"
            known = spec.known(cell.row, cell.column) or "not investigated yet"
            lines.append(
                f"| [{spec.name}]({spec.name}.md) | {cell.row.name} | {cell.column.name} | {_ours(cell)} [{cell.n}] | "
                f"{cell.paper_text} | {delta} | {known.replace('|', '/')} |"
            )
        lines.append("")
    lines += ["## Records no table counts", ""]
    if not uncounted:
        lines.append("None.")
    else:
        lines += [
            "Runs in the store that match no cell (another tag, split or setting, or a setting the cell's preset "
            "has since changed); they are not in any table above.",
            "",
            "| tag | model | dataset | split | runs |",
            "|---|---|---|---|---|",
        ]
        groups = Counter(
            (str(r.get("tag")), str(r.get("model")), str(r.get("dataset")), str(r.get("split"))) for r in uncounted
        )
        lines += [f"| {t} | {m} | {d} | {s} | {n} |" for (t, m, d, s), n in sorted(groups.items())]
    return "\n".join(lines) + "\n"
