"""Synthetic graphs: a stochastic block model for benchmarks, a regular grid for GraphCON's Fig. 2.

PyG's ``stochastic_blockmodel_graph`` samples a dense N x N probability matrix, which does not reach
10^6 nodes; here each edge is drawn directly (O(E) time and memory): with probability ``p_intra`` both
endpoints come from one block, otherwise from two random blocks. Edges are made undirected.
"""

from __future__ import annotations

import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected


def sbm_graph(
    num_nodes: int,
    avg_degree: float = 10.0,
    num_blocks: int = 5,
    features: int = 32,
    p_intra: float = 0.8,
    num_edges: int | None = None,
    seed: int = 0,
) -> Data:
    """An undirected SBM graph (about ``avg_degree`` * N / 2 undirected edges, or ``num_edges``) with
    features x ~ N(mu_block, I) and the block as the label; ``train/val/test_mask`` split 60/20/20."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(num_blocks, (num_nodes,), generator=gen)
    members = [torch.nonzero(y == b).flatten() for b in range(num_blocks)]
    sizes = torch.tensor([len(m) for m in members])
    m = num_edges if num_edges is not None else int(avg_degree * num_nodes / 2)
    block_src = y[torch.randint(num_nodes, (m,), generator=gen)]
    intra = torch.rand(m, generator=gen) < p_intra
    block_dst = torch.where(intra, block_src, torch.randint(num_blocks, (m,), generator=gen))
    src, dst = torch.empty(m, dtype=torch.long), torch.empty(m, dtype=torch.long)
    for b in range(num_blocks):
        for blocks, out in ((block_src, src), (block_dst, dst)):
            pick = blocks == b
            offsets = torch.randint(int(sizes[b]), (int(pick.sum()),), generator=gen)
            out[pick] = members[b][offsets]
    edge_index, _ = remove_self_loops(torch.stack([src, dst]))
    edge_index = coalesce(to_undirected(edge_index, num_nodes=num_nodes), num_nodes=num_nodes)
    means = torch.randn(num_blocks, features, generator=gen)
    x = means[y] + torch.randn(num_nodes, features, generator=gen)
    order = torch.randperm(num_nodes, generator=gen)
    masks = [torch.zeros(num_nodes, dtype=torch.bool) for _ in range(3)]
    for mask, part in zip(
        masks,
        (
            order[: int(0.6 * num_nodes)],
            order[int(0.6 * num_nodes) : int(0.8 * num_nodes)],
            order[int(0.8 * num_nodes) :],
        ),
        strict=True,
    ):
        mask[part] = True
    data = Data(x=x, y=y, edge_index=edge_index, num_nodes=num_nodes)
    data.train_mask, data.val_mask, data.test_mask = masks
    data.num_classes = num_blocks
    return data


def grid_graph(side: int, features: int, seed: int = 0) -> Data:
    """GraphCON Fig. 2's graph: a ``side`` x ``side`` regular grid with 4-neighbour connectivity (each
    undirected edge listed both ways) and node features drawn from U([0, 1]); no labels (``y`` is zero)."""
    if side < 2 or features < 1:
        raise ValueError(f"grid_graph needs side >= 2 and features >= 1, got side={side}, features={features}")
    node = torch.arange(side * side).view(side, side)
    right = torch.stack([node[:, :-1].flatten(), node[:, 1:].flatten()])
    down = torch.stack([node[:-1].flatten(), node[1:].flatten()])
    edges = torch.cat([right, down], 1)
    edge_index = coalesce(torch.cat([edges, edges.flip(0)], 1), num_nodes=side * side)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(side * side, features, generator=gen)
    return Data(x=x, edge_index=edge_index, y=torch.zeros(side * side, dtype=torch.long), num_nodes=side * side)
