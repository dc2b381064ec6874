"""Every model of conf/model/ trains end to end on the real Cora (random LCC split) and Texas (a geom-gcn
split), and every graph-level-capable one on MNIST superpixel graphs built from the mirror's raw MNIST.

One epoch each at hidden size 8: this checks the pipeline (loader, split, model, solver, record), not
accuracy; the accuracy numbers are in results/ and the closing notes.
"""

from __future__ import annotations

import numpy as np
import pytest

from grand_bench.cli import group_options
from grand_bench.run import run

from .conftest import compose_cfg
from .test_graph_level import mnist_mirror

MODELS = group_options("model")
# Graph-level capable (issue 4): the GraphCON variants and the baselines with a graph-level set-up.
GRAPH_LEVEL = [m for m in MODELS if m.startswith("graphcon_")] + ["gcn", "gat", "gin", "gatedgcn", "monet", "cheb"]
SMALL = ("model.hidden_dim=8", "train.epochs=1", "train.progress=false")


def ok(record: dict) -> None:
    assert record["status"] == "ok", record["error"]
    assert record["epochs_run"] == 1 and np.isfinite(record["best_val"])


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_trains_on_cora_random_split(run_cfg, model):
    (record,) = run(run_cfg(f"model={model}", "dataset=cora", "split=random", *SMALL))
    ok(record)
    assert record["split"] == "random" and record["split_sizes"]["train"] == 7 * 20  # 20 per class, LCC


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_trains_on_texas_geom_gcn_split(node_run_cfg, model):
    (record,) = run(node_run_cfg("texas/raw", f"model={model}", "dataset=texas", "split=geom_gcn", *SMALL))
    ok(record)
    assert record["split"] == "geom_gcn" and sum(record["split_sizes"].values()) == 183


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    return tmp_path_factory.mktemp("mnist_data")  # the superpixel subset is built once for the module


@pytest.mark.slow
@pytest.mark.parametrize("model", GRAPH_LEVEL)
def test_graph_level_models_train_on_mnist_superpixels(tmp_path, mnist_root, model):
    cfg = compose_cfg(
        [
            f"data_root={mnist_root}",
            f"raw_mirror={mnist_mirror()}",
            f"results_dir={tmp_path / 'runs'}",
            f"checkpoint_dir={tmp_path / 'checkpoints'}",
            "dataset=mnist_superpixels",
            "dataset.limit=36",
            f"model={model}",
            *SMALL,
        ]
    )
    (record,) = run(cfg)
    ok(record)
    assert record["metric"] == "accuracy" and record["split_sizes"] == {"train": 33, "val": 3, "test": 36}
