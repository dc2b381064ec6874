"""Node-level datasets beyond Planetoid: Amazon / Coauthor (random splits), WebKB / Wikipedia / Actor (geom-gcn
splits), syn-cora (homophily levels) and ogbn-arxiv (official split, on a small fixture in OGB's raw layout).

Real data comes from the shared raw mirror (copied into a session data root by ``node_data_root``); each
dataset is loaded once against PyG's documented statistics and trained for one epoch end to end. The heavy
ones (squirrel, computers, coauthor_cs) are marked slow.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from torch_geometric.io import read_npz
from torch_geometric.utils import coalesce, homophily, is_undirected

from grand_bench.config import DatasetCfg, SplitCfg
from grand_bench.data import LOADERS, SPLITS, DataError, load_graph, load_raw, make_split, ogb_accuracy
from grand_bench.data.splits import masks_from_indices
from grand_bench.run import run
from grand_bench.training.loop import accuracy

from .conftest import compose_cfg, mirror_path

# ogb 1.3.6 builds y from a read-only pandas array; harmless, and not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The given NumPy array is not writable:UserWarning")

TINY = (
    "model=grand_l",
    "solver=euler",
    "solver.step_size=1.0",
    "model.time=1.0",
    "model.hidden_dim=8",
    "model.attention.heads=1",
    "model.attention.dim=8",
    "train.epochs=1",
)
GEOM = ("split=geom_gcn",)


@dataclass(frozen=True)
class Case:
    """One dataset of the mirror: PyG's documented statistics and what its protocol gives on split 0."""

    dataset: str
    raw_dir: str
    overrides: tuple[str, ...]
    nodes: int  # documented: PyG's docs / ../shared/data/README.md (edges = PyG's directed count)
    edges: int
    features: int
    classes: int
    graph_nodes: int  # after the protocol's LCC (Shchur et al. 2018: Computers 13,381, Photo 7,487)
    sizes: dict[str, int] = field(default_factory=dict)  # train/val/test of split index 0
    slow: bool = False


def sizes(train: int, val: int, test: int) -> dict[str, int]:
    return {"train": train, "val": val, "test": test}


SYN = ("dataset.homophily=0.3", "split.lcc=false")
CASES = [
    Case("texas", "texas/raw", GEOM, 183, 325, 1703, 5, 183, sizes(87, 59, 37)),
    Case("wisconsin", "wisconsin/raw", GEOM, 251, 515, 1703, 5, 251, sizes(120, 80, 51)),
    Case("cornell", "cornell/raw", GEOM, 183, 298, 1703, 5, 183, sizes(87, 59, 37)),
    Case("chameleon", "chameleon/geom_gcn/raw", GEOM, 2277, 36101, 2325, 5, 2277, sizes(1092, 729, 456)),
    Case("squirrel", "squirrel/geom_gcn/raw", GEOM, 5201, 217073, 2089, 5, 5201, sizes(2496, 1664, 1041), slow=True),
    Case("actor", "Actor/raw", GEOM, 7600, 30019, 932, 5, 7600, sizes(3648, 2432, 1520)),
    Case("photo", "Photo/raw", (), 7650, 238162, 745, 8, 7487, sizes(160, 1340, 5987)),
    Case("computers", "Computers/raw", (), 13752, 491722, 767, 10, 13381, sizes(200, 1300, 11881), slow=True),
    Case("coauthor_cs", "CS/raw", (), 18333, 163788, 6805, 15, 18333, sizes(300, 4700, 13333), slow=True),
    # syn-cora h=0.30, graph 1: 20 per class / 500 / the rest, as in GRAFF's homophily ablation (dev_size 600).
    Case("syn_cora", "syn-cora/raw", SYN, 1490, 5936, 1433, 5, 1490, sizes(100, 500, 890)),
]


def params(cases: list[Case]) -> list:
    return [pytest.param(c, id=c.dataset, marks=[pytest.mark.slow] if c.slow else []) for c in cases]


def split_file_sizes(raw_dir: Path, prefix: str, k: int) -> dict[str, int]:
    with np.load(raw_dir / f"{prefix}_split_0.6_0.2_{k}.npz") as npz:
        return {p: int(npz[f"{p}_mask"].sum()) for p in ("train", "val", "test")}


# --- real datasets from the mirror ----------------------------------------------------------------------


