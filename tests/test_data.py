"""Data layer: raw staging from the read-only mirror, Planetoid loading, split protocols, GDC rewiring.

Only the ``cora`` fixture (module-scoped) and the geom-gcn end-to-end test process real Cora; every
other test runs on tiny in-memory graphs or fixture files under tmp_path.
"""

from __future__ import annotations

from urllib.error import URLError

import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, is_undirected

from grand_bench.config import DatasetCfg, RewiringCfg, SplitCfg
from grand_bench.data import LOADERS, SPLITS, DataError, Split, load_graph, make_split, rewire
from grand_bench.data.splits import read_geom_gcn_masks

from .data_fixtures import copy_mirror_part, raw_mirror, ring_with_chords, snapshot, write_geom_gcn_files

CORA = DatasetCfg(name="cora", loader="planetoid", pyg_name="Cora")
CORA_RAW = [f"ind.cora.{e}" for e in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")]


def random_cfg(index: int = 0, lcc: bool = True) -> SplitCfg:
    return SplitCfg(name="random", index=index, lcc=lcc, train_per_class=20)


def assert_disjoint(split: Split) -> None:
    parts = [set(split.train.tolist()), set(split.val.tolist()), set(split.test.tolist())]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]


@pytest.fixture(scope="module")
def cora(tmp_path_factory):
    """Real Cora loaded twice (LCC for random splits, full graph for public) from a private mirror copy."""
    base = tmp_path_factory.mktemp("cora")
    mirror = copy_mirror_part(raw_mirror(), base / "mirror", ["Cora/raw"])
    data_root = base / "data_root"
    before = snapshot(mirror)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRAND_BENCH_OFFLINE", "1")  # the mirror copy has everything; never reach for the network
        lcc = load_graph(CORA, random_cfg(), data_root, mirror)
        full = load_graph(CORA, SplitCfg(name="public"), data_root, mirror)
    return {"lcc": lcc, "full": full, "mirror": mirror, "data_root": data_root, "before": before}


# --- loading -------------------------------------------------------------------------------------------


def test_cora_graph_contract(cora):
    for data, n in ((cora["full"], 2708), (cora["lcc"], 2485)):
        assert data.num_nodes == n and data.x.shape == (n, 1433)
        assert data.x.dtype == torch.float32 and data.y.dtype == torch.int64 and data.y.dim() == 1
        assert data.num_classes == 7
        assert is_undirected(data.edge_index, num_nodes=n)
        assert not bool((data.edge_index[0] == data.edge_index[1]).any())
        assert torch.equal(coalesce(data.edge_index, num_nodes=n), data.edge_index)
    assert cora["full"].edge_index.size(1) == 10556  # PyG's documented Cora edge count
    # A random split must not inherit the public masks (a trainer could pick them up by mistake).
    assert getattr(cora["lcc"], "train_mask", None) is None


def test_load_leaves_mirror_untouched(cora):
    mirror, data_root = cora["mirror"], cora["data_root"]
    assert snapshot(mirror) == cora["before"]
    assert not list(mirror.rglob("processed"))
    assert (data_root / "Cora" / "processed" / "data.pt").is_file()
    for name in CORA_RAW:
        staged = data_root / "Cora" / "raw" / name
        assert staged.is_file() and not staged.is_symlink()
        assert staged.stat().st_size == (mirror / "Cora" / "raw" / name).stat().st_size


def test_normalize_features_rows_sum_to_one(cora):
    cfg = DatasetCfg(name="cora", loader="planetoid", pyg_name="Cora", normalize_features=True)
    data = load_graph(cfg, SplitCfg(name="public"), cora["data_root"], cora["mirror"])
    sums = data.x.sum(dim=1)
    assert torch.allclose(sums[sums > 0], torch.ones(int((sums > 0).sum())))
    assert not torch.allclose(cora["full"].x.sum(dim=1), sums)  # the plain load is really unnormalised


def test_missing_raw_file_offline_names_file(tmp_path, monkeypatch):
    mirror = copy_mirror_part(raw_mirror(), tmp_path / "mirror", ["Cora/raw"], skip=("ind.cora.graph",))
    monkeypatch.setenv("GRAND_BENCH_OFFLINE", "1")
    with pytest.raises(DataError) as err:
        load_graph(CORA, random_cfg(), tmp_path / "root", mirror)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(tmp_path / "root" / "Cora" / "raw" / "ind.cora.graph") in msg
    assert "ind.cora.x" not in msg  # the files the mirror had were staged, not reported
    assert "GRAND_BENCH_RAW" in msg


