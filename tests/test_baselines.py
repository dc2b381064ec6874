"""Baseline family: every PyG layer trains through run(cfg); depth, residual, DropEdge, equivariance, batching."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch_geometric.data import Batch
from torch_geometric.nn import GATConv, GCNConv, SAGEConv

from grand_bench.config import BaselineModelCfg, OptimCfg
from grand_bench.errors import ConfigError
from grand_bench.models import FAMILIES, family
from grand_bench.models.baselines import (
    LAYERS,
    BaselineGNN,
    SampledSAGEConv,
    ShchurSAGEConv,
    TiedGaussianKernels,
    ValueDropoutGATConv,
    baseline_graph,
    check_baseline_cfg,
    pseudo_coordinates,
    sample_neighbours,
)
from grand_bench.models.edge_graph import MeanSAGEConv, fixed_product, mean_edges, propagation_matrix
from grand_bench.run import run
from grand_bench.training import build_optimizer
from grand_bench.training.optim import l2_penalty
from grand_bench.validate import validate

from .conftest import compose_cfg, ring_graph

MODELS = ["mlp", "gcn", "gat", "sage", "sage_max", "sage_pool", "sage_mean", "gin", "gatedgcn", "monet", "monet_tied"]
MODELS += ["cheb", "gcnii", "appnp", "sage_sampled"]


def model_cfg(name: str, *overrides: str):
    """The shipped conf/model/<name>.yaml, composed through Hydra, with overrides."""
    return compose_cfg([f"model={name}", *(f"model.{o}" for o in overrides)]).model


def base_cfg(**kw) -> BaselineModelCfg:
    return OmegaConf.merge(OmegaConf.structured(BaselineModelCfg), {"name": "t", **kw})


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(cfg, data) -> BaselineGNN:
    torch.manual_seed(0)
    return family(cfg).build(cfg, None, data).eval()


def test_every_layer_has_a_model_yaml_and_the_family_is_registered():
    assert {model_cfg(name).layer for name in MODELS} == set(LAYERS)
    assert all(model_cfg(name).family == "baseline" for name in MODELS)
    assert "baseline" in FAMILIES


@pytest.mark.parametrize("name", MODELS)
def test_every_baseline_trains_two_epochs_on_cora(run_cfg, name):
    cfg = run_cfg(f"model={name}", "dataset=cora", "split=public", "train.epochs=2")
    (record,) = run(cfg)
    assert record["status"] == "ok", record["error"]
    assert record["model"] == name and record["epochs_run"] == 2
    assert record["nfe_forward"] == record["nfe_backward"] == record["nfe_eval"] == 0  # no ODE block
    assert 0 <= record["test_at_best_val"] <= 1 and all(torch.isfinite(torch.tensor(record["history"]["loss"])))
    data = type("Sizes", (), {"num_features": 1433, "num_classes": 7})()
    assert record["num_params"] == n_params(family(cfg.model).build(cfg.model, cfg.solver, data))
    assert record["config"]["model"]["layer"] == model_cfg(name).layer


def test_gcn_depth_and_options_set_layers_and_parameters(ring):
    f, h, c = ring.num_features, 16, 3

    def gcn(**kw) -> BaselineGNN:
        return BaselineGNN(f, c, base_cfg(layer="gcn", hidden_dim=h, **kw))

    # GCNConv(i, o) has i*o weights and o biases; the first layer reads the features, the last gives classes.
    assert n_params(gcn(num_layers=1)) == f * c + c
    for depth in (2, 5, 64):
        model = gcn(num_layers=depth)
        assert len(model.layers) == depth
        assert n_params(model) == (f * h + h) + (depth - 2) * (h * h + h) + (h * c + c)
        assert n_params(gcn(num_layers=depth, batch_norm=True)) == n_params(model) + (depth - 1) * 2 * h
        assert n_params(gcn(num_layers=depth, residual=True)) == n_params(model)  # identity skips: no weights
        assert sum(gcn(num_layers=depth, residual=True).skips) == depth - 2  # hidden -> hidden layers only
    encoded = gcn(num_layers=3, encoder=True)  # Linear encoder, 3 hidden -> hidden layers, Linear decoder
    assert len(encoded.layers) == 3 and n_params(encoded) == (f * h + h) + 3 * (h * h + h) + (h * c + c)
    assert len(BaselineGNN(f, c, base_cfg(layer="gcnii", num_layers=7, hidden_dim=h)).layers) == 7


def test_gcnii_star_weighs_the_initial_residual_separately(ring):
    """model.shared_weights=false is GCNII*: each layer has W1 for P h and W2 for x0, and W2 alone moves the output."""
    f, c, h, depth = ring.num_features, 3, 8, 4
    shared = BaselineGNN(f, c, base_cfg(layer="gcnii", num_layers=depth, hidden_dim=h))
    star_model = BaselineGNN(f, c, base_cfg(layer="gcnii", num_layers=depth, hidden_dim=h, shared_weights=False))
    assert n_params(star_model) == n_params(shared) + depth * h * h
    graph, x = baseline_graph(ring), ring.x
    star_model.eval()
    before = star_model(x, graph)
    with torch.no_grad():
        star_model.layers[0].weight2.add_(1.0)  # the x0 weight of the first layer only
    assert not torch.allclose(star_model(x, graph), before)
    problems = check_baseline_cfg(base_cfg(layer="gcn", shared_weights=False))
    assert "model.shared_weights=false (GCNII*) is for layer=gcnii, not 'gcn'" in problems


def star(leaves: int) -> torch.Tensor:
    """Edges of a star, both directions: node 0 has ``leaves`` neighbours, each leaf one."""
    centre, leaf = torch.zeros(leaves, dtype=torch.long), torch.arange(1, leaves + 1)
    return torch.stack([torch.cat([leaf, centre]), torch.cat([centre, leaf])])


def test_neighbour_sample_keeps_k_distinct_neighbours_and_reaches_every_one():
    edges = star(10)
    known = set(map(tuple, edges.T.tolist()))
    drawn = set()
    for seed in range(40):
        torch.manual_seed(seed)
        kept = sample_neighbours(edges, 11, 3)
        src, dst = kept
        assert (dst == 0).sum() == 3 and len(set(src[dst == 0].tolist())) == 3  # without replacement
        assert all((dst == leaf).sum() == 1 for leaf in range(1, 11))  # fewer than k: every neighbour
        assert set(map(tuple, kept.T.tolist())) <= known
        drawn |= set(src[dst == 0].tolist())
    assert drawn == set(range(1, 11))  # a fresh draw per call covers the whole neighbourhood


def test_sampled_sage_is_the_mean_over_all_neighbours_when_k_covers_them(ring):
    """h'_i = W [h_i || mean_j h_j]: with k >= every degree the sample is the whole neighbourhood, as PyG's
    SAGEConv(mean) with the two halves of W and no bias; with k = 1 the output changes between calls."""
    f, o = ring.num_features, 5
    conv = SampledSAGEConv(f, o, num_samples=100)
    reference = SAGEConv(f, o, aggr="mean", bias=False)
    with torch.no_grad():
        reference.lin_r.weight.copy_(conv.lin.weight[:, :f])
        reference.lin_l.weight.copy_(conv.lin.weight[:, f:])
    torch.testing.assert_close(conv(ring.x, ring.edge_index), reference(ring.x, ring.edge_index))
    conv.num_samples = 1
    star_x = torch.randn(11, f)
    assert not torch.allclose(conv(star_x, star(10)), conv(star_x, star(10)))


def test_sampled_sage_stack_ends_in_a_linear_classifier(ring):
    """graphsage-simple: L sampled layers to hidden_dim, each with the ReLU, then a Linear classifier."""
    f, h, c = ring.num_features, 8, int(ring.num_classes)
    model = build(base_cfg(layer="sage_sampled", num_layers=2, hidden_dim=h, dropout=0.0), ring)
    assert len(model.layers) == 2 and model.encoder is None and model.hidden_layers == 2
    assert n_params(model) == 2 * f * h + 2 * h * h + (h * c + c)
    assert model(ring.x, baseline_graph(ring)).shape == (ring.num_nodes, c)
    assert "model.num_samples must be >= 1, got 0" in check_baseline_cfg(base_cfg(layer="sage_sampled", num_samples=0))


def test_self_weight_adds_a_separate_weight_on_the_node_itself(ring):
    """DropEdge's withloop: h' = Abar h W + h W_self + b; with W zeroed only the self term and the bias remain."""
    f, h = ring.num_features, 8
    model = build(base_cfg(layer="gcn", num_layers=1, hidden_dim=h, dropout=0.0, self_weight=True), ring)
    plain = build(base_cfg(layer="gcn", num_layers=1, hidden_dim=h, dropout=0.0), ring)
    c = int(ring.num_classes)
    assert n_params(model) == n_params(plain) + f * c
    layer = model.layers[0]
    with torch.no_grad():
        layer.lin.weight.zero_()
    expected = ring.x @ layer.lin_self.weight.T + layer.bias
    torch.testing.assert_close(model(ring.x, baseline_graph(ring)), expected)
    problems = check_baseline_cfg(base_cfg(layer="gat", self_weight=True))
    assert "model.self_weight is for layer=gcn, not 'gat'" in problems


def test_residual_passes_the_state_through_a_zeroed_hidden_layer(ring):
    graph = baseline_graph(ring)
    outputs = {}
    for residual in (False, True):
        cfg = base_cfg(layer="gcn", num_layers=3, hidden_dim=8, dropout=0.0, residual=residual)
        model = build(cfg, ring)
        with torch.no_grad():
            for p in model.layers[1].parameters():
                p.zero_()
        first, last = model.layers[0], model.layers[2]
        edges = model.edges(graph)
        h = torch.relu(GCNConv.forward(first, ring.x, edges.index, edges.weight))  # PyG's own computation
        outputs[residual] = (model(ring.x, graph), GCNConv.forward(last, h, edges.index, edges.weight), last.bias)
    out, skipped, _ = outputs[True]
    torch.testing.assert_close(out, skipped)  # h + ReLU(0) = h: the 3-layer net acts as layers 1 and 3
    out, _, bias = outputs[False]
    torch.testing.assert_close(out, bias.expand_as(out))  # without the skip the zeroed layer erases h


@pytest.mark.parametrize("layer", ["gcn", "mlp"])
def test_input_dropout_replaces_dropout_on_the_input_features_only(ring, layer):
    """A one-layer stack drops out only its input: at input_dropout 0 training equals evaluation, by default not."""
    graph = baseline_graph(ring)
    for input_dropout, same in ((0.0, True), (None, False)):
        model = build(base_cfg(layer=layer, num_layers=1, dropout=0.9, input_dropout=input_dropout), ring)
        evaluated = model(ring.x, graph)
        torch.manual_seed(1)
        trained = model.train()(ring.x, graph)
        assert torch.allclose(trained, evaluated) is same, input_dropout
    # with hidden layers, dropout still acts between them
    model = build(base_cfg(layer=layer, num_layers=2, hidden_dim=8, dropout=0.9, input_dropout=0.0), ring)
    assert not torch.allclose(model.train()(ring.x, graph), model.eval()(ring.x, graph))


def test_value_dropout_drops_the_aggregated_features_in_training_only(ring):
    torch.manual_seed(3)
    conv = ValueDropoutGATConv(ring.num_features, 4, heads=2, dropout=0.0, value_dropout=0.5)
    plain = GATConv(ring.num_features, 4, heads=2, dropout=0.0)
    plain.load_state_dict(conv.state_dict())  # the same parameters: a drop-in GATConv
    x, edges = ring.x, ring.edge_index
    torch.testing.assert_close(conv.eval()(x, edges), plain.eval()(x, edges))
    assert not torch.allclose(conv.train()(x, edges), plain.train()(x, edges))
    # the attention itself is untouched: with every value kept the two agree in training as well
    conv.value_dropout = 0.0
    torch.testing.assert_close(conv(x, edges), plain(x, edges))


def test_value_dropout_is_refused_outside_gat():
    with pytest.raises(ConfigError, match="model.value_dropout is for layer=gat, not 'gcn'"):
        validate(compose_cfg(["model=gcn", "model.value_dropout=0.5"]))


@pytest.mark.parametrize(
    ("layer", "scope", "decayed"),
    [
        ("gcn", "first_layer", {"layers.0.lin.weight"}),
        ("gcnii", "first_layer", {"encoder.weight"}),
        ("sage_pool", "first_layer", {"layers.0.lin_self.weight", "layers.0.lin_neigh.weight"}),  # not .pool
        ("sage_mean", "first_layer", {"layers.0.lin_self.weight", "layers.0.lin_neigh.weight"}),
        ("monet_tied", "first_layer", {"layers.0.lin.weight"}),  # not the kernels
        ("monet_tied", "weights", {f"layers.{i}.lin.weight" for i in range(3)}),  # the kernels never
        ("gcn", "all", {"layers.0.lin.weight", "layers.1.lin.weight", "layers.2.lin.weight"}),
    ],
)
def test_decay_scope_chooses_the_weights_that_weight_decay_shrinks(ring, layer, scope, decayed):
    """With a zero loss gradient an SGD step only decays: exactly the scope's weights move (biases start at 0)."""
    model = build(base_cfg(layer=layer, num_layers=3, hidden_dim=8), ring)
    assert decayed_by_one_step(model, ring, scope) == decayed


