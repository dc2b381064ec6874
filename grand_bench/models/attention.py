"""Multi-head attention over graph edges, used as a learned diffusivity (GRAND §3.2, eq. 10).

For edge j -> i and head h: q_i = W_Q x_i, k_j = W_K x_j (heads of size d_k = dim / heads) and a score
s_ij^h from one of the kernels below; scores are normalised over each node's edge group (softmax or
squareplus) and averaged over heads: a_ij = mean_h a_ij^h. The weights of W_Q and W_K start at a
constant (1e-5), so all scores start nearly equal and A starts as uniform neighbourhood averaging
("a well-conditioned system", GRAND §4; reference §1.3). A ``frozen`` attention is computed without
gradient and keeps those initial weights, as GRAND's hard-attention block (reference §2.2).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..config import AttentionCfg
from ..errors import unknown_choice
from .graph import NORMS, SparseGraph

ATTENTION_TYPES = ("scaled_dot", "cosine_sim", "pearson", "exp_kernel")
NORMALISERS = ("softmax", "squareplus")


class EdgeAttention(nn.Module):
    """a_ij = mean_h normalise_i(score_h(q_i, k_j)) for every edge of a ``SparseGraph``."""

    def __init__(self, in_dim: int, cfg: AttentionCfg) -> None:
        super().__init__()
        self.type, self.norm, self.normaliser = cfg.type, cfg.norm, cfg.normaliser
        self.heads = cfg.heads
        self.head_dim = cfg.dim // cfg.heads
        self.query = nn.Linear(in_dim, cfg.dim)
        self.key = nn.Linear(in_dim, cfg.dim)
        if cfg.type == "exp_kernel":  # learnable output scale and length scale, both 1 at init
            self.sigma = nn.Parameter(torch.ones(1))
            self.length = nn.Parameter(torch.ones(1))
        if cfg.init_constant is not None:
            for layer in (self.query, self.key):
                nn.init.constant_(layer.weight, cfg.init_constant)
        self.frozen = cfg.frozen
        if cfg.frozen:
            self.requires_grad_(False)

    def scores(self, x: Tensor, graph: SparseGraph) -> Tensor:
        """Un-normalised scores, shape [E, heads]."""
        if self.type == "scaled_dot":  # no per-edge gather: one sampled product per head
            q = self.query(x).view(-1, self.heads, self.head_dim)
            k = self.key(x).view(-1, self.heads, self.head_dim)
            return graph.edge_dot(q, k) / math.sqrt(self.head_dim)
        q = self.query(x).view(-1, self.heads, self.head_dim)[graph.dst]
        k = self.key(x).view(-1, self.heads, self.head_dim)[graph.src]
        if self.type == "pearson":
            q = q - q.mean(-1, keepdim=True)
            k = k - k.mean(-1, keepdim=True)
        if self.type in ("cosine_sim", "pearson"):
            return nn.functional.cosine_similarity(q, k, dim=-1, eps=1e-5)
        squared = ((q - k) ** 2).sum(-1)
        return self.sigma**2 * torch.exp(-squared / (2 * self.length**2))

    def per_head(self, x: Tensor, graph: SparseGraph) -> Tensor:
        """Normalised attention per head, shape [E, heads]; each node's group sums to one per head."""
        s = self.scores(x, graph)
        if self.normaliser == "softmax":
            return graph.softmax(s, self.norm)
        # squareplus: a smooth, cheaper positive map (u + sqrt(u^2 + 4)) / 2 of max-shifted scores
        u = s - s.max()
        return graph.normalise((u + torch.sqrt(u**2 + 4)) / 2, self.norm)

    def forward(self, x: Tensor, graph: SparseGraph) -> Tensor:
        """Head-averaged attention, shape [E]."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return self.per_head(x, graph).mean(-1)


def check_attention_cfg(cfg: AttentionCfg, key: str = "model.attention") -> list[str]:
    """Problems with an attention config, as messages naming the option and what is allowed."""
    problems = []
    if cfg.type not in ATTENTION_TYPES:
        problems.append(unknown_choice(f"{key}.type", cfg.type, ATTENTION_TYPES))
    if cfg.normaliser not in NORMALISERS:
        problems.append(unknown_choice(f"{key}.normaliser", cfg.normaliser, NORMALISERS))
    if cfg.norm not in NORMS:
        problems.append(unknown_choice(f"{key}.norm", cfg.norm, NORMS))
    if cfg.heads < 1 or cfg.dim < 1 or cfg.dim % cfg.heads:
        problems.append(f"{key}.heads={cfg.heads} must be >= 1 and divide {key}.dim={cfg.dim}")
    return problems
