"""The papers' figures from the run records (``make figures``, also run by ``make tables``; nothing here trains).

One function per figure. Each draws the cells of one spec (``conf/tables/<spec>.yaml``, the same cells and
record matching as the tables): ours as mean ± population std over the runs of a cell, the paper's printed
values (dashed) where it has any. A figure whose spec has no records is skipped with a one-line note.
Figures that need no run records (``SCRIPT_FIGURES``) are drawn by their own scripts and only indexed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .store import summarise  # noqa: E402
from .tables import (  # noqa: E402
    METRIC_LABEL,
    SPEC_DIR,
    Cell,
    CellSettings,
    Row,
    TableSpec,
    aggregate,
    cell_overrides,
    load_spec,
)

# Written without the library version (PNG "Software" text), so the bytes do not change with matplotlib's.
PNG_METADATA = {"Software": None}
DPI = 120
COLOURS = plt.rcParams["axes.prop_cycle"].by_key()["color"]  # row i of a spec is drawn in COLOURS[i]


@dataclass(frozen=True)
class Figure:
    spec: str  # conf/tables/<spec>.yaml; the figure is results/figures/<spec>.png
    draw: Callable[[TableSpec, list[list[Cell]], plt.Figure], None]
    what: str


def _one_setting(spec: TableSpec, row: Row) -> bool:
    """Whether every column runs the row with the same config (dopri5 has no step size): drawn as one level."""
    return len({(c.dataset, repr(sorted(cell_overrides(spec, row, c).items()))) for c in spec.columns}) == 1


def _ticks(ax: plt.Axes, spec: TableSpec, var: str) -> None:
    """The columns' values as the x ticks, written plainly (8, not 2^3)."""
    values = sorted({c.vars[var] for c in spec.columns if var in c.vars})
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.minorticks_off()