def decayed_by_one_step(model: BaselineGNN, data, scope: str) -> set[str]:
    """The parameters one SGD step with weight decay and a zero loss gradient moves."""
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optim = OmegaConf.structured(OptimCfg(name="sgd", lr=0.1, weight_decay=0.5, decay_scope=scope))
    optimizer = build_optimizer(optim, model)
    (0 * model(data.x, baseline_graph(data)).sum()).backward()
    optimizer.step()
    return {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}


@pytest.mark.parametrize(("scope", "biases_move"), [("weights", False), ("all", True)])
def test_weights_scope_decays_every_weight_and_attention_vector_but_no_bias(ring, scope, biases_move):
    model = build(base_cfg(layer="gat", num_layers=2, hidden_dim=8, heads=2), ring)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.fill_(1.0)  # non-zero, so that decay would move them
    every = {name for name, _ in model.named_parameters()}
    moved = decayed_by_one_step(model, ring, scope)
    assert any(".att_src" in name for name in moved)  # GAT's attention vectors are weights
    assert moved == (every if biases_move else {name for name in every if not name.endswith("bias")})


def test_val_objective_adds_the_l2_term_of_the_decayed_weights_alone(ring):
    """train.select=val_objective watches cross entropy + wd / 2 |W|^2 over the weights the optimiser decays."""
    model = build(base_cfg(layer="gcn", num_layers=2, hidden_dim=8), ring)
    optim = OmegaConf.structured(OptimCfg(weight_decay=0.5, decay_scope="first_layer"))
    first = model.layers[0].lin.weight.detach()
    assert l2_penalty(build_optimizer(optim, model)) == pytest.approx(0.25 * float(first.pow(2).sum()))
    optim.decay_scope = "all"
    every = sum(float(p.detach().pow(2).sum()) for p in model.parameters())
    assert l2_penalty(build_optimizer(optim, model)) == pytest.approx(0.25 * every)
    optim.weight_decay = 0.0
    assert l2_penalty(build_optimizer(optim, model)) == 0


