"""Print a Markdown table of every node-level dataset and check it against the documented statistics.

    python scripts/dataset_report.py [--datasets cora texas ...] [--data-root DIR] [--raw-mirror DIR]

For each dataset (each homophily level for syn-cora, graph 1) it loads the full graph exactly as PyG (or
ogb) builds it, before any LCC, and reports nodes, edges (PyG's count: directed edge_index entries),
features, classes and edge homophily (``torch_geometric.utils.homophily(method='edge')`` on that graph);
then the undirected edge count our models see, the size of the largest connected component, and the
split sizes of split index 0 under the dataset's protocol. Nodes/edges/features/classes are compared
with DOCUMENTED below; a mismatch is marked and makes the exit status 1. A dataset whose raw files
cannot be had is listed as unavailable (not a mismatch).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from torch_geometric.data import Data  # noqa: E402
from torch_geometric.utils import homophily  # noqa: E402

from grand_bench.cli import CONF_DIR, group_options  # noqa: E402
from grand_bench.config import register_configs  # noqa: E402
from grand_bench.data import DataError, load_graph, load_raw, make_split  # noqa: E402
from grand_bench.data.datasets import SYN_CORA_LEVELS  # noqa: E402
from grand_bench.data.transforms import canonical_edges, largest_connected_component  # noqa: E402
from grand_bench.run import absolute  # noqa: E402

# DOCUMENTED VALUES, copied by hand, not measured: (nodes, edges, features, classes). Edges are PyG's count
# (directed edge_index entries). Source: PyG 2.8.1's dataset documentation as tabulated in
# the shared data mirror's README.md (../shared/data); syn-cora from the same README (5,930 edges at
# homophily 1.00); ogbn-arxiv from the OGB paper (Hu et al. 2020, Table 1; OGB ships its edges directed)
# and ogb's master.csv (40 classes).
DOCUMENTED: dict[str, tuple[int, int, int, int]] = {
    "cora": (2708, 10556, 1433, 7),
    "citeseer": (3327, 9104, 3703, 6),
    "pubmed": (19717, 88648, 500, 3),
    "texas": (183, 325, 1703, 5),
    "wisconsin": (251, 515, 1703, 5),
    "cornell": (183, 298, 1703, 5),
    "chameleon": (2277, 36101, 2325, 5),
    "squirrel": (5201, 217073, 2089, 5),
    "actor": (7600, 30019, 932, 5),
    "computers": (13752, 491722, 767, 10),
    "photo": (7650, 238162, 745, 8),
    "coauthor_cs": (18333, 163788, 6805, 15),
    "syn_cora": (1490, 5936, 1433, 5),
    "ogbn_arxiv": (169343, 1166243, 128, 40),
}
SYN_CORA_EDGES_AT_1 = 5930

# The protocol each dataset is reported under: the one its papers used (docs/datasets.md).
PROTOCOL: dict[str, tuple[str, ...]] = {
    "cora": ("split=public",),
    "citeseer": ("split=public",),
    "pubmed": ("split=public",),
    "coauthor_cs": ("split=random",),
    "computers": ("split=random",),
    "photo": ("split=random",),
    "ogbn_arxiv": ("split=official",),
    "syn_cora": ("split=random", "split.lcc=false"),
    **{name: ("split=geom_gcn",) for name in ("texas", "wisconsin", "cornell", "chameleon", "squirrel", "actor")},
}
COLUMNS = [
    "dataset",
    "protocol",
    "nodes",
    "edges (PyG)",
    "features",
    "classes",
    "edge homophily",
    "edges (undirected)",
    "LCC nodes",
    "split 0: train / val / test",
    "vs documented",
]


@dataclass
class Row:
    cells: list[str]
    mismatch: bool = False


def compose_dataset(name: str, extra: tuple[str, ...], args: argparse.Namespace) -> DictConfig:
    overrides = [f"dataset={name}", *PROTOCOL.get(name, ()), *extra, "seed=0"]
    if args.data_root:
        overrides.append(f"data_root={args.data_root}")
    if args.raw_mirror:
        overrides.append(f"raw_mirror={args.raw_mirror}")
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose("config", overrides=overrides)


def node_datasets() -> list[str]:
    names = []
    for name in group_options("dataset"):
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            if compose("config", overrides=[f"dataset={name}"]).dataset.task == "node_classification":
                names.append(name)
    return names


def report_row(name: str, label: str, extra: tuple[str, ...], args: argparse.Namespace) -> Row:
    cfg = compose_dataset(name, extra, args)
    root, mirror = absolute(cfg.data_root), absolute(cfg.raw_mirror)
    protocol = cfg.split.name + (" (LCC)" if cfg.split.lcc else "")
    try:
        # PyG and ogb print progress on stdout; keep stdout for the table.
        with contextlib.redirect_stdout(sys.stderr):
            raw = load_raw(cfg.dataset, cfg.split, root, mirror)
            data = load_graph(cfg.dataset, cfg.split, root, mirror)
            sizes = make_split(data, cfg.split, cfg.dataset).sizes()
    except DataError as err:
        print(f"{label}: {err}", file=sys.stderr)
        return Row([label, protocol, *(["–"] * 8), "unavailable (raw files not found; reason on stderr)"])

    n = int(raw.data.num_nodes)
    y = raw.data.y.view(-1)
    measured = (n, int(raw.data.edge_index.size(1)), int(raw.data.x.size(1)), int(raw.num_classes))
    documented = DOCUMENTED.get(name)
    if documented and name == "syn_cora" and cfg.dataset.homophily == 1.0:
        documented = (documented[0], SYN_CORA_EDGES_AT_1, *documented[2:])
    cells, wrong = [], []
    for what, got, doc in zip(("nodes", "edges", "features", "classes"), measured, documented or measured, strict=True):
        cells.append(f"{got:,}" if got == doc else f"**{got:,}** ✗ (doc {doc:,})")
        if got != doc:
            wrong.append(what)
    undirected = canonical_edges(raw.data.edge_index, n)
    lcc = largest_connected_component(Data(edge_index=undirected, num_nodes=n)).num_nodes
    verdict = "no documented values" if documented is None else ("ok" if not wrong else f"MISMATCH: {', '.join(wrong)}")
    return Row(
        [
            label,
            protocol,
            *cells,
            f"{float(homophily(raw.data.edge_index, y, method='edge')):.3f}",
            f"{undirected.size(1):,}",
            f"{lcc:,}",
            " / ".join(f"{sizes[p]:,}" for p in ("train", "val", "test")),
            verdict,
        ],
        mismatch=bool(wrong),
    )


def rows_for(name: str, args: argparse.Namespace) -> list[Row]:
    if name != "syn_cora":
        return [report_row(name, name, (), args)]
    return [report_row(name, f"syn_cora h={h:.2f}", (f"dataset.homophily={h}",), args) for h in SYN_CORA_LEVELS]


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r.cells) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", help="config names (default: every node-level dataset)")
    parser.add_argument("--data-root", help="writable data root (default: the config's data_root)")
    parser.add_argument("--raw-mirror", help="read-only raw mirror (default: the config's raw_mirror)")
    args = parser.parse_args(argv)
    register_configs()
    names = args.datasets or node_datasets()
    unknown = sorted(set(names) - set(group_options("dataset")))
    if unknown:
        print(
            f"error: unknown dataset(s) {', '.join(unknown)}; valid: {', '.join(group_options('dataset'))}",
            file=sys.stderr,
        )
        return 2
    rows = [row for name in names for row in rows_for(name, args)]
    print(markdown(rows))
    mismatches = sum(r.mismatch for r in rows)
    print(f"\n{len(rows)} row(s); {mismatches} mismatch(es) with the documented statistics.")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