def _points(line: list[Cell], var: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (the column variable), ours mean and std for the cells of one row that have runs."""
    cells = sorted((c for c in line if c.n), key=lambda c: c.column.vars[var])
    return (
        np.array([c.column.vars[var] for c in cells], dtype=float),
        np.array([c.mean for c in cells]),
        np.array([c.std for c in cells]),
    )


def _paper(line: list[Cell], var: str) -> tuple[np.ndarray, np.ndarray]:
    cells = sorted((c for c in line if c.has_paper), key=lambda c: c.column.vars[var])
    return np.array([c.column.vars[var] for c in cells], dtype=float), np.array([c.paper_mean for c in cells])


def _against(spec: TableSpec, grid: list[list[Cell]], ax: plt.Axes, var: str) -> None:
    """Ours vs the column variable, one line per row with runs, the paper's values dashed in the same colour."""
    for i, (row, line) in enumerate(zip(spec.rows, grid, strict=True)):
        x, mean, std = _points(line, var)
        px, pmean = _paper(line, var)
        colour = COLOURS[i % len(COLOURS)]
        if len(x) and _one_setting(spec, row):  # one setting for every column: a horizontal band
            ax.axhline(mean[0], color=colour, label=f"{row.name} (ours)")
            ax.axhspan(mean[0] - std[0], mean[0] + std[0], color=colour, alpha=0.15)
        elif len(x):
            ax.errorbar(x, mean, yerr=std, color=colour, marker="o", capsize=3, label=f"{row.name} (ours)")
        if len(px):
            ax.plot(px, pmean, color=colour, linestyle="--", marker="x", label=f"{row.name} (paper)")
        failed = [c.column.vars[var] for c in line if c.failed and not c.n]
        if failed:  # every run failed (diverged, NaN loss): a mark on the x axis, so the point is not just absent
            ax.plot(
                failed,
                [0.02] * len(failed),
                color=colour,
                linestyle="none",
                marker="v",
                markersize=9,
                transform=ax.get_xaxis_transform(),
                label=f"{row.name}: every run failed",
            )
    ax.set_ylabel(METRIC_LABEL[spec.metric])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def accuracy_vs_depth(spec: TableSpec, grid: list[list[Cell]], fig: plt.Figure) -> None:
    """Score vs number of layers (GRAND Fig. 2; GraphCON Tables 6-8)."""
    ax = fig.add_subplot()
    _against(spec, grid, ax, "layers")
    ax.set_xscale("log", base=2)
    _ticks(ax, spec, "layers")
    ax.set_xlabel("layers")


def step_size(spec: TableSpec, grid: list[list[Cell]], fig: plt.Figure) -> None:
    """Accuracy and training time per epoch vs step size (GRAND Fig. 3 left); an adaptive solver is a band."""
    acc, time = fig.subplots(1, 2)
    _against(spec, grid, acc, "step")
    for i, (row, line) in enumerate(zip(spec.rows, grid, strict=True)):
        cells = sorted((c for c in line if c.n), key=lambda c: c.column.vars["step"])
        if not cells:
            continue
        seconds = [summarise(r["seconds_per_epoch"] for r in c.records if r.get("status") == "ok") for c in cells]
        x = [c.column.vars["step"] for c in cells]
        colour = COLOURS[i % len(COLOURS)]
        if _one_setting(spec, row):
            time.axhline(seconds[0][0], color=colour)
        else:
            time.errorbar(x, [s[0] for s in seconds], yerr=[s[1] for s in seconds], color=colour, marker="o")
    for ax in (acc, time):
        ax.set_xscale("log")
        ax.set_xlabel("step size")
    time.set_yscale("log")
    time.set_ylabel("seconds per training epoch")
    time.grid(alpha=0.3)


def gdc_topk(spec: TableSpec, grid: list[list[Cell]], fig: plt.Figure) -> None:
    """Accuracy vs the top-k of the GDC-rewired graph (GRAND Fig. 3 right)."""
    ax = fig.add_subplot()
    _against(spec, grid, ax, "k")
    ax.set_xscale("log", base=2)
    _ticks(ax, spec, "k")
    ax.set_xlabel("GDC top-k (edges kept per node)")


def graff_homophily(spec: TableSpec, grid: list[list[Cell]], fig: plt.Figure) -> None:
    """Accuracy vs edge homophily on syn-cora for W's parametrisations (GRAFF's ablation)."""
    ax = fig.add_subplot()
    _against(spec, grid, ax, "h")
    ax.set_xlabel("edge homophily of the syn-cora graph")


def dirichlet_energy(spec: TableSpec, grid: list[list[Cell]], fig: plt.Figure) -> None:
    """Dirichlet energy (GraphCON eq. 13) per layer or step, mean over runs, log scale (GraphCON Fig. 2)."""
    columns = [j for j, _ in enumerate(spec.columns) if any(_energies(line[j]) for line in grid)]
    axes = np.atleast_1d(fig.subplots(1, max(len(columns), 1)))
    for ax, j in zip(axes, columns, strict=False):
        for i, (row, line) in enumerate(zip(spec.rows, grid, strict=True)):
            curves = _energies(line[j])
            if not curves:
                continue
            length = min(len(c) for c in curves)
            mean = np.mean([c[:length] for c in curves], axis=0)
            ax.plot(np.arange(length), mean, color=COLOURS[i % len(COLOURS)], label=f"{row.name} ({len(curves)} runs)")
        ax.set_yscale("log")
        ax.set_xlabel("layer / solver step")
        ax.set_ylabel("Dirichlet energy")
        ax.set_title(spec.columns[j].name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)


def _energies(cell: Cell) -> list[list[float]]:
    """The per-layer energies of the cell's ok runs that recorded diagnostics (diagnostics.dirichlet=true)."""
    out = []
    for r in cell.records:
        energy = (r.get("diagnostics") or {}).get("dirichlet")
        if r.get("status") == "ok" and energy and all(e is not None for e in energy):
            out.append(energy)
    return out


FIGURES = (
    Figure("grand2021_fig2", accuracy_vs_depth, "GRAND Fig. 2: accuracy vs depth"),
    Figure("grand2021_fig3_step", step_size, "GRAND Fig. 3 (left): accuracy and time vs step size"),
    Figure("grand2021_fig3_topk", gdc_topk, "GRAND Fig. 3 (right): accuracy vs GDC top-k"),
    Figure("graphcon2022_fig2", dirichlet_energy, "GraphCON Fig. 2: Dirichlet energy vs layer"),
    Figure("graphcon2022_table6", accuracy_vs_depth, "GraphCON Table 6: ZINC MAE vs depth"),
    Figure("graphcon2022_table7", accuracy_vs_depth, "GraphCON Table 7: MNIST accuracy vs depth"),
    Figure("graphcon2022_table8", accuracy_vs_depth, "GraphCON Table 8: Cora accuracy vs depth"),
    Figure("graff2022_homophily", graff_homophily, "GRAFF: accuracy vs homophily on syn-cora"),
    Figure("rdgnn2024_depth", accuracy_vs_depth, "RDGNN: accuracy vs depth (IMEX, up to 64 layers)"),
)

# (what, file, command): drawn by a script from its own computation, with a JSON of the numbers beside the file
SCRIPT_FIGURES = (
    (
        "GraphCON Fig. 2 as the paper set it up: Dirichlet energy of untrained 100-layer models on a 10x10 grid",
        "graphcon2022_fig2_grid.png",
        "python scripts/dirichlet_grid.py",
    ),
    (
        "GRAND Fig. 4: learned diffusivity on an MNIST superpixel graph",
        "image_diffusion_mnist.png",
        "python scripts/image_diffusion_demo.py",
    ),
)


def make_figures(
    records: list[dict],
    out_dir: str | Path,
    spec_dir: Path = SPEC_DIR,
    figures: tuple[Figure, ...] = FIGURES,
    settings: CellSettings | None = None,
) -> tuple[list[Path], list[str]]:
    """Draw every figure that has records; (files written, one-line notes for those skipped). Also an index.
    ``settings``: which records count for a cell, as in ``tables.write_tables`` (default: today's presets)."""
    if settings is None:
        from .presets import cell_settings as settings
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, notes, index = [], [], []
    for figure in figures:
        spec = load_spec(figure.spec, spec_dir)
        grid = aggregate(spec, records, settings=settings)
        runs = sum(c.n for line in grid for c in line)
        if figure.draw is dirichlet_energy:
            runs = sum(len(_energies(c)) for line in grid for c in line)
        if not runs:
            note = f"skipped {figure.spec}.png: no records for conf/tables/{figure.spec}.yaml yet"
            notes.append(note)
            index.append(f"| {figure.what} | – (no records: `python scripts/reproduce.py table={figure.spec}`) |")
            continue
        fig = plt.figure(figsize=(10, 4) if figure.draw is step_size else (6, 4.5))
        figure.draw(spec, grid, fig)
        fig.suptitle(spec.title, fontsize=10)
        fig.tight_layout()
        path = out / f"{figure.spec}.png"
        fig.savefig(path, dpi=DPI, metadata=PNG_METADATA)
        plt.close(fig)
        written.append(path)
        index.append(f"| {figure.what} | [{path.name}]({path.name}) ({runs} runs) |")
    text = (
        "# Figures\n\nDrawn by `make figures` (and `make tables`) from the run records; nothing here trains. Each "
        "figure's cells are those of its spec in `conf/tables/` (ours: mean ± population std over runs; the paper's "
        "printed values dashed where it has any).\n\n| figure | file |\n|---|---|\n" + "\n".join(index) + "\n"
        "\nDrawn by their own scripts, not from run records (each writes a JSON of its numbers, with the git commit and"
        " library versions, beside the figure):\n\n| figure | file | command |\n|---|---|---|\n"
        + "".join(f"| {what} | [{name}]({name}) | `{command}` |\n" for what, name, command in SCRIPT_FIGURES)
    )
    (out / "README.md").write_text(text, encoding="utf-8")
    return written, notes
