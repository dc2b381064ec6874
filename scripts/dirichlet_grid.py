"""GraphCON's Fig. 2 as the paper set it up: Dirichlet energy of random features on a 10x10 grid, layer by layer.

    python scripts/dirichlet_grid.py [--layers 100] [--side 10] [--width 64] [--seeds 0 1 2 3 4] [--gamma 1.0]

Rusch et al. (ICML 2022, Fig. 2) propagate node features drawn from U([0, 1]) on a 10 x 10 regular grid
(4-neighbour connectivity) through 100-layer GNNs with random weights and plot E(X^n) (eq. 13) against n:
it decays exponentially for GCN and GAT and stays away from zero for GraphCON-GCN and GraphCON-GAT.
Nothing is trained here. Each model is the project's own (conf/model/{gcn,gat,graphcon_gcn,graphcon_gat}.yaml,
their defaults apart from depth and width, in eval mode): GCN and GAT are ``--layers`` separate layers,
width ``--width`` throughout; GraphCON takes X^0 straight into its oscillator block (no encoder), one layer
shared by the ``--layers`` symplectic-Euler steps.

The paper does not say which alpha, gamma and dt its figure used, and the GraphCON repository has no code for
it. With alpha = gamma = dt = 1 the scheme reduces to X^n = sigma(F(X^{n-1})), a weight-shared GCN or GAT, so
the choice matters: GraphCON runs at several (alpha, dt) with gamma = ``--gamma``, and the figure shows them
all. Each line is the geometric mean over ``--seeds`` (features and weights drawn from the seed), the band the
range. Computed in float64, so energies far below float32's range are not flushed to zero.

Writes ``results/figures/graphcon2022_fig2_grid.png`` and, beside it, the JSON record of every energy with the
set-up, git commit, library versions and timing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from grand_bench import provenance  # noqa: E402
from grand_bench.cli import CONF_DIR  # noqa: E402
from grand_bench.config import register_configs  # noqa: E402
from grand_bench.data.synthetic import grid_graph  # noqa: E402
from grand_bench.diagnostics import layer_energies  # noqa: E402
from grand_bench.errors import ConfigError  # noqa: E402
from grand_bench.models import family  # noqa: E402
from grand_bench.provenance import PROJECT_ROOT  # noqa: E402
from grand_bench.report.figures import DPI, PNG_METADATA  # noqa: E402
from grand_bench.validate import validate  # noqa: E402

COUPLINGS = {"GCN": ("gcn", "graphcon_gcn"), "GAT": ("gat", "graphcon_gat")}  # panel: (baseline, GraphCON)
SETTINGS = ((1.0, 1.0), (1.0, 0.5), (1.0, 0.1), (0.5, 1.0), (0.0, 1.0))  # GraphCON's (alpha, dt)


def model_config(name: str, width: int, depth: list[str]) -> DictConfig:
    """The model file's defaults (no preset) at this width and depth, checked as train.py checks them."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        cfg = compose("config", overrides=[f"model={name}", f"model.hidden_dim={width}", "~best", *depth])
    validate(cfg)  # e.g. GAT's heads must divide the width: one line naming the value, not a traceback
    return cfg


def energies(cfg: DictConfig, side: int, width: int, seed: int) -> list[float]:
    """E(X^0..X^L) of one untrained model on the grid, features and weights drawn from ``seed``."""
    data = grid_graph(side, width, seed=seed)
    data.num_classes = width  # a discrete model's last layer keeps the width too
    model_family = family(cfg.model)
    graph = model_family.graph(data, cfg.model)
    torch.manual_seed(seed)
    model = model_family.build(cfg.model, cfg.solver, data)
    return layer_energies(model, data.x, graph, data.edge_index)