@pytest.mark.parametrize("case", params(CASES))
def test_dataset_loads_with_documented_counts(case, node_data_root):
    root = node_data_root(case.raw_dir)
    cfg = compose_cfg([f"dataset={case.dataset}", *case.overrides])
    raw = load_raw(cfg.dataset, cfg.split, root, None)
    # The full graph exactly as PyG builds it, against PyG's documented statistics.
    assert (raw.data.num_nodes, raw.data.edge_index.size(1)) == (case.nodes, case.edges)
    assert (raw.data.x.size(1), raw.num_classes) == (case.features, case.classes)

    data = load_graph(cfg.dataset, cfg.split, root, None)
    n = data.num_nodes
    assert n == case.graph_nodes and data.x.shape == (n, case.features) and data.num_classes == case.classes
    assert is_undirected(data.edge_index, num_nodes=n) and not bool((data.edge_index[0] == data.edge_index[1]).any())
    assert torch.equal(coalesce(data.edge_index, num_nodes=n), data.edge_index)
    if cfg.dataset.normalize_features:
        sums = data.x.sum(1)
        assert torch.allclose(sums[sums > 0], torch.ones(int((sums > 0).sum())))

    split = make_split(data, cfg.split, cfg.dataset)
    assert split.sizes() == case.sizes
    if cfg.split.name == "geom_gcn":
        # Masks read from the split files: as long as the graph, equal to the [N, 10] masks PyG built, and
        # split k has the sizes its file has.
        assert data.train_mask.shape == (case.nodes, 10)
        for key in ("train_mask", "val_mask", "test_mask"):
            assert torch.equal(data[key], raw.data[key])
        prefix = "film" if case.dataset == "actor" else case.dataset
        for k in (0, 9):
            k_split = make_split(data, SplitCfg(name="geom_gcn", index=k), cfg.dataset)
            assert k_split.sizes() == split_file_sizes(raw.raw_dir, prefix, k)
    else:
        assert sum(split.sizes().values()) == n  # random splits: every (LCC) node is train, val or test


@pytest.mark.parametrize("case", params(CASES))
def test_dataset_trains_one_epoch_end_to_end(case, node_run_cfg):
    records = run(node_run_cfg(case.raw_dir, f"dataset={case.dataset}", *case.overrides, *TINY))
    assert len(records) == 1
    record = records[0]
    assert record["status"] == "ok", record["error"]
    assert record["dataset"] == case.dataset and record["split_sizes"] == case.sizes
    assert record["epochs_run"] == 1 and 0 <= record["test_at_best_val"] <= 1


def test_texas_all_ten_geom_gcn_splits_in_one_command(node_run_cfg, node_data_root):
    splits = list(range(10))
    records = run(node_run_cfg("texas/raw", "dataset=texas", *GEOM, f"splits={splits}", *TINY))
    assert [r["split_index"] for r in records] == splits
    assert all(r["status"] == "ok" and r["split"] == "geom_gcn" for r in records)
    raw_dir = node_data_root("texas/raw") / "texas" / "raw"
    assert [r["split_sizes"] for r in records] == [split_file_sizes(raw_dir, "texas", k) for k in splits]


def test_heterophilic_datasets_refuse_other_protocols(node_data_root):
    root = node_data_root("texas/raw")
    texas = compose_cfg(["dataset=texas"]).dataset
    with pytest.raises(DataError, match="'texas' has no public split masks; use split=random or split=geom_gcn"):
        load_graph(texas, SplitCfg(name="public"), root, None)
    with pytest.raises(DataError, match="'texas' has no official split"):
        load_graph(texas, SplitCfg(name="official"), root, None)
    # The default split=random with GRAND's 1,500-node development set cannot fit 183 nodes.
    data = load_graph(texas, SplitCfg(name="random", lcc=True), root, None)
    with pytest.raises(DataError, match=r"dataset.dev_size 1500 must be in \[1, \d+\]"):
        make_split(data, SplitCfg(name="random"), texas)


