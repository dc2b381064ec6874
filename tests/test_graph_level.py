"""Graph-level datasets (ZINC, PPI, MNIST superpixels) and the mini-batch graph-level trainer.

ZINC, PPI and PyG's MNISTSuperpixels file are not in the shared mirror: their real PyG loaders run on small
fixtures written here in the exact raw formats PyG reads (ZINC: pickled lists of molecule dicts + comma-separated
index files; PPI: networkx node-link JSON + npy arrays; MNISTSuperpixels.pt: a torch-saved (train, test) pair of
lists of dicts). The superpixel graphs are built from the real MNIST images of the mirror.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score
from torch_geometric.utils import is_undirected

from grand_bench.cli import group_options
from grand_bench.config import DatasetCfg, SplitCfg
from grand_bench.data import DataError
from grand_bench.data.graph_level import ZINC_ATOM_TYPES, load_graph_dataset
from grand_bench.data.superpixels import SuperpixelParams, build_split, image_graph, load_images, segment
from grand_bench.errors import ConfigError
from grand_bench.run import load_data, resolve_device, run
from grand_bench.training.graph_loop import MicroF1, graph_trainer

from .conftest import compose_cfg
from .data_fixtures import mirror_path, snapshot

TINY = (
    "model=grand_l",
    "solver=euler",
    "solver.step_size=1.0",
    "model.time=2.0",
    "model.hidden_dim=8",
    "model.attention.heads=1",
    "model.attention.dim=8",
    "model.input_dropout=0.0",
    "train.epochs=2",
    "train.progress=false",
)


# ---------------------------------------------------------------- fixtures in PyG's raw formats


def write_zinc_raw(raw_dir: Path, counts=(8, 4, 4), subset=(6, 3, 3), seed: int = 0) -> dict[str, list[dict]]:
    """ZINC's raw files: ``<part>.pickle`` (list of {atom_type, bond_type, logP_SA_cycle_normalized}) + ``.index``."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    written = {}
    for part, count, keep in zip(("train", "val", "test"), counts, subset, strict=True):
        mols = []
        for _ in range(count):
            n = int(torch.randint(4, 9, (1,), generator=gen))
            bonds = torch.zeros(n, n, dtype=torch.long)
            for i in range(n - 1):  # a chain plus one ring closure, bond types 1..3
                bonds[i, i + 1] = bonds[i + 1, i] = int(torch.randint(1, 4, (1,), generator=gen))
            bonds[0, n - 1] = bonds[n - 1, 0] = 1
            mols.append(
                {
                    "atom_type": torch.randint(0, ZINC_ATOM_TYPES, (n,), generator=gen),
                    "bond_type": bonds,
                    "logP_SA_cycle_normalized": torch.randn(1, generator=gen),
                }
            )
        with open(raw_dir / f"{part}.pickle", "wb") as handle:
            pickle.dump(mols, handle)
        index = torch.randperm(count, generator=gen)[:keep].tolist()  # PyG keeps the listed molecules, in order
        (raw_dir / f"{part}.index").write_text(",".join(map(str, index)) + "\n")
        written[part] = [mols[i] for i in index]
    return written


def write_ppi_raw(raw_dir: Path, graphs=(3, 1, 1), features: int = 50, labels: int = 121, seed: int = 0) -> dict:
    """PPI's raw files per part: ``<part>_graph.json`` (node-link), ``_feats.npy``, ``_labels.npy``, ``_graph_id.npy``.

    Node ids run on across the graphs of a part; graph ids start at 1 and run on across the parts (as DGL's files).
    """
    raw_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    sizes, first_id = {}, 1
    for part, count in zip(("train", "valid", "test"), graphs, strict=True):
        graph, ids, nodes = nx.Graph(), [], 0
        part_sizes = []
        for g in range(count):
            n = int(rng.randint(6, 11))
            graph.add_nodes_from(range(nodes, nodes + n))
            graph.add_edges_from((nodes + i, nodes + (i + 1) % n) for i in range(n))  # a ring per graph
            ids += [first_id + g] * n
            nodes += n
            part_sizes.append(n)
        first_id += count
        with open(raw_dir / f"{part}_graph.json", "w") as handle:
            json.dump(nx.node_link_data(graph, edges="links"), handle)
        np.save(raw_dir / f"{part}_feats.npy", rng.randn(nodes, features).astype(np.float32))
        np.save(raw_dir / f"{part}_labels.npy", rng.randint(0, 2, (nodes, labels)).astype(np.int64))
        np.save(raw_dir / f"{part}_graph_id.npy", np.array(ids, dtype=np.int64))
        sizes[part] = part_sizes
    return sizes


