"""Data layer: raw-file staging, dataset loaders, split protocols and graph rewiring.

Everything the rest of grand_bench needs is re-exported here; see each module for the protocol it
implements.
"""

from grand_bench.data.datasets import LOADERS, load_graph, load_raw
from grand_bench.data.errors import DataError
from grand_bench.data.ogb_node import ogb_accuracy
from grand_bench.data.splits import SPLITS, Split, make_split
from grand_bench.data.transforms import rewire

__all__ = ["LOADERS", "SPLITS", "DataError", "Split", "load_graph", "load_raw", "make_split", "ogb_accuracy", "rewire"]