def test_download_failure_becomes_data_error(tmp_path, monkeypatch):
    from torch_geometric.datasets import Planetoid

    def no_network(self):
        raise URLError("no network")

    # The real class, with only its network step replaced, so the test does not depend on connectivity.
    monkeypatch.setattr(Planetoid, "download", no_network)
    monkeypatch.delenv("GRAND_BENCH_OFFLINE", raising=False)
    with pytest.raises(DataError, match=r"ind\.cora\.graph.*PyG could not fetch them: URLError.*GRAND_BENCH_RAW"):
        load_graph(CORA, random_cfg(), tmp_path / "root", None)


def test_data_root_inside_mirror_refused(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for root in (mirror, mirror / "sub"):
        with pytest.raises(DataError, match="inside the read-only raw mirror"):
            load_graph(CORA, random_cfg(), root, mirror)
    assert not (mirror / "sub").exists()


def test_unknown_loader_split_and_name_list_choices(tmp_path):
    bad_loader = DatasetCfg(name="x", loader="foo", pyg_name="Cora")
    with pytest.raises(DataError, match=r"unknown dataset loader 'foo'; valid: planetoid"):
        load_graph(bad_loader, random_cfg(), tmp_path, None)
    with pytest.raises(DataError, match=r"unknown split 'bogus'; valid: public, random, geom_gcn"):
        load_graph(CORA, SplitCfg(name="bogus"), tmp_path, None)
    bad_name = DatasetCfg(name="x", loader="planetoid", pyg_name="Corra")
    with pytest.raises(DataError, match=r"'Corra'; valid: Cora, CiteSeer, PubMed"):
        load_graph(bad_name, random_cfg(), tmp_path, None)
    assert {"planetoid", "amazon", "coauthor", "webkb"} <= set(LOADERS)
    assert SPLITS == ("public", "random", "geom_gcn", "stratified", "official")


def test_public_split_with_lcc_refused(tmp_path):
    with pytest.raises(DataError, match="public masks are defined on the full graph"):
        load_graph(CORA, SplitCfg(name="public", lcc=True), tmp_path, None)


# --- split protocols -----------------------------------------------------------------------------------


def test_public_split_cora(cora):
    split = make_split(cora["full"], SplitCfg(name="public"), CORA)
    assert split.sizes() == {"train": 140, "val": 500, "test": 1000}
    assert_disjoint(split)
    assert torch.equal(torch.bincount(cora["full"].y[split.train]), torch.full((7,), 20))


def test_random_split_cora_lcc(cora):
    data = cora["lcc"]
    split = make_split(data, random_cfg(0), CORA)
    assert split.sizes() == {"train": 140, "val": 1360, "test": 985}
    assert_disjoint(split)
    every = torch.cat([split.train, split.val, split.test]).sort().values
    assert torch.equal(every, torch.arange(data.num_nodes))  # covers every LCC node
    assert torch.equal(torch.bincount(data.y[split.train], minlength=7), torch.full((7,), 20))
    for part in (split.train, split.val, split.test):
        assert part.dtype == torch.int64 and torch.equal(part, part.sort().values)


def test_random_split_deterministic_in_index(cora):
    data = cora["lcc"]
    a, b, c = (make_split(data, random_cfg(i), CORA) for i in (7, 7, 8))
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(a, part), getattr(b, part))
    assert not torch.equal(a.train, c.train) and not torch.equal(a.test, c.test)


def test_random_split_too_few_nodes_in_a_class():
    y = torch.tensor([0] * 30 + [1] * 3)
    with pytest.raises(DataError, match="class 1 has .* fewer than split.train_per_class=20"):
        make_split(Data(y=y, num_nodes=33), random_cfg(), DatasetCfg(name="t", pyg_name="T", dev_size=33))


def stratified_cfg(index: int = 0, train: float = 0.48, val: float = 0.32) -> SplitCfg:
    return SplitCfg(name="stratified", index=index, train_fraction=train, val_fraction=val)