def test_first_layer_decay_is_refused_for_a_model_without_a_first_layer():
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg(["model=grand_l", "optim.decay_scope=first_layer"]))
    assert "optim.decay_scope=first_layer is for the baseline models, not 'grand_l'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg(["model=gcn", "optim.decay_scope=last"]))
    assert "unknown optim.decay_scope 'last'; valid: all, weights, first_layer" in str(err.value)


def test_dropedge_drops_edges_in_training_only_and_is_seeded(ring):
    graph = baseline_graph(ring)
    cfg = base_cfg(layer="gat", num_layers=2, hidden_dim=16, heads=2, dropout=0.0, attn_dropout=0.0, dropedge=0.5)
    model = build(cfg, ring)
    model.train()
    torch.manual_seed(1)
    kept = model.edges(graph).index
    torch.manual_seed(1)
    again = model.edges(graph).index
    torch.manual_seed(2)
    other = model.edges(graph).index
    assert torch.equal(kept, again) and not torch.equal(kept, other)
    assert 0.3 * graph.edge_index.size(1) < kept.size(1) < 0.7 * graph.edge_index.size(1)
    assert set(map(tuple, kept.t().tolist())) <= set(map(tuple, graph.edge_index.t().tolist()))
    torch.manual_seed(1)
    train_out = model(ring.x, graph)
    model.eval()
    assert torch.equal(model.edges(graph).index, graph.edge_index)
    eval_out = model(ring.x, graph)
    assert not torch.allclose(train_out, eval_out)  # no other randomness: dropout and attention dropout are 0
    plain = build(base_cfg(**{**OmegaConf.to_container(cfg), "dropedge": 0.0}), ring)
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(plain.train()(ring.x, graph), eval_out)  # without DropEdge train == eval