def write_pyg_mnist_superpixels(raw_dir: Path, train: int = 24, test: int = 6, seed: int = 0) -> None:
    """PyG's ``MNISTSuperpixels.pt``: (train, test) lists of {x [75, 1], edge_index, pos [75, 2], y [1]}."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)

    def graph(label: int) -> dict:
        pos = torch.rand(75, 2, generator=gen) * 28
        src = torch.arange(75).repeat_interleave(2)
        dst = torch.stack([(torch.arange(75) + 1) % 75, (torch.arange(75) - 1) % 75], 1).reshape(-1)
        return {
            "x": torch.rand(75, 1, generator=gen),
            "edge_index": torch.stack([src, dst]),
            "pos": pos,
            "y": torch.tensor([label]),
        }

    torch.save(
        ([graph(i % 10) for i in range(train)], [graph(i % 10) for i in range(test)]), raw_dir / "MNISTSuperpixels.pt"
    )


def dataset_cfg(name: str, **overrides) -> tuple[DatasetCfg, SplitCfg]:
    cfg = compose_cfg([f"dataset={name}"] + [f"dataset.{k}={v}" for k, v in overrides.items()])
    return cfg.dataset, cfg.split


def mnist_mirror() -> Path:
    path = mirror_path()
    if not (path / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.skip(f"raw MNIST not in the mirror at {path} (set GRAND_BENCH_RAW)")
    return path


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("GRAND_BENCH_OFFLINE", "1")  # a fixture that lacks a file must fail, not download


@pytest.fixture
def zinc_mirror(tmp_path) -> tuple[Path, dict]:
    mirror = tmp_path / "mirror"
    return mirror, write_zinc_raw(mirror / "ZINC" / "raw")


# ---------------------------------------------------------------- loaders


def test_zinc_loader_stages_from_mirror_and_one_hot_encodes_atoms(tmp_path, zinc_mirror, offline):
    mirror, mols = zinc_mirror
    before = snapshot(mirror)
    dataset, split = dataset_cfg("zinc")
    data = load_graph_dataset(dataset, split, tmp_path / "data", mirror)
    assert snapshot(mirror) == before  # read-only: nothing written into the mirror
    assert (tmp_path / "data" / "ZINC" / "raw" / "train.pickle").is_file()
    assert (tmp_path / "data" / "ZINC" / "subset" / "processed" / "train.pt").is_file()
    assert data.split.sizes() == {"train": 6, "val": 3, "test": 3}  # the .index files' subset
    assert (data.num_features, data.num_outputs, data.task) == (ZINC_ATOM_TYPES, 1, "graph_regression")
    for got, mol in zip(data.split.val, mols["val"], strict=True):
        assert got.x.shape == (mol["atom_type"].numel(), ZINC_ATOM_TYPES)
        assert torch.equal(got.x.argmax(1), mol["atom_type"]) and torch.all(got.x.sum(1) == 1)
        assert torch.equal(got.edge_index, mol["bond_type"].nonzero().t())
        assert got.edge_attr is None  # bond types are not used
        assert torch.allclose(got.y, mol["logP_SA_cycle_normalized"])


def test_zinc_scalar_atom_features_and_limit(tmp_path, zinc_mirror, offline):
    mirror, mols = zinc_mirror
    dataset, split = dataset_cfg("zinc", atom_features="scalar", limit=2)
    data = load_graph_dataset(dataset, split, tmp_path / "data", mirror)
    assert data.split.sizes() == {"train": 2, "val": 2, "test": 2}
    assert data.num_features == 1
    assert torch.equal(data.split.train[1].x.view(-1), mols["train"][1]["atom_type"].float())


def test_zinc_subset_cache_is_rebuilt_when_its_raw_files_change(tmp_path, offline):
    """PyG keeps ZINC(subset=True)'s cache in ZINC/subset/processed, not beside raw/: it must follow raw/ too."""
    root = tmp_path / "data"
    write_zinc_raw(root / "ZINC" / "raw", seed=0)
    dataset, split = dataset_cfg("zinc")
    first = load_graph_dataset(dataset, split, root, None)
    second_mols = write_zinc_raw(root / "ZINC" / "raw", seed=1)
    second = load_graph_dataset(dataset, split, root, None)
    assert not torch.equal(first.split.val[0].y, second.split.val[0].y)
    assert torch.allclose(second.split.val[0].y, second_mols["val"][0]["logP_SA_cycle_normalized"])