def test_edge_direction_keeps_or_flips_the_shipped_links(node_data_root):
    root = node_data_root("texas/raw")
    texas = compose_cfg(["dataset=texas"]).dataset
    shipped = load_raw(texas, SplitCfg(name="geom_gcn"), root, None).data.edge_index
    shipped = coalesce(shipped[:, shipped[0] != shipped[1]])  # as shipped, without self-loops

    def edges(direction: str) -> torch.Tensor:
        texas.edge_direction = direction
        return load_graph(texas, SplitCfg(name="geom_gcn"), root, None).edge_index

    forward, reverse, undirected = edges("forward"), edges("reverse"), edges("undirected")
    assert not is_undirected(shipped)  # hyperlinks: the test below would pass vacuously otherwise
    assert torch.equal(forward, shipped)
    assert torch.equal(reverse, coalesce(shipped.flip(0)))
    assert torch.equal(undirected, coalesce(torch.cat([shipped, shipped.flip(0)], 1)))
    texas.edge_direction = "sideways"
    with pytest.raises(DataError, match="unknown dataset.edge_direction 'sideways'; valid: undirected, forward, rev"):
        load_graph(texas, SplitCfg(name="geom_gcn"), root, None)


# --- syn-cora --------------------------------------------------------------------------------------------


def syn_cora(homophily: float | None, graph: int = 1) -> DatasetCfg:
    return DatasetCfg(name="syn_cora", loader="syn_cora", pyg_name="syn-cora", homophily=homophily, graph=graph)


def test_syn_cora_selects_homophily_level_and_graph(node_data_root):
    root = node_data_root("syn-cora/raw")
    split = SplitCfg(name="random", lcc=False)
    for level, graph in ((0.3, 2), (0.8, 3)):
        data = load_graph(syn_cora(level, graph), split, root, None)
        expected = read_npz(str(mirror_path() / "syn-cora" / "raw" / f"h{level:.2f}-r{graph}.npz"))
        assert torch.equal(data.edge_index, coalesce(expected.edge_index, num_nodes=1490))
        assert torch.equal(data.y, expected.y) and data.num_classes == 5
        assert abs(float(homophily(data.edge_index, data.y)) - level) < 0.05  # generated to about h
    one = load_graph(syn_cora(0.3, 1), split, root, None)
    two = load_graph(syn_cora(0.3, 2), split, root, None)
    assert not torch.equal(one.edge_index, two.edge_index)


def test_syn_cora_unknown_level_or_graph_lists_choices(tmp_path):
    split = SplitCfg(name="random", lcc=False)
    levels = "0.00, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 0.99, 1.00"
    with pytest.raises(DataError) as err:
        load_graph(syn_cora(0.35), split, tmp_path, None)
    assert str(err.value) == f"unknown syn-cora homophily level (dataset.homophily) 0.35; valid: {levels}"
    with pytest.raises(DataError, match=f"'syn_cora' needs dataset.homophily; valid: {levels}"):
        load_graph(syn_cora(None), split, tmp_path, None)
    with pytest.raises(DataError, match=r"unknown syn-cora graph \(dataset.graph\) 4; valid: 1, 2, 3"):
        load_graph(syn_cora(0.3, graph=4), split, tmp_path, None)


def test_syn_cora_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match=r"h0\.30-r1\.npz .*PyG has no class for syn-cora.*GRAND_BENCH_RAW"):
        load_graph(syn_cora(0.3), SplitCfg(name="random", lcc=False), tmp_path / "root", tmp_path / "empty")


def test_lcc_that_drops_classes_is_refused(node_data_root):
    # At homophily 1.00 every class is its own component: the LCC would hold one class of five.
    root = node_data_root("syn-cora/raw")
    with pytest.raises(DataError, match=r"component \(298 of 1490 nodes\) holds 1 of 5 classes; set split.lcc=false"):
        load_graph(syn_cora(1.0), SplitCfg(name="random", lcc=True), root, None)


# --- ogbn-arxiv on a fixture in OGB's raw layout ---------------------------------------------------------

ARXIV = DatasetCfg(name="ogbn_arxiv", loader="ogb_node", pyg_name="ogbn-arxiv")
OFFICIAL = SplitCfg(name="official")