def test_stratified_split_keeps_each_class_48_32_20_and_covers_every_node(cora):
    data = cora["lcc"]
    split = make_split(data, stratified_cfg(3), CORA)
    assert_disjoint(split)
    every = torch.cat([split.train, split.val, split.test]).sort().values
    assert torch.equal(every, torch.arange(data.num_nodes))
    per_class = torch.bincount(data.y, minlength=7)
    for part, share in ((split.train, 0.48), (split.val, 0.32)):
        counts = torch.bincount(data.y[part], minlength=7)
        # every class, not only the total, is cut in the files' proportions (rounded per class)
        assert torch.all((counts - share * per_class).abs() <= 0.5 + 1e-9), (counts, per_class)
    a, b, c = (make_split(data, stratified_cfg(i), CORA) for i in (7, 7, 8))
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    assert not torch.equal(a.train, c.train)


def test_stratified_split_fractions_checked_before_loading(tmp_path):
    with pytest.raises(DataError, match=r"train_fraction=0.7 and split.val_fraction=0.4 .* < 1"):
        load_graph(CORA, stratified_cfg(train=0.7, val=0.4), tmp_path, None)
    y = torch.tensor([0, 0, 1, 1])  # two nodes a class: one to train, one to validate, none left to test
    with pytest.raises(DataError, match="leaves the test part empty"):
        make_split(Data(y=y, num_nodes=4), stratified_cfg(train=0.5, val=0.3), CORA)


def test_split_rejects_overlap():
    with pytest.raises(DataError, match="pairwise disjoint"):
        Split(torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([3]))


def test_geom_gcn_masks_from_fixture_files(tmp_path):
    written = write_geom_gcn_files(tmp_path, "toy", num_nodes=50, num_splits=3)
    masks = read_geom_gcn_masks(tmp_path, "toy", num_splits=3, num_nodes=50)
    data = Data(y=torch.zeros(50, dtype=torch.long), num_nodes=50, **masks)
    for k in range(3):
        split = make_split(data, SplitCfg(name="geom_gcn", index=k, num_splits=3), CORA)
        expected = {p: int(written[k][f"{p}_mask"].sum()) for p in ("train", "val", "test")}
        assert split.sizes() == expected == {"train": 24, "val": 16, "test": 10}
        assert torch.equal(split.train, torch.from_numpy(np.flatnonzero(written[k]["train_mask"])))
        assert_disjoint(split)
    with pytest.raises(DataError, match=r"index 3 out of range: there are 3 split files \(valid: 0\.\.2\)"):
        make_split(data, SplitCfg(name="geom_gcn", index=3, num_splits=3), CORA)


def test_geom_gcn_wrong_length_refused(tmp_path):
    write_geom_gcn_files(tmp_path, "toy", num_nodes=50, num_splits=2)
    with pytest.raises(DataError, match=r"toy_split_0\.6_0\.2_0\.npz: train_mask has length 50 but the graph has 40"):
        read_geom_gcn_masks(tmp_path, "toy", num_splits=2, num_nodes=40)
    with pytest.raises(DataError, match=r"toy_split_0\.6_0\.2_2\.npz not found"):
        read_geom_gcn_masks(tmp_path, "toy", num_splits=3, num_nodes=50)
    # Masks already attached but out of step with the graph (the original LCC/split-file mismatch).
    masks = read_geom_gcn_masks(tmp_path, "toy", num_splits=2, num_nodes=50)
    data = Data(y=torch.zeros(40, dtype=torch.long), num_nodes=40, **masks)
    with pytest.raises(DataError, match="length 50 but the graph has 40 nodes"):
        make_split(data, SplitCfg(name="geom_gcn", num_splits=2), CORA)


def test_geom_gcn_planetoid_end_to_end(tmp_path, monkeypatch):
    """Cora through PyG's Planetoid(split='geom-gcn') with fixture split files; LCC restricts the masks."""
    mirror = copy_mirror_part(raw_mirror(), tmp_path / "mirror", ["Cora/raw"])
    written = write_geom_gcn_files(mirror / "Cora" / "geom-gcn" / "raw", "cora", num_nodes=2708, num_splits=10)
    monkeypatch.setenv("GRAND_BENCH_OFFLINE", "1")
    root = tmp_path / "root"
    full = load_graph(CORA, SplitCfg(name="geom_gcn", index=4), root, mirror)
    assert full.train_mask.shape == (2708, 10)
    split = make_split(full, SplitCfg(name="geom_gcn", index=4), CORA)
    assert split.sizes() == {p: int(written[4][f"{p}_mask"].sum()) for p in ("train", "val", "test")}
    lcc = load_graph(CORA, SplitCfg(name="geom_gcn", index=4, lcc=True), root, mirror)
    lcc_split = make_split(lcc, SplitCfg(name="geom_gcn", index=4, lcc=True), CORA)
    assert lcc.num_nodes == 2485 and sum(lcc_split.sizes().values()) == 2485  # fixture masks cover all
    assert lcc_split.sizes()["train"] < split.sizes()["train"]
    assert not list(mirror.rglob("processed"))


