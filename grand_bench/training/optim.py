"""Optimizer from config, with L2 on every parameter, on every weight but no bias, or on the first layer's
weights only."""

from __future__ import annotations

import torch
from torch import nn

from ..config import OptimCfg
from ..errors import unknown_choice

OPTIMIZERS = ("adam", "adamw", "adamax", "rmsprop", "sgd")
DECAY_SCOPES = ("all", "weights", "first_layer")


def parameter_groups(cfg: OptimCfg, model: nn.Module) -> list[dict]:
    """The trainable parameters, all decayed; with ``decay_scope=weights`` every one but the biases (Shchur
    et al.'s TF models regularise weights alone); with ``first_layer`` only the weights of the model's
    ``first_layer`` (Kipf & Welling's and Shchur et al.'s GCN put their L2 term there alone). Under both, a
    module marked ``weight_decay_exempt`` is left out too (GraphSAGE-pool's pooling transform, theirs)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.decay_scope == "all":
        return [{"params": params}]
    if cfg.decay_scope == "weights":
        scope = model
    elif cfg.decay_scope == "first_layer":
        scope = getattr(model, "first_layer", None)
        if not isinstance(scope, nn.Module):
            kind = type(model).__name__
            raise ValueError(f"optim.decay_scope=first_layer needs a model with a first layer; {kind} has none")
    else:
        raise ValueError(unknown_choice("optim.decay_scope", cfg.decay_scope, DECAY_SCOPES))
    exempt = {id(p) for m in scope.modules() if getattr(m, "weight_decay_exempt", False) for p in m.parameters()}
    decayed = [
        p
        for name, p in scope.named_parameters()
        if p.requires_grad and not name.endswith("bias") and id(p) not in exempt
    ]
    kept = {id(p) for p in decayed}
    return [{"params": decayed}, {"params": [p for p in params if id(p) not in kept], "weight_decay": 0.0}]


@torch.no_grad()
def l2_penalty(optimizer: torch.optim.Optimizer) -> float:
    """The L2 term whose gradient the optimiser's (coupled) weight decay adds: sum over groups of wd / 2 * |p|^2."""
    terms = [
        group["weight_decay"] / 2 * sum(p.pow(2).sum() for p in group["params"])
        for group in optimizer.param_groups
        if group["weight_decay"] and group["params"]
    ]
    return float(sum(terms))  # one device sync for the whole sum


def build_optimizer(cfg: OptimCfg, model: nn.Module) -> torch.optim.Optimizer:
    params = parameter_groups(cfg, model)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamax":
        return torch.optim.Adamax(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)
    raise ValueError(unknown_choice("optim.name", cfg.name, OPTIMIZERS))
