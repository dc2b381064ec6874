"""GRAND's image-diffusion illustration (Chamberlain et al. 2021, §6.4, Fig. 4) on a real MNIST image.

    python scripts/image_diffusion_demo.py [--index 0] [--epochs 200] [--seed 0] [--noise 0.0]

One MNIST test image becomes a superpixel graph exactly as ``dataset=mnist_superpixels`` builds it
(grand_bench/data/superpixels.py: SLIC, at most 75 superpixels, each joined to its 8 nearest centroids).
Each superpixel is labelled digit (mean intensity >= 0.5) or background; a random half of them (``--seed``)
are the training labels and the other half is evaluated. Node features are [intensity, x, y] (``--noise``
adds Gaussian noise of that std to the intensity feature, labels stay those of the clean image).

Two GRAND models train on it full-batch with the repository's Trainer and the paper's integration time
T = 4.8 and step tau = 0.8 (explicit Euler, 6 steps): GRAND-nl, diffusivity A(X(t)) by attention, and
constant Laplacian diffusion (A = the random-walk adjacency). The figure draws the image with its superpixels
and labels, then each model's diffusivity on the edges of the graph (colour and width = a_ij, the mean of the
two directions, heads averaged; self-loops not drawn): GRAND-nl at t = 0 and at t = T after training, and the
constant one. Titles carry each model's accuracy on the unlabelled half. The figure goes to
``results/figures/image_diffusion_mnist.png`` and its numbers to a JSON file beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from skimage.segmentation import mark_boundaries  # noqa: E402
from torch_geometric.data import Data  # noqa: E402

from grand_bench import provenance  # noqa: E402
from grand_bench.cli import CONF_DIR  # noqa: E402
from grand_bench.config import register_configs  # noqa: E402
from grand_bench.data.mirror import check_data_root, missing_raw_error, stage_raw  # noqa: E402
from grand_bench.data.splits import Split  # noqa: E402
from grand_bench.data.superpixels import MNIST_FILES, SuperpixelParams, image_graph, load_images, segment  # noqa: E402
from grand_bench.models import family  # noqa: E402
from grand_bench.models.grand import laplacian_values  # noqa: E402
from grand_bench.provenance import PROJECT_ROOT  # noqa: E402
from grand_bench.training import Trainer, seed_everything  # noqa: E402

TIME, STEP = 4.8, 0.8  # GRAND §6.4: T = 4.8, tau = 0.8 (6 explicit steps)
MODELS = {"GRAND-nl": "grand_nl", "constant diffusion (Laplacian)": "grand_laplacian"}


def image_and_graph(data_root: Path, mirror: Path | None, index: int, noise: float, seed: int):
    """The test image, its SLIC labels, and the node-classification Data (digit = 1, background = 0)."""
    check_data_root(data_root, mirror)
    missing = stage_raw(data_root, mirror, "MNIST/raw", list(MNIST_FILES["test"]))
    if missing:
        raise missing_raw_error(missing, mirror, why="this demo reads the raw MNIST test images")
    images, digits = load_images(data_root / "MNIST/raw", "test")
    params = SuperpixelParams()
    features, edges = image_graph(images[index], params)
    x = torch.from_numpy(features)
    y = (x[:, 0] >= 0.5).long()
    gen = torch.Generator().manual_seed(seed)
    if noise > 0:
        x[:, 0] += noise * torch.randn(x.size(0), generator=gen)
    order = torch.randperm(x.size(0), generator=gen)
    half, three_quarters = x.size(0) // 2, 3 * x.size(0) // 4
    # 50% training labels; the unlabelled half is split in two only because the Trainer wants val and test
    parts = (order[:half], order[half:three_quarters], order[three_quarters:])
    split = Split(*(part.sort().values for part in parts))
    data = Data(x=x, y=y, edge_index=torch.from_numpy(edges), num_classes=2)
    return images[index], int(digits[index]), segment(images[index], params), data, split


def model_cfg(name: str, epochs: int, seed: int):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(
            "config",
            overrides=[
                "dataset=mnist_superpixels",  # the graph's origin; no conf/best/ file merges for it
                f"model={name}",
                f"model.time={TIME}",
                "solver=euler",
                f"solver.step_size={STEP}",
                "model.hidden_dim=16",
                "model.input_dropout=0.0",
                "model.attention.dim=16",
                "optim.lr=0.05",
                f"train.epochs={epochs}",
                "train.progress=false",
                f"seed={seed}",
            ],
        )


@torch.no_grad()
def unlabelled_accuracy(model, data: Data, graph, split: Split) -> float:
    """Accuracy of the trained model (last epoch) on every node without a training label."""
    model.eval()
    unlabelled = torch.cat([split.val, split.test])
    return float((model(data.x, graph).argmax(-1)[unlabelled] == data.y[unlabelled]).float().mean())


@torch.no_grad()
def diffusivities(model, data: Data, graph) -> dict[str, torch.Tensor]:
    """Edge values a_ij of the trained model: at t = 0 and t = T for attention, the constant ones otherwise."""
    model.eval()
    func = model.ode.func
    if func.attention is None:
        return {"": laplacian_values(graph, func.norm)}
    x0 = model.encode(data.x)
    return {"t = 0": func.attention(x0, graph), f"t = T = {TIME:g}": func.attention(model.ode(x0, graph), graph)}


def undirected_weights(graph, values: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(pairs [P, 2], weight [P]): each undirected edge once, weight = mean of a_ij and a_ji; no self-loops."""
    src, dst, vals = graph.src.numpy(), graph.dst.numpy(), values.numpy()
    table: dict[tuple[int, int], list[float]] = {}
    for s, d, v in zip(src, dst, vals, strict=True):
        if s != d:
            table.setdefault((min(s, d), max(s, d)), []).append(float(v))
    pairs = np.array(sorted(table))
    return pairs, np.array([np.mean(table[tuple(p)]) for p in pairs])


