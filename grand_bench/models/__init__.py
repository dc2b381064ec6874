"""Model families. A family is a schema (config.py), a graph builder and a model builder.

The graph is built once per dataset (or per mini-batch of graphs) and passed to the model at every
forward pass, ``model(x, graph)``; it is shared by every run on the dataset (GDC rewiring is not repeated
per seed). A new PDE-GNN family is one ODE-function module plus an entry here and a YAML in conf/model/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn
from torch_geometric.data import Data

from ..config import SolverCfg
from ..errors import unknown_choice
from .grand import DIFFUSIVITIES, build_grand, diffusion_graph


@dataclass(frozen=True)
class ModelFamily:
    graph: Callable[[Data, Any], Any]
    build: Callable[[Any, SolverCfg, Data], nn.Module]  # (model cfg, solver cfg, data for the sizes)


FAMILIES: dict[str, ModelFamily] = {
    "grand": ModelFamily(graph=diffusion_graph, build=build_grand),
}


def family(model_cfg: Any) -> ModelFamily:
    try:
        return FAMILIES[model_cfg.family]
    except KeyError:
        raise ValueError(unknown_choice("model.family", model_cfg.family, FAMILIES)) from None


__all__ = ["DIFFUSIVITIES", "FAMILIES", "ModelFamily", "family"]
