"""The papers' published numbers (``reference/published_results.csv``), looked up by our names."""

from __future__ import annotations

import csv
import functools

from ..provenance import PROJECT_ROOT

REFERENCE_FILE = PROJECT_ROOT / "reference" / "published_results.csv"
MODEL_NAMES = {"grand_l": "GRAND-l", "grand_nl": "GRAND-nl", "grand_nl_rw": "GRAND-nl-rw"}
DATASET_NAMES = {
    "cora": "Cora",
    "citeseer": "CiteSeer",
    "pubmed": "PubMed",
    "coauthor_cs": "CoauthorCS",
    "computers": "Computers",
    "photo": "Photo",
    "ogbn_arxiv": "ogbn-arxiv",
}
# which GRAND table a split protocol reproduces
GRAND_TABLE = {"public": "1", "random": "2"}


@functools.cache
def published() -> list[dict[str, str]]:
    with open(REFERENCE_FILE, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def paper_value(model: str, dataset: str, split: str) -> tuple[float, float | None, str] | None:
    """(mean, std, citation) of the GRAND paper's cell for our (model, dataset, split), if it has one."""
    table = GRAND_TABLE.get(split)
    name, data = MODEL_NAMES.get(model), DATASET_NAMES.get(dataset)
    for row in published():
        if (row["paper"], row["table"], row["model"], row["dataset"]) == ("grand2021", table, name, data):
            std = float(row["std"]) if row["std"] else None
            return float(row["mean"]), std, f"grand2021 Table {table}"
    return None