def write_csv_gz(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        for row in rows:
            f.write(",".join(str(v) for v in np.atleast_1d(row)) + "\n")


def write_ogbn_arxiv(mirror: Path, num_nodes: int = 40, features: int = 6, marker: bool = True) -> dict:
    """A tiny ogbn-arxiv in OGB's raw layout: exactly the files ogb 1.3.6 reads (read_csv_graph_raw,
    PygNodePropPredDataset.process / get_idx_split), directed edges as OGB ships them."""
    rng = np.random.RandomState(0)
    folder = mirror / "ogbn_arxiv"
    ring = np.stack([np.arange(num_nodes), (np.arange(num_nodes) + 1) % num_nodes])
    chords = rng.randint(0, num_nodes, (2, num_nodes))
    edges = np.concatenate([ring, chords[:, chords[0] != chords[1]]], 1)
    labels = rng.randint(0, 40, num_nodes)
    perm = rng.permutation(num_nodes)
    split = {"train": np.sort(perm[:20]), "valid": np.sort(perm[20:30]), "test": np.sort(perm[30:])}
    write_csv_gz(folder / "raw" / "edge.csv.gz", edges.T)
    write_csv_gz(folder / "raw" / "num-node-list.csv.gz", np.array([num_nodes]))
    write_csv_gz(folder / "raw" / "num-edge-list.csv.gz", np.array([edges.shape[1]]))
    write_csv_gz(folder / "raw" / "node-feat.csv.gz", rng.randn(num_nodes, features).round(4))
    write_csv_gz(folder / "raw" / "node-label.csv.gz", labels)
    write_csv_gz(folder / "raw" / "node_year.csv.gz", rng.randint(2010, 2021, num_nodes))
    for part, idx in split.items():
        write_csv_gz(folder / "split" / "time" / f"{part}.csv.gz", idx)
    if marker:
        (folder / "RELEASE_v1.txt").write_text("fixture\n")
    return {"edges": edges, "labels": labels, "split": split}


@pytest.fixture
def arxiv_mirror(tmp_path, monkeypatch) -> tuple[Path, dict]:
    monkeypatch.setenv("GRAND_BENCH_OFFLINE", "1")  # the fixture has every file; never reach for the network
    mirror = tmp_path / "mirror"
    return mirror, write_ogbn_arxiv(mirror)


def test_ogbn_arxiv_official_split_undirected(arxiv_mirror, tmp_path):
    mirror, fx = arxiv_mirror
    root = tmp_path / "root"
    raw = load_raw(ARXIV, OFFICIAL, root, mirror)
    assert raw.data.edge_index.size(1) == fx["edges"].shape[1]  # ogb keeps the directed edges as shipped
    assert raw.num_classes == 40 and raw.data.y.shape == (40, 1)

    data = load_graph(ARXIV, OFFICIAL, root, mirror)
    assert data.num_nodes == 40 and data.x.shape == (40, 6) and data.num_classes == 40
    assert data.y.shape == (40,) and torch.equal(data.y, torch.from_numpy(fx["labels"]))  # flattened
    assert is_undirected(data.edge_index, num_nodes=40)
    assert torch.equal(data.edge_index, coalesce(torch.cat([raw.data.edge_index, raw.data.edge_index.flip(0)], 1)))
    split = make_split(data, OFFICIAL, ARXIV)
    for part, ogb_part in (("train", "train"), ("val", "valid"), ("test", "test")):
        assert torch.equal(getattr(split, part), torch.from_numpy(fx["split"][ogb_part]))
    assert (root / "ogbn_arxiv" / "processed" / "geometric_data_processed.pt").is_file()
    # The second load reads ogb's processed file through torch.load (weights-only on torch >= 2.6).
    again = load_graph(ARXIV, OFFICIAL, root, mirror)
    assert torch.equal(again.edge_index, data.edge_index)


def test_ogbn_arxiv_release_marker_written_when_mirror_lacks_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAND_BENCH_OFFLINE", "1")
    mirror = tmp_path / "mirror"
    write_ogbn_arxiv(mirror, marker=False)
    # Without the marker ogb would ask on stdin whether to delete the folder and download it again.
    data = load_graph(ARXIV, OFFICIAL, tmp_path / "root", mirror)
    assert data.num_nodes == 40 and (tmp_path / "root" / "ogbn_arxiv" / "RELEASE_v1.txt").is_file()


def test_ogbn_arxiv_partial_or_absent_mirror_names_files(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    write_ogbn_arxiv(mirror)
    (mirror / "ogbn_arxiv" / "split" / "time" / "valid.csv.gz").unlink()
    monkeypatch.delenv("GRAND_BENCH_OFFLINE", raising=False)
    with pytest.raises(DataError, match=r"valid\.csv\.gz .*ogb downloads a dataset only into an empty folder"):
        load_graph(ARXIV, OFFICIAL, tmp_path / "root", mirror)
    monkeypatch.setenv("GRAND_BENCH_OFFLINE", "1")
    with pytest.raises(DataError, match=r"edge\.csv\.gz.*no download tried: GRAND_BENCH_OFFLINE is set"):
        load_graph(ARXIV, OFFICIAL, tmp_path / "root2", None)


def test_ogbn_arxiv_trains_one_epoch_end_to_end(arxiv_mirror, tmp_path):
    mirror, _ = arxiv_mirror
    cfg = compose_cfg(
        [
            "dataset=ogbn_arxiv",
            "split=official",
            f"data_root={tmp_path / 'root'}",
            f"raw_mirror={mirror}",
            f"results_dir={tmp_path / 'runs'}",
            "train.progress=false",
            *TINY,
        ]
    )
    record = run(cfg)[0]
    assert record["status"] == "ok" and record["split"] == "official"
    assert record["split_sizes"] == {"train": 20, "val": 10, "test": 10}


def test_ogb_evaluator_equals_plain_accuracy():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 40, generator=gen)
    y = torch.randint(0, 40, (200,), generator=gen)
    y[:60] = logits[:60].argmax(1)  # some right, most wrong
    index = torch.randperm(200, generator=gen)[:120]
    ours = accuracy(logits, y, index)
    assert ogb_accuracy("ogbn-arxiv", y[index], logits[index].argmax(1)) == pytest.approx(ours, abs=1e-7)
    assert 0 < ours < 1


# --- protocol and registry errors ------------------------------------------------------------------------


def test_official_split_with_lcc_and_bad_indices_refused(tmp_path):
    with pytest.raises(DataError, match="split 'official' with lcc=true: the OGB official split indices"):
        load_graph(ARXIV, SplitCfg(name="official", lcc=True), tmp_path, None)
    with pytest.raises(DataError, match="official split part 'test' indexes nodes outside"):
        masks_from_indices({"train": torch.tensor([0]), "valid": torch.tensor([1]), "test": torch.tensor([9])}, 5)
    with pytest.raises(DataError, match="official split lacks part 'valid'"):
        masks_from_indices({"train": torch.tensor([0]), "test": torch.tensor([1])}, 5)


@pytest.mark.parametrize(
    ("loader", "name", "valid"),
    [
        ("coauthor", "Physic", "CS, Physics"),
        ("amazon", "computers", "Computers, Photo"),
        ("webkb", "Texsa", "Texas, Wisconsin, Cornell"),
        ("wikipedia_network", "crocodile", "chameleon, squirrel"),
        ("actor", "Film", "Actor"),
        ("ogb_node", "ogbn-products", "ogbn-arxiv"),
    ],
)
def test_unknown_pyg_name_lists_choices(tmp_path, loader, name, valid):
    with pytest.raises(DataError, match=f"'{name}'; valid: {valid}$"):
        load_graph(DatasetCfg(name="x", loader=loader, pyg_name=name), SplitCfg(name="random"), tmp_path, None)


def test_download_failure_names_the_missing_raw_file(tmp_path, monkeypatch):
    from torch_geometric.datasets import Amazon

    def no_network(self):
        raise URLError("no network")

    # The real class with only its network step replaced, so the test does not depend on connectivity.
    monkeypatch.setattr(Amazon, "download", no_network)
    monkeypatch.delenv("GRAND_BENCH_OFFLINE", raising=False)
    photo = compose_cfg(["dataset=photo"]).dataset
    with pytest.raises(DataError, match=r"amazon_electronics_photo\.npz.*PyG could not fetch them: URLError"):
        load_graph(photo, SplitCfg(name="random", lcc=True), tmp_path / "root", None)


def test_geom_gcn_on_a_random_split_dataset_refused(node_data_root):
    photo = compose_cfg(["dataset=photo"]).dataset
    with pytest.raises(DataError, match=r"'photo' \(loader 'amazon'\) has no geom-gcn split files; use split=random"):
        load_graph(photo, SplitCfg(name="geom_gcn"), node_data_root("Photo/raw"), None)


def test_registries_list_every_family_and_protocol():
    assert set(LOADERS) == {
        "planetoid",
        "coauthor",
        "amazon",
        "webkb",
        "wikipedia_network",
        "actor",
        "ogb_node",
        "syn_cora",
    }
    assert SPLITS == ("public", "random", "geom_gcn", "stratified", "official")