def test_dropedge_renormalises_gcn_weights_on_the_kept_edges(ring):
    graph = baseline_graph(ring)
    model = build(base_cfg(layer="gcn", dropedge=0.5), ring).train()
    torch.manual_seed(0)
    edges = model.edges(graph)
    loops = edges.index[0] == edges.index[1]
    assert loops.sum() == ring.num_nodes  # self-loops added after dropping
    assert edges.index.size(1) - ring.num_nodes < graph.edge_index.size(1)
    deg = torch.zeros(ring.num_nodes).index_add_(0, edges.index[1], torch.ones(edges.index.size(1)))
    expected = (deg[edges.index[0]] * deg[edges.index[1]]).rsqrt()
    torch.testing.assert_close(edges.weight, expected)
    dense = torch.zeros(ring.num_nodes, ring.num_nodes).index_put_((edges.index[1], edges.index[0]), edges.weight)
    torch.testing.assert_close(edges.adj.to_dense(), dense)  # the CSR matrix the layers multiply by: P[i, j], j -> i


def test_fixed_product_gradients_use_the_transpose_on_a_directed_graph():
    torch.manual_seed(0)
    index = torch.randint(0, 7, (2, 20))
    weight = torch.rand(20)
    a = propagation_matrix(index, weight, 7)
    dense = a.to_dense()
    assert not torch.equal(dense, dense.t())
    x = torch.randn(7, 3, requires_grad=True)
    bias = torch.randn(3, requires_grad=True)
    out = fixed_product(a, lambda: propagation_matrix(index, weight, 7, transposed=True), x, bias)
    expected = dense @ x + bias
    torch.testing.assert_close(out, expected)
    upstream = torch.randn(7, 3)
    grads = torch.autograd.grad(out, (x, bias), upstream)
    torch.testing.assert_close(grads[0], dense.t() @ upstream)
    torch.testing.assert_close(grads[1], upstream.sum(0))
    with torch.no_grad():  # no autograd node: the plain product
        torch.testing.assert_close(fixed_product(a, None, x), dense @ x)