def test_zinc_missing_raw_file_is_one_line_error(tmp_path, offline):
    dataset, split = dataset_cfg("zinc")
    with pytest.raises(DataError, match=r"missing raw file\(s\).*ZINC/raw/train.pickle.*GRAND_BENCH_RAW"):
        load_graph_dataset(dataset, split, tmp_path / "data", tmp_path / "empty_mirror")


def test_mnist_without_raw_files_is_one_line_error(tmp_path, offline):
    dataset, split = dataset_cfg("mnist_superpixels", limit=12)
    with pytest.raises(DataError, match=r"missing raw file\(s\).*MNIST/raw/train-images-idx3-ubyte.*GRAND_BENCH_RAW"):
        load_graph_dataset(dataset, split, tmp_path / "data", tmp_path / "empty_mirror")


def test_ppi_loader_on_fixture(tmp_path, offline):
    mirror = tmp_path / "mirror"
    sizes = write_ppi_raw(mirror / "PPI" / "raw")
    dataset, split = dataset_cfg("ppi")
    data = load_graph_dataset(dataset, split, tmp_path / "data", mirror)
    assert data.split.sizes() == {"train": 3, "val": 1, "test": 1}  # graphs (the real data: 20 / 2 / 2)
    assert (data.num_features, data.num_outputs, data.task) == (50, 121, "node_multilabel")
    assert [g.num_nodes for g in data.split.train] == sizes["train"]
    graph = data.split.train[0]
    assert graph.x.shape == (sizes["train"][0], 50) and graph.y.shape == (sizes["train"][0], 121)
    assert graph.y.dtype == torch.float32 and is_undirected(graph.edge_index)
    assert graph.edge_index.size(1) == 2 * sizes["train"][0]  # the ring, both directions


def test_mnist_superpixels_pyg_loader_on_fixture(tmp_path, offline):
    mirror = tmp_path / "mirror"
    write_pyg_mnist_superpixels(mirror / "MNIST" / "raw")  # found beside raw MNIST, staged to MNISTSuperpixels/raw
    dataset, split = dataset_cfg("mnist_superpixels_pyg")
    data = load_graph_dataset(dataset, split, tmp_path / "data", mirror)
    assert (tmp_path / "data" / "MNISTSuperpixels" / "raw" / "MNISTSuperpixels.pt").is_file()
    assert data.split.sizes() == {"train": 22, "val": 2, "test": 6}  # 1/12 of the training graphs validate
    raw_train, raw_test = torch.load(mirror / "MNIST" / "raw" / "MNISTSuperpixels.pt", weights_only=True)
    assert data.split.test[0].x.shape == (75, 3) and data.num_features == 3 and data.num_outputs == 10
    order = np.random.RandomState(0).permutation(24)  # validation: the first 1/12 of a fixed shuffle
    for part, index in (("val", sorted(order[:2])), ("train", sorted(order[2:]))):
        got, raw = getattr(data.split, part)[0], raw_train[index[0]]
        assert torch.equal(got.x, torch.cat([raw["x"], raw["pos"] / 28], 1))  # [intensity, x, y]
        assert torch.equal(got.y, raw["y"]) and torch.equal(got.edge_index, raw["edge_index"])


# ---------------------------------------------------------------- superpixels from raw MNIST