def geometric_band(runs: list[list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geometric mean, min and max over runs per layer; zeros floored at the smallest float64."""
    values = np.maximum(np.array(runs), np.finfo(np.float64).tiny)
    return np.exp(np.log(values).mean(0)), values.min(0), values.max(0)


def draw(record: dict, out: Path) -> None:
    fig, axes = plt.subplots(1, len(COUPLINGS), figsize=(6 * len(COUPLINGS), 4.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (panel, lines) in zip(axes, record["energies"].items(), strict=True):
        for i, (label, runs) in enumerate(lines.items()):
            mean, low, high = geometric_band(runs)
            layers = np.arange(len(mean))
            baseline = not label.startswith("GraphCON")
            colour = "black" if baseline else colours[i % len(colours)]
            ax.plot(layers, mean, color=colour, lw=2.2 if baseline else 1.4, label=label)
            ax.fill_between(layers, low, high, color=colour, alpha=0.12, lw=0)
        ax.set_yscale("log")
        ax.set_xlabel("layer n")
        ax.set_title(f"{panel} and GraphCON-{panel}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5)
    axes[0].set_ylabel("Dirichlet energy E(X^n)")
    setup = record["setup"]
    fig.suptitle(
        f"GraphCON Fig. 2: {setup['side']}x{setup['side']} grid, U[0,1] features, {setup['layers']} untrained layers"
        f" (width {setup['width']}, {len(setup['seeds'])} seeds; gamma = {setup['gamma']:g})",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=DPI, metadata=PNG_METADATA)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=100)
    parser.add_argument("--side", type=int, default=10, help="the grid is side x side nodes")
    parser.add_argument("--width", type=int, default=64, help="feature and hidden width")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--gamma", type=float, default=1.0, help="GraphCON's gamma")
    parser.add_argument("--out", default="results/figures/graphcon2022_fig2_grid.png")
    args = parser.parse_args()
    if args.layers < 1 or args.width < 1:
        parser.error(f"--layers and --width must be >= 1, got {args.layers} and {args.width}")
    out = Path(args.out) if Path(args.out).is_absolute() else PROJECT_ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    register_configs()
    try:
        record = measure(args)
    except ConfigError as err:
        parser.error(str(err))
    draw(record, out)
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"figure written to {out} ({record['wall_s']} s)")


def measure(args: argparse.Namespace) -> dict:
    """Every model's energies per seed, with the set-up, the resolved configs, timing and provenance."""
    started = time.perf_counter()
    record: dict = {
        "what": "GraphCON Fig. 2: Dirichlet energy (eq. 13) per layer of untrained models on a grid",
        "setup": {**{k: getattr(args, k) for k in ("side", "width", "layers", "seeds", "gamma")}, "dtype": "float64"},
        "energies": {},
        "configs": {},
    }
    for panel, (baseline, graphcon) in COUPLINGS.items():
        models = {panel: model_config(baseline, args.width, [f"model.num_layers={args.layers}"])}
        for alpha, dt in SETTINGS:
            depth = [
                f"model.layers={args.layers}",
                f"model.dt={dt}",
                f"model.alpha={alpha}",
                f"model.gamma={args.gamma}",
            ]
            models[f"GraphCON-{panel}, alpha={alpha:g}, dt={dt:g}"] = model_config(graphcon, args.width, depth)
        record["energies"][panel] = {}
        for label, cfg in models.items():
            per_seed = []
            for seed in args.seeds:
                values = energies(cfg, args.side, args.width, seed)
                if not all(math.isfinite(v) for v in values):
                    print(f"warning: {label}, seed {seed}: non-finite energy {values[-1]}", file=sys.stderr)
                per_seed.append(values)
            record["energies"][panel][label] = per_seed
            record["configs"][label] = {
                key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("model", "solver")
            }
            mean = geometric_band(per_seed)[0]
            print(f"{label:38s} E(X^0) {mean[0]:9.3g}   E(X^{args.layers}) {mean[-1]:9.3g}")
    record["wall_s"] = round(time.perf_counter() - started, 2)
    record.update(provenance.describe("cpu"))
    return record


if __name__ == "__main__":
    main()