@pytest.mark.parametrize("dropedge", [0.0, 0.5])
def test_gcn_layer_call_matches_pyg_gcnconv_values_and_gradients(ring, dropedge):
    """The gcn layers run GCNConv's computation with a cached transposed matrix in the backward: the same
    outputs and gradients as calling the PyG layer on the same propagation matrix."""
    graph = baseline_graph(ring)
    model = build(base_cfg(layer="gcn", dropedge=dropedge, dropout=0.0), ring).train()
    torch.manual_seed(3)
    edges = model.edges(graph)
    layer = model.layers[0]
    x = ring.x.clone().requires_grad_(True)
    ours = LAYERS["gcn"].call(layer, x, x, edges)
    (g_x_ours, g_w_ours, g_b_ours) = torch.autograd.grad(ours.square().sum(), (x, layer.lin.weight, layer.bias))
    pyg = GCNConv.forward(layer, x, edges.adj)
    (g_x_pyg, g_w_pyg, g_b_pyg) = torch.autograd.grad(pyg.square().sum(), (x, layer.lin.weight, layer.bias))
    torch.testing.assert_close(ours, pyg)
    for a, b in ((g_x_ours, g_x_pyg), (g_w_ours, g_w_pyg), (g_b_ours, g_b_pyg)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(edges.adj_t().to_dense(), edges.adj.to_dense().t())


@pytest.mark.parametrize("project", [False, True])
def test_mean_sage_matches_pyg_sageconv_on_a_directed_graph(project):
    """MeanSAGEConv (aggregate after projecting, one CSR product) gives SAGEConv's own outputs and gradients,
    also on a directed multigraph with nodes that have no incoming edge (their mean is 0)."""
    torch.manual_seed(0)
    index = torch.randint(0, 6, (2, 15))  # nodes 6 and 7 have no edges
    layer = MeanSAGEConv(5, 4, project=project)
    matrix = propagation_matrix(*mean_edges(index, 8), 8)
    x = torch.randn(8, 5, requires_grad=True)
    params = [x, *layer.parameters()]
    ours = layer(x, matrix, lambda: propagation_matrix(*mean_edges(index, 8), 8, transposed=True))
    pyg = SAGEConv.forward(layer, x, index)
    torch.testing.assert_close(ours, pyg)
    upstream = torch.randn_like(ours)
    for a, b in zip(
        torch.autograd.grad(ours, params, upstream), torch.autograd.grad(pyg, params, upstream), strict=True
    ):
        torch.testing.assert_close(a, b)


def test_pool_sage_takes_the_max_of_pooled_neighbours_and_self_then_clips_the_l2_norm_at_one():
    """Shchur et al.'s GraphSAGE-pool: z_i = W_self h_i + b + W_neigh max_{j in N(i) + {i}} ReLU(W_pool h_j),
    divided by |z_i| only where that is above 1 (rows of both kinds here; node 3 has no edge)."""
    torch.manual_seed(0)
    layer = ShchurSAGEConv(3, 2, pool_dim=4)
    torch.nn.init.uniform_(layer.lin_self.bias, -0.1, 0.1)
    x = torch.randn(4, 3) * torch.tensor([[0.01], [1.0], [10.0], [0.01]])
    index = torch.tensor([[0, 1, 2], [1, 2, 1]])  # messages 0 -> 1, 1 -> 2, 2 -> 1
    pooled = (x @ layer.pool.weight.t()).relu()
    pooled_over = [[0], [1, 0, 2], [2, 1], [3]]
    neighbours = torch.stack([pooled[nodes].max(0).values for nodes in pooled_over])
    z = x @ layer.lin_self.weight.t() + layer.lin_self.bias + neighbours @ layer.lin_neigh.weight.t()
    norms = z.norm(dim=-1, keepdim=True)
    assert (norms < 1).any() and (norms > 1).any()
    torch.testing.assert_close(layer(x, index), z / norms.clamp(min=1.0))
    assert layer.pool.bias is None and layer.lin_neigh.bias is None


def test_shchur_sage_mean_averages_the_neighbours_and_self_then_clips_the_l2_norm_at_one():
    """Shchur et al.'s GraphSAGE-mean: z_i = W_self h_i + b + W_neigh mean_{j in N(i) + {i}} h_j, divided by
    |z_i| only where that is above 1 (rows of both kinds here; node 3 has no edge)."""
    torch.manual_seed(0)
    layer = ShchurSAGEConv(3, 2, pool_dim=None)
    torch.nn.init.uniform_(layer.lin_self.bias, -0.1, 0.1)
    x = torch.randn(4, 3) * torch.tensor([[0.01], [1.0], [10.0], [0.01]])
    index = torch.tensor([[0, 1, 2], [1, 2, 1]])  # messages 0 -> 1, 1 -> 2, 2 -> 1
    averaged_over = [[0], [1, 0, 2], [2, 1], [3]]
    neighbours = torch.stack([x[nodes].mean(0) for nodes in averaged_over])
    z = x @ layer.lin_self.weight.t() + layer.lin_self.bias + neighbours @ layer.lin_neigh.weight.t()
    norms = z.norm(dim=-1, keepdim=True)
    assert (norms < 1).any() and (norms > 1).any()
    torch.testing.assert_close(layer(x, index), z / norms.clamp(min=1.0))
    assert layer.pool is None and layer.lin_neigh.in_features == 3


def test_sage_uses_the_mean_matrix_only_for_mean_aggregation(ring):
    mean, pooled = build(base_cfg(layer="sage"), ring), build(base_cfg(layer="sage", aggr="max"), ring)
    assert (mean.norm, type(mean.layers[0])) == ("mean", MeanSAGEConv)
    assert (pooled.norm, type(pooled.layers[0])) == (None, SAGEConv)


@pytest.mark.parametrize("name", MODELS)
def test_baselines_are_permutation_equivariant(name):
    data = ring_graph(num_nodes=30, features=8, classes=3, seed=1)
    # a neighbour sample is equivariant in distribution only: sage_sampled samples every neighbour here
    cfg = model_cfg(name, "num_layers=3", "hidden_dim=16", "batch_norm=true", "num_samples=1000")
    model = build(cfg, data)
    perm = torch.randperm(data.num_nodes, generator=torch.Generator().manual_seed(0))
    new_position = torch.argsort(perm)  # old node i is node new_position[i] after permuting
    permuted = data.clone()
    permuted.x, permuted.edge_index = data.x[perm], new_position[data.edge_index]
    out = model(data.x, baseline_graph(data, cfg))
    out_permuted = model(permuted.x, baseline_graph(permuted, cfg))
    assert out.shape == (data.num_nodes, 3)
    torch.testing.assert_close(out_permuted, out[perm], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_a_batch_of_two_graphs_gives_each_graphs_outputs(name):
    graphs = [ring_graph(num_nodes=30, features=8, seed=2), ring_graph(num_nodes=17, features=8, seed=3)]
    cfg = model_cfg(name, "num_layers=3", "hidden_dim=16", "batch_norm=true", "num_samples=1000")  # (see above)
    model = build(cfg, graphs[0])
    batch = Batch.from_data_list(graphs)
    model.train()
    model(batch.x, baseline_graph(batch, cfg))  # moves the BatchNorm running statistics away from 0 / 1
    model.eval()
    together = model(batch.x, baseline_graph(batch, cfg))
    alone = torch.cat([model(g.x, baseline_graph(g, cfg)) for g in graphs])
    assert together.shape == (47, 3)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


def test_monet_pseudo_coordinates_come_from_in_degrees(ring):
    graph = baseline_graph(ring)
    deg = torch.bincount(ring.edge_index[1], minlength=ring.num_nodes).float()
    src, dst = ring.edge_index
    expected = torch.stack([(deg[src] + 1).rsqrt(), (deg[dst] + 1).rsqrt()], -1)
    torch.testing.assert_close(pseudo_coordinates(graph), expected)


def test_tied_monet_shares_one_set_of_kernels_normalised_over_each_neighbourhood(ring):
    """Shchur et al.'s MoNet: one coordinate transform and one set of kernels for every layer; kernel weights
    over N(i) + {i} sum to 1 per node and kernel; u_ij = (1/sqrt(d_i), 1/sqrt(d_j)) with d counting the loop."""
    shallow, deep = (build(base_cfg(layer="monet_tied", num_layers=n, hidden_dim=8, kernels=3), ring) for n in (2, 3))
    kernel_names = {name for name, _ in deep.named_parameters() if name.startswith("kernels.")}
    assert kernel_names == {"kernels.project.weight", "kernels.project.bias", "kernels.mu", "kernels.sigma"}
    assert not any("mu" in name or "sigma" in name for name, _ in deep.layers.named_parameters())
    assert n_params(deep) - n_params(shallow) == 3 * 8 * 8  # one more layer: its 3 filters, nothing else
    torch.testing.assert_close(deep.kernels.mu[:, 0], torch.tensor([-2 / 3, 0.0, 2 / 3]))

    edges = deep.edges(baseline_graph(ring))
    src, dst = edges.index
    assert edges.index.size(1) == ring.edge_index.size(1) + ring.num_nodes  # one self-loop per node
    sums = torch.zeros(ring.num_nodes, 3).index_add_(0, dst, edges.kernels)
    torch.testing.assert_close(sums, torch.ones(ring.num_nodes, 3))
    d = torch.bincount(ring.edge_index[1], minlength=ring.num_nodes).float() + 1
    _, coordinates = TiedGaussianKernels.looped_edges(ring.edge_index, ring.num_nodes)
    torch.testing.assert_close(coordinates, torch.stack([d[dst].rsqrt(), d[src].rsqrt()], -1))

    # a layer is sum_k W_k (h Theta_k), W_k the dense matrix of kernel k's weights
    layer, h = deep.layers[1], torch.randn(ring.num_nodes, 8)
    filters = layer.lin.weight.view(3, 8, 8)
    expected = sum(
        torch.sparse_coo_tensor(edges.index.flip(0), edges.kernels[:, k], (30, 30)).to_dense() @ (h @ filters[k].T)
        for k in range(3)
    )
    torch.testing.assert_close(layer(h, edges.index, edges.kernels), expected)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.layer=gcnn", "unknown model.layer 'gcnn'; valid: mlp, gcn, gat, sage, sage_pool, sage_mean"),
        ("model.num_layers=0", "model.num_layers must be >= 1, got 0"),
        ("model.heads=0", "model.heads must be >= 1, got 0"),
        ("model.heads=5", "model.heads=5 must divide model.hidden_dim=64 (gat)"),
        ("model.dropedge=1.0", "model.dropedge must be in [0, 1), got 1.0"),
        ("model.dropout=-0.1", "model.dropout must be in [0, 1), got -0.1"),
        ("model.input_dropout=1.0", "model.input_dropout must be in [0, 1), got 1.0"),
        ("model.aggr=median", "unknown model.aggr 'median'; valid: mean, max, sum"),
        ("model.pool_dim=0", "model.pool_dim must be >= 1, got 0"),
        ("model.activation=tanh", "unknown model.activation 'tanh'; valid: relu, elu"),
    ],
)
def test_invalid_baseline_options_name_the_option_and_the_valid_values(override, message):
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg(["model=gat", override]))
    assert message in str(err.value)


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as err:
        validate(compose_cfg(["model=gcn", "model.num_layers=0", "model.dropedge=2", "model.layer=x"]))
    for message in ("model.num_layers must be >= 1", "model.dropedge must be in [0, 1)", "unknown model.layer 'x'"):
        assert message in str(err.value)
    validate(compose_cfg(["model=gcnii", "dataset=cora"]))  # the shipped files are valid