# --- GDC rewiring --------------------------------------------------------------------------------------


def test_gdc_topk_keeps_k_per_column():
    n, k = 12, 4
    edge_index = ring_with_chords(n)
    for diffusion in ("ppr", "heat"):
        cfg = RewiringCfg(method="gdc", diffusion=diffusion, sparsification="topk", k=k, exact=True)
        ei, w = rewire(edge_index, n, cfg, self_loop_weight=1.0)
        assert ei.dim() == 2 and ei.size(0) == 2 and w.shape == (ei.size(1),)
        assert ei.size(1) == n * k and int(ei.min()) >= 0 and int(ei.max()) < n
        assert torch.equal(torch.bincount(ei[1], minlength=n), torch.full((n,), k))
        assert coalesce(ei, num_nodes=n).size(1) == ei.size(1)  # no duplicate edges
        col_sums = torch.zeros(n).index_add_(0, ei[1], w)
        assert torch.allclose(col_sums, torch.ones(n), atol=1e-5)  # output normalisation 'col'
        assert bool((w > 0).all())


def test_gdc_threshold_and_none():
    n = 12
    edge_index = ring_with_chords(n)
    cfg = RewiringCfg(method="gdc", ppr_alpha=0.5, sparsification="threshold", eps=0.05, exact=True)
    ei, w = rewire(edge_index, n, cfg, self_loop_weight=0.0)
    assert 0 < ei.size(1) < n * n and w.shape == (ei.size(1),)
    dense_cfg = RewiringCfg(method="gdc", ppr_alpha=0.5, sparsification="threshold", eps=1e-9)
    dense = rewire(edge_index, n, dense_cfg, 0.0)[0]
    assert dense.size(1) == n * n  # a connected graph's PPR matrix is dense: the threshold did the work
    same, ones = rewire(edge_index, n, RewiringCfg(method="none"), 1.0)
    assert same is edge_index and torch.equal(ones, torch.ones(edge_index.size(1)))


def test_gdc_rewires_a_graph_once_per_setting_and_hands_out_copies(monkeypatch):
    import grand_bench.data.transforms as transforms

    calls = []
    real_gdc = transforms._gdc
    monkeypatch.setattr(transforms, "_gdc", lambda *args: calls.append(args[3]) or real_gdc(*args))
    monkeypatch.setattr(transforms, "_REWIRED", {})
    n, edge_index = 12, ring_with_chords(12)
    top4 = RewiringCfg(method="gdc", sparsification="topk", k=4)
    ei, w = rewire(edge_index, n, top4, 1.0)
    ei[0, 0], w[0] = -1, 123.0  # a caller mutating its result must not reach the next run's graph
    again_ei, again_w = rewire(edge_index.clone(), n, top4, 1.0)
    assert len(calls) == 1 and int(again_ei.min()) >= 0 and float(again_w.max()) <= 1.0
    rewire(edge_index, n, RewiringCfg(method="gdc", sparsification="topk", k=3), 1.0)  # another setting
    rewire(edge_index, n, top4, 0.0)  # another self-loop weight
    rewire(ring_with_chords(10), 10, top4, 1.0)  # another graph
    assert len(calls) == 4


def test_gdc_invalid_settings():
    edge_index = ring_with_chords(8)
    with pytest.raises(DataError, match=r"unknown rewiring method 'two_hop'; valid: none, gdc"):
        rewire(edge_index, 8, RewiringCfg(method="two_hop"), 1.0)
    with pytest.raises(DataError, match=r"unknown GDC diffusion 'sym'; valid: ppr, heat"):
        rewire(edge_index, 8, RewiringCfg(method="gdc", diffusion="sym"), 1.0)
    with pytest.raises(DataError, match=r"unknown GDC sparsification 'knn'; valid: topk, threshold"):
        rewire(edge_index, 8, RewiringCfg(method="gdc", sparsification="knn"), 1.0)
    with pytest.raises(DataError, match="exact=false supports sparsification 'threshold' only"):
        rewire(edge_index, 8, RewiringCfg(method="gdc", exact=False), 1.0)