def test_superpixel_graph_layout_and_determinism():
    images, _ = load_images(mnist_mirror() / "MNIST" / "raw", "train")
    params = SuperpixelParams()
    for image in images[:5]:
        x, edges = image_graph(image, params)
        x2, edges2 = image_graph(image, params)
        assert np.array_equal(x, x2) and np.array_equal(edges, edges2)  # deterministic
        labels = segment(image, params)
        n = labels.max() + 1
        assert x.shape == (n, 3) and n <= params.max_segments and x.dtype == np.float32
        rows, cols = np.nonzero(labels == 3)  # node 3: [mean intensity, mean column / 28, mean row / 28]
        expected = [image[rows, cols].mean() / 255, cols.mean() / 28, rows.mean() / 28]
        assert np.allclose(x[3], expected, atol=1e-6)
        assert x.min() >= 0 and x.max() <= 1
        # k-NN by brute force: every node's 8 nearest centroids are among its neighbours; undirected, no loops
        pos = x[:, 1:].astype(np.float64)
        edge_set = set(map(tuple, edges.T.tolist()))
        for i in range(n):
            dist = ((pos - pos[i]) ** 2).sum(1)
            dist[i] = np.inf
            nearest = np.argsort(dist, kind="stable")[: params.knn]
            assert all((j, i) in edge_set and (i, j) in edge_set for j in nearest)
        assert is_undirected(torch.from_numpy(edges)) and not np.any(edges[0] == edges[1])


def test_superpixel_cache_reused_and_resumed(tmp_path):
    raw = mnist_mirror() / "MNIST" / "raw"
    params = SuperpixelParams()
    cache = tmp_path / "cache"
    first, infos = build_split(raw, cache, "test", params, limit=12, progress=False, chunk=4)
    files = sorted(cache.glob("test_*.pt"))
    assert [f.name for f in files] == ["test_00000_00004.pt", "test_00004_00008.pt", "test_00008_00012.pt"]
    stamps = {f.name: f.stat().st_mtime_ns for f in files}
    again, _ = build_split(raw, cache, "test", params, limit=12, progress=False, chunk=4)
    assert {f.name: f.stat().st_mtime_ns for f in files} == stamps  # second load: nothing rebuilt
    files[1].unlink()  # an interrupted build: the middle chunk is missing
    resumed, _ = build_split(raw, cache, "test", params, limit=12, progress=False, chunk=4)
    assert files[0].stat().st_mtime_ns == stamps[files[0].name] and files[1].is_file()
    fewer, _ = build_split(raw, cache, "test", params, limit=6, progress=False, chunk=4)  # a shorter limit slices
    for other in (again, resumed):
        assert all(torch.equal(getattr(first, k), getattr(other, k)) for k in ("x", "edge_index", "num_nodes", "y"))
    assert len(first) == 12 and len(fewer) == 6 and torch.equal(fewer[5].x, first[5].x)
    images, labels = load_images(raw, "test")
    x, edges = image_graph(images[7], params)
    assert torch.equal(first[7].x, torch.from_numpy(x)) and torch.equal(first[7].edge_index, torch.from_numpy(edges))
    assert int(first[7].y) == labels[7] and len(infos) == 3


@pytest.mark.slow  # two spawned processes import torch: ~15 s
def test_superpixel_build_in_parallel_equals_serial(tmp_path):
    raw = mnist_mirror() / "MNIST" / "raw"
    serial, _ = build_split(raw, tmp_path / "a", "train", SuperpixelParams(), limit=6, progress=False)
    parallel, infos = build_split(raw, tmp_path / "b", "train", SuperpixelParams(), limit=6, workers=2, progress=False)
    assert infos[0]["workers"] == 2
    assert all(torch.equal(getattr(serial, k), getattr(parallel, k)) for k in ("x", "edge_index", "num_edges", "y"))


def test_mnist_superpixels_loader_split(tmp_path):
    dataset, split = dataset_cfg("mnist_superpixels", limit=24)
    data = load_graph_dataset(dataset, split, tmp_path / "data", mnist_mirror())
    assert data.split.sizes() == {"train": 22, "val": 2, "test": 24}
    train_idx, val_idx = set(data.split.train.index.tolist()), set(data.split.val.index.tolist())
    assert not train_idx & val_idx and len(train_idx | val_idx) == 24
    graph = data.split.val[0]
    assert graph.x.shape[1] == 3 and graph.y.shape == (1,) and graph.edge_index.dtype == torch.long
    assert (tmp_path / "data" / "MNIST" / "processed" / SuperpixelParams().tag / "train_00000_00024.pt").is_file()


