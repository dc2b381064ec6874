"""The benchmark harness: what a case measures, the overhead ratio's floor, failures recorded, the table."""

from __future__ import annotations

import pytest
import torch

from grand_bench.bench import history_table, markdown_table, measure, measure_isolated
from grand_bench.data.synthetic import sbm_graph

TINY = ["model.hidden_dim=8", "model.attention.dim=8", "model.attention.heads=2", "solver=rk4", "solver.step_size=0.5"]


def test_sbm_graph_is_undirected_with_the_requested_degree_and_labels():
    data = sbm_graph(2000, avg_degree=10, num_blocks=4, features=6, seed=1)
    src, dst = data.edge_index
    assert not (src == dst).any()
    pairs = set(zip(src.tolist(), dst.tolist(), strict=True))
    assert all((d, s) in pairs for s, d in list(pairs)[:500])
    assert 8 < data.edge_index.size(1) / data.num_nodes <= 10
    intra = (data.y[src] == data.y[dst]).float().mean()
    assert intra > 0.6  # p_intra = 0.8 of the sampled edges stay in their block
    assert data.x.shape == (2000, 6) and int(data.y.max()) == 3
    assert (data.train_mask.sum() + data.val_mask.sum() + data.test_mask.sum()) == 2000
    torch.testing.assert_close(sbm_graph(2000, seed=1).edge_index, sbm_graph(2000, seed=1).edge_index)


@pytest.mark.parametrize("model", ["grand_l", "grand_nl"])
def test_measure_reports_times_nfe_and_an_overhead_ratio(model):
    record = measure(
        [f"model={model}", *TINY, "model.time=1.0"],
        epochs=2,
        warmup=1,
        floor_repeats=3,
        synthetic={"num_nodes": 300, "features": 5, "num_blocks": 3},
    )
    assert record["nfe_forward"] == 8 and record["nfe_eval"] == 8  # rk4, T=1, step 0.5
    assert record["epoch_seconds"] > 0 and record["inference_seconds"] > 0
    assert record["floor_seconds"] > 0 and record["overhead_ratio"] > 0
    assert record["seconds_per_evaluation"] > 0  # timed inside the solve, the solver's arithmetic excluded
    assert record["solve_seconds_per_evaluation"] == pytest.approx(
        max(record["solve_seconds"] - record["prepare_seconds"], 0) / 8
    )
    assert record["num_nodes"] == 300 and record["num_params"] > 0
    assert "| " in markdown_table([{"case": "c", "status": "ok", **record}])
    before = {"case": "c", "status": "ok", **record, "git": {"commit": "abcdef0123", "dirty": True}}
    after = {**before, "git": {"commit": "0123456789", "dirty": False}}
    history = history_table([before, after]).splitlines()
    assert [line.split(" | ")[2] for line in history[2:]] == ["abcdef0+", "0123456"]  # oldest first


@pytest.mark.slow
def test_a_failing_case_is_recorded_as_failed_in_its_own_process():
    result = measure_isolated(overrides=["model=grand_l", "solver.method=nope"], epochs=1, warmup=0, floor_repeats=1)
    assert result["status"] == "failed" and "nope" in result["error"]
    assert "failed" in markdown_table([{"case": "bad", **result}])
