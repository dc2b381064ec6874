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
from .baselines import baseline_graph, build_baseline
from .cgnn import build_cgnn, cgnn_graph
from .graff import build_graff, graff_graph
from .grand import DIFFUSIVITIES, build_grand, diffusion_graph
from .graphcon import build_graphcon, graphcon_graph
from .reaction_diffusion import build_reaction_diffusion


@dataclass(frozen=True)
class ModelFamily:
    graph: Callable[[Data, Any], Any]
    build: Callable[[Any, SolverCfg, Data], nn.Module]  # (model cfg, solver cfg, data for the sizes)


FAMILIES: dict[str, ModelFamily] = {
    "grand": ModelFamily(graph=diffusion_graph, build=build_grand),
    "graff": ModelFamily(graph=graff_graph, build=build_graff),
    "graphcon": ModelFamily(graph=graphcon_graph, build=build_graphcon),
    "baseline": ModelFamily(graph=baseline_graph, build=build_baseline),
    # GRAND++, GREAD, RDGNN: GRAND's diffusion graph plus a reaction term
    "reaction_diffusion": ModelFamily(graph=diffusion_graph, build=build_reaction_diffusion),
    "cgnn": ModelFamily(graph=cgnn_graph, build=build_cgnn),
}


def family(model_cfg: Any) -> ModelFamily:
    try:
        return FAMILIES[model_cfg.family]
    except KeyError:
        raise ValueError(unknown_choice("model.family", model_cfg.family, FAMILIES)) from None


__all__ = ["DIFFUSIVITIES", "FAMILIES", "ModelFamily", "family"]