# ---------------------------------------------------------------- training


def graph_run_cfg(tmp_path, data_root: Path, mirror: Path | None, *overrides: str):
    return compose_cfg(
        [
            f"data_root={data_root}",
            f"raw_mirror={mirror}" if mirror else "raw_mirror=null",
            f"results_dir={tmp_path / 'runs'}",
            f"checkpoint_dir={tmp_path / 'checkpoints'}",
            *TINY,
            *overrides,
        ]
    )


def test_grand_l_trains_on_zinc_fixture_through_run(tmp_path, zinc_mirror, offline):
    mirror, _ = zinc_mirror
    cfg = graph_run_cfg(tmp_path, tmp_path / "data", mirror, "dataset=zinc", "dataset.batch_size=4")
    (record,) = run(cfg)
    assert record["status"] == "ok", record["error"]
    assert (record["metric"], record["epochs_run"], record["split_sizes"]) == (
        "mae",
        2,
        {"train": 6, "val": 3, "test": 3},
    )
    val = record["history"]["val"]
    assert record["best_val"] == pytest.approx(min(val)) and record["best_epoch"] == int(np.argmin(val)) + 1
    assert record["test_at_best_val"] == pytest.approx(record["history"]["test"][record["best_epoch"] - 1])
    assert record["nfe_forward"] == 2.0  # euler, T = 2, step 1: two evaluations per mini-batch
    assert (tmp_path / "runs" / "grand_l_zinc.jsonl").is_file()


# GRAND++'s source term is made of the labelled training nodes: a node-level semi-supervised model only. CGNN
# learns one parameter per node of the one graph (validate refuses graph-level datasets: tests/test_config.py).
NODE_LEVEL_ONLY = {"grand_pp", "cgnn"}


@pytest.mark.parametrize("model", [m for m in group_options("model") if m not in NODE_LEVEL_ONLY])
def test_every_model_trains_on_mini_batches_of_graphs(tmp_path, zinc_mirror, offline, model):
    cfg = compose_cfg(
        [
            f"data_root={tmp_path / 'data'}",
            f"raw_mirror={zinc_mirror[0]}",
            f"results_dir={tmp_path / 'runs'}",
            f"checkpoint_dir={tmp_path / 'checkpoints'}",
            "dataset=zinc",
            "dataset.batch_size=4",
            f"model={model}",
            "model.hidden_dim=8",
            "train.epochs=1",
            "train.progress=false",
        ]
    )
    (record,) = run(cfg)
    assert record["status"] == "ok", record["error"]
    assert np.isfinite(record["best_val"]) and record["split_sizes"] == {"train": 6, "val": 3, "test": 3}


def test_grand_l_trains_on_mnist_superpixel_subset_through_run(tmp_path):
    cfg = graph_run_cfg(tmp_path, tmp_path / "data", mnist_mirror(), "dataset=mnist_superpixels", "dataset.limit=36")
    (record,) = run(cfg)
    assert record["status"] == "ok", record["error"]
    assert record["metric"] == "accuracy" and record["split_sizes"] == {"train": 33, "val": 3, "test": 36}
    assert all(0 <= s <= 1 for s in record["history"]["val"] + record["history"]["test"])
    assert record["num_params"] > 0 and record["epochs_run"] == 2


def test_ppi_trains_with_micro_f1(tmp_path, offline):
    mirror = tmp_path / "mirror"
    write_ppi_raw(mirror / "PPI" / "raw")
    (record,) = run(graph_run_cfg(tmp_path, tmp_path / "data", mirror, "dataset=ppi", "train.epochs=1"))
    assert record["status"] == "ok" and record["metric"] == "micro_f1" and 0 < record["test_at_best_val"] <= 1