def pixel_positions(data: Data) -> np.ndarray:
    """Centroids in image coordinates: features x, y are pixel-index means / 28 (data/superpixels.py)."""
    return data.x[:, 1:].numpy() * 28


def draw_edges(ax, data: Data, pairs: np.ndarray, weight: np.ndarray, vmin: float, vmax: float):
    pos = pixel_positions(data)
    segments = np.stack([pos[pairs[:, 0]], pos[pairs[:, 1]]], axis=1)
    norm = plt.Normalize(vmin, vmax)
    width = 0.2 + 2.8 * (weight - vmin) / max(vmax - vmin, 1e-12)
    lines = LineCollection(segments, cmap="viridis", norm=norm, linewidths=width)
    lines.set_array(weight)
    ax.add_collection(lines)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=int, default=0, help="MNIST test image index")
    parser.add_argument("--epochs", type=int, default=200, help="Adam, learning rate 0.05")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=0.0, help="std of Gaussian noise on the intensity feature")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--raw-mirror", default=None, help="default: env GRAND_BENCH_RAW")
    parser.add_argument("--out", default="results/figures/image_diffusion_mnist.png")
    args = parser.parse_args()
    mirror = args.raw_mirror or os.environ.get("GRAND_BENCH_RAW")
    root = Path(args.data_root) if Path(args.data_root).is_absolute() else PROJECT_ROOT / args.data_root
    image, digit, labels, data, split = image_and_graph(
        root, Path(mirror) if mirror else None, args.index, args.noise, args.seed
    )
    register_configs()

    panels, summary = [], {"image_index": args.index, "digit": digit, "nodes": data.num_nodes}
    summary.update({"edges": int(data.edge_index.size(1)), "T": TIME, "tau": STEP, "epochs": args.epochs})
    summary.update({"noise": args.noise, "seed": args.seed, "train_nodes": split.train.numel(), "accuracy": {}})
    for title, name in MODELS.items():
        cfg = model_cfg(name, args.epochs, args.seed)
        model_family = family(cfg.model)
        graph = model_family.graph(data, cfg.model)
        seed_everything(cfg.seed)
        model = model_family.build(cfg.model, cfg.solver, data)
        trainer = Trainer(model, data.x, graph, data.y, split, cfg.optim, cfg.train, cfg.eval)
        outcome = trainer.fit()
        accuracy = unlabelled_accuracy(model, data, graph, split)
        summary["accuracy"][name] = {"final": accuracy, "best_val_epoch": outcome.best_epoch}
        print(f"{title}: accuracy on the unlabelled half {100 * accuracy:.1f}% after {outcome.epochs_run} epochs")
        for when, values in diffusivities(model, data, graph).items():
            panels.append(
                (f"{title}{', ' + when if when else ''}\nunlabelled accuracy {100 * accuracy:.1f}%", graph, values)
            )

    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(4.2 * (len(panels) + 1), 4.6))
    zoom = np.ones((8, 8), dtype=np.int64)  # boundaries drawn on an 8x upsampled image stay thin
    outlined = mark_boundaries(np.kron(image / 255.0, zoom), np.kron(labels, zoom), color=(0.0, 0.6, 0.8))
    axes[0].imshow(outlined, extent=(-0.5, 27.5, 27.5, -0.5))
    pos = pixel_positions(data)
    train = torch.zeros(data.num_nodes, dtype=torch.bool)
    train[split.train] = True
    for mask, face in ((train, None), (~train, "none")):
        colours = np.where(data.y[mask].numpy() == 1, "tab:orange", "tab:blue")
        axes[0].scatter(pos[mask, 0], pos[mask, 1], s=22, c=colours if face is None else "none", edgecolors=colours)
    axes[0].set_title(
        f"MNIST test image {args.index} (digit {digit}): {data.num_nodes} superpixels\n"
        "orange digit / blue background; filled = training label"
    )
    weights = [undirected_weights(graph, values) for _, graph, values in panels]
    vmin, vmax = min(float(w.min()) for _, w in weights), max(float(w.max()) for _, w in weights)
    for ax, (title, _, _), (pairs, weight) in zip(axes[1:], panels, weights, strict=True):
        ax.imshow(image, cmap="gray", alpha=0.35)
        lines = draw_edges(ax, data, pairs, weight, vmin, vmax)
        ax.set_title(title, fontsize=9)
    fig.colorbar(lines, ax=axes[1:].tolist(), shrink=0.8, label="diffusivity a_ij (mean of both directions)")
    for ax in axes:
        ax.set_xlim(-0.5, 27.5)
        ax.set_ylim(27.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
    out = Path(args.out) if Path(args.out).is_absolute() else PROJECT_ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, bbox_inches="tight")
    summary.update(provenance.describe("cpu"))
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"figure written to {out}")


if __name__ == "__main__":
    main()