def scripted_trainer(tmp_path, mirror, dataset: str, vals: list[float], *overrides: str):
    """A real GraphTrainer whose evaluation returns ``vals`` in turn (to test only the selection rule)."""
    cfg = graph_run_cfg(
        tmp_path, tmp_path / "data", mirror, f"dataset={dataset}", f"train.epochs={len(vals)}", *overrides
    )
    dataset_obj, _ = load_data(cfg, resolve_device("cpu"))
    trainer = graph_trainer(cfg, dataset_obj, resolve_device("cpu"))
    script = iter(vals)
    trainer.evaluate = lambda: ({"train": 0.0, "val": (v := next(script)), "test": 10 * v}, None, 0)
    return trainer


def test_regression_best_val_selection_takes_the_minimum(tmp_path, zinc_mirror, offline):
    trainer = scripted_trainer(tmp_path, zinc_mirror[0], "zinc", [0.5, 0.3, 0.4, 0.3, 0.6])
    outcome = trainer.fit()
    assert (outcome.best_val, outcome.best_epoch, outcome.test_at_best_val) == (0.3, 2, 3.0)  # strictly lower only


def test_classification_best_val_selection_takes_the_maximum(tmp_path, offline):
    mirror = tmp_path / "mirror"
    write_pyg_mnist_superpixels(mirror / "MNISTSuperpixels" / "raw")
    trainer = scripted_trainer(tmp_path, mirror, "mnist_superpixels_pyg", [0.2, 0.6, 0.4, 0.6])
    outcome = trainer.fit()
    assert (outcome.best_val, outcome.best_epoch) == (0.6, 2)


def test_graph_trainer_resumes_exactly_from_its_state(tmp_path, zinc_mirror, offline):
    args = (tmp_path, tmp_path / "data", zinc_mirror[0], "dataset=zinc", "dataset.batch_size=2")
    cfg, cfg_one = graph_run_cfg(*args, "train.epochs=3"), graph_run_cfg(*args, "train.epochs=1")
    device = resolve_device("cpu")
    dataset, _ = load_data(cfg, device)
    straight = graph_trainer(cfg, dataset, device).fit()
    first = graph_trainer(cfg_one, dataset, device)
    first.fit()
    state = first.state_dict()
    second = graph_trainer(cfg, dataset, device)
    second.load_state_dict(state)
    resumed = second.fit()
    assert resumed.history["val"] == straight.history["val"] and resumed.best_val == straight.best_val


def test_micro_f1_matches_scikit_learn():
    gen = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(50, 7, generator=gen), torch.randint(0, 2, (50, 7), generator=gen).float()
    metric = MicroF1()
    metric.update(logits[:20], labels[:20])  # accumulated over two batches
    metric.update(logits[20:], labels[20:])
    expected = f1_score(labels.numpy(), (logits > 0).numpy().astype(int), average="micro")
    assert metric.value() == pytest.approx(expected)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["dataset=zinc", "split=random"], "split must be 'official' for graph-level dataset 'zinc'"),
        (["dataset=zinc", "dataset.readout=none"], "dataset.readout for task 'graph_regression' must be sum or mean"),
        (["dataset=ppi", "dataset.readout=sum"], "dataset.readout for task 'node_multilabel' must be none"),
        (["dataset=zinc", "dataset.readout=max"], "unknown dataset.readout 'max'; valid: sum, mean, none"),
        (["dataset=mnist_superpixels", "dataset.limit=0"], "dataset.limit must be >= 1 or null, got 0"),
        (["dataset=zinc", "dataset.metric=accuracy"], "dataset.metric must be 'mae' for task 'graph_regression'"),
        (["dataset=zinc", "dataset.atom_features=embedding"], "unknown dataset.atom_features 'embedding'"),
        (["dataset=zinc", "eval.time_selection=true"], "eval.time_selection=true is for node-level datasets"),
        (["dataset=zinc", "diagnostics.dirichlet=true"], "diagnostics.dirichlet=true is for node-level datasets"),
        (["dataset=zinc", "train.nodes_per_step=64"], "train.nodes_per_step is for node-level datasets"),
    ],
)
def test_graph_level_config_errors(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(graph_run_cfg(tmp_path, tmp_path / "data", None, *overrides))
