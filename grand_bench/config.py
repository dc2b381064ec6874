"""Typed configuration schemas, registered in Hydra's ConfigStore.

Every YAML file under ``conf/`` merges onto one of these dataclasses, so a misspelt key or a value of
the wrong type fails when the config is composed, before any data loads. Model families have their
own schema (a model YAML names it first in its defaults list), so GRAND, GRAFF and GraphCON each get
exactly the keys they understand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class DatasetCfg:
    name: str = MISSING  # our name, e.g. "cora"
    loader: str = "planetoid"  # key into grand_bench.data.datasets.LOADERS
    pyg_name: str = MISSING  # the name PyG's class takes, e.g. "Cora"
    task: str = "node_classification"
    metric: str = "accuracy"
    normalize_features: bool = False  # row-normalise x (heterophilic loaders do)
    # undirected (every model's default) | forward: the shipped edges u -> v, v receives from u (PyG's
    # convention) | reverse: u receives from v, the A X of the geom-gcn / GCNII code (data/transforms.py)
    edge_direction: str = "undirected"
    dev_size: int = 1500  # random-split development set (Shchur et al.; 5000 for CoauthorCS)
    homophily: float | None = None  # syn-cora (Zhu et al. 2020): which homophily level's graph, e.g. 0.3
    graph: int = 1  # syn-cora: which of the three graphs generated per homophily level (1, 2 or 3)
    # Graph-level datasets (data/graph_level.py, training/graph_loop.py; task graph_regression,
    # graph_classification or node_multilabel):
    readout: str = "none"  # pooling of node states per graph before the MLP head: sum | mean | none (per node)
    batch_size: int = 128  # graphs per mini-batch
    limit: int | None = None  # only the first `limit` graphs of each file the dataset ships (quick runs, tests)
    atom_features: str = "onehot"  # zinc: onehot (28 atom types) | scalar (the type index as one number, GraphCON)
    superpixels: int = 75  # mnist_superpixels: at most this many SLIC superpixels (nodes) per image
    knn: int = 8  # mnist_superpixels: each node is joined to its knn nearest centroids (then made undirected)
    build_workers: int = 1  # mnist_superpixels: processes for the one-time SLIC build


@dataclass
class SplitCfg:
    name: str = MISSING  # public | random | geom_gcn | stratified | official
    index: int = 0  # which split: the random-split seed, or the geom-gcn file index
    lcc: bool = False  # restrict the graph to its largest connected component first
    train_per_class: int = 20  # random split
    num_splits: int = 10  # geom_gcn: number of split files
    train_fraction: float = 0.48  # stratified: share of each class trained on (the geom-gcn files' 48/32/20)
    val_fraction: float = 0.32  # stratified: share of each class for validation; the rest is test


@dataclass
class AttentionCfg:
    """Multi-head attention used as the diffusivity a(x_i, x_j) (GRAND eq. 10; reference §1.3)."""

    type: str = "scaled_dot"  # scaled_dot | cosine_sim | pearson | exp_kernel
    heads: int = 4
    dim: int = 64  # total attention width; split into `heads` heads of dim/heads
    # row: sum_j a_ij = 1 over the neighbours j a node i receives from (the paper's right-stochastic A).
    # column: sum_i a_ij = 1 (the original code's attention_norm_idx=1, used by its tuned Cora params).
    norm: str = "row"
    normaliser: str = "softmax"  # softmax | squareplus
    init_constant: float | None = 1e-5  # constant init of W_Q, W_K, W_V (reference §1.3); null = default
    # true: computed without gradient, so W_Q, W_K keep their initial values and no gradient reaches X through A.
    # GRAND's hard-attention block (its GRAND-l on Computers, Photo, arXiv) does this: the sampled attention is
    # built under torch.no_grad() (reference §2.2). As there, edge sampling then keeps only the edges strictly above
    # the quantile (a trained attention keeps the ties too, as the GRAND-nl-rw records ran).
    frozen: bool = False


@dataclass
class RewiringCfg:
    """Graph rewiring by graph diffusion (GDC, Klicpera et al. 2019) before training (GRAND-nl-rw)."""

    method: str = "none"  # none | gdc
    diffusion: str = "ppr"  # ppr | heat
    ppr_alpha: float = 0.05
    heat_time: float = 3.0
    sparsification: str = "topk"  # topk | threshold
    k: int = 64
    eps: float = 1e-4
    exact: bool = True


@dataclass
class GrandModelCfg:
    """GRAND family (Chamberlain et al. 2021): dX/dt = sigma(alpha) (A(X) - I) X [+ beta X(0)]."""

    name: str = MISSING
    family: str = "grand"
    # fixed_attention: GRAND-l, A from X(0) once per forward; attention: GRAND-nl, A(X(t)) at every
    # evaluation; laplacian: A = the fixed random-walk adjacency (constant diffusion baseline).
    diffusivity: str = "fixed_attention"
    hidden_dim: int = 64
    time: float = 1.0  # terminal integration time T
    input_dropout: float = 0.5
    dropout: float = 0.0
    add_source: bool = False  # + beta * X(0), beta learned from 0
    # X(0) enters that source as a constant (no gradient through it to the encoder), as the original code's
    # set_x0 stores x0.clone().detach() (reference §1.1); false: the gradient flows through it too, as every
    # run recorded before the option existed (run_key.ADDED_WITH_DEFAULT).
    detach_source: bool = True
    alpha_sigmoid: bool = True  # diffusion speed sigma(alpha_train); false: alpha_train itself
    self_loop_weight: float = 1.0  # 0 = no self-loops in the diffusion graph
    batch_norm: bool = False
    use_mlp: bool = False  # two residual MLP blocks after the encoder
    edge_sampling: float = 1.0  # GRAND-nl-rw: keep this fraction of edges with the highest attention
    attention: AttentionCfg = field(default_factory=AttentionCfg)
    rewiring: RewiringCfg = field(default_factory=RewiringCfg)


@dataclass
class ReactionDiffusionModelCfg(GrandModelCfg):
    """GRAND++, GREAD, RDGNN (models/reaction_diffusion.py): dX/dt = alpha (A X - X) + beta r(X), A as in GRAND."""

    family: str = "reaction_diffusion"
    # fisher | allen_cahn | zeldovich | bspm | source | filter_bank | filter_bank_star (GREAD);
    # trusted_source (GRAND++); mlp (RDGNN's learned R(X, X(0)))
    reaction: str = "bspm"
    laplacian_norm: str | None = None  # diffusivity laplacian: row | column | sym (GCN); null = attention.norm
    alpha_dim: str = "scalar"  # scalar | channel (GREAD's sc / vc): alpha = sigmoid(alpha_train)
    beta_dim: str = "scalar"  # scalar | channel: beta = sigmoid(beta_train)
    beta_diag: bool = False  # GREAD's beta_diag: beta a free per-channel vector, U(-1, 1) init (beta_dim unused)
    beta_init: float = 0.0  # initial beta_train (beta = sigmoid(beta_train) unless beta_diag): -4 starts near 0
    decoder_activation: str = "relu"  # before the decoder: relu | none (GREAD's XN_activation=False) | elu | tanh


@dataclass
class BaselineModelCfg:
    """Discrete message-passing baselines from PyG layers (models/baselines.py): a stack of `num_layers` layers."""

    name: str = MISSING
    family: str = "baseline"
    layer: str = "gcn"  # one of models/baselines.py LAYERS: mlp gcn gat sage sage_pool sage_mean ... appnp
    num_layers: int = 2  # layers in the stack; the input and output layers count unless `encoder`
    hidden_dim: int = 64  # width of hidden layers (GAT: all heads together, heads x per-head width)
    dropout: float = 0.5  # before every layer, the input features included
    input_dropout: float | None = None  # on the input features instead of `dropout` (GGCN's GCN: 0)
    activation: str = "relu"  # relu | elu
    residual: bool = False  # h <- h + layer(h) for every hidden -> hidden layer
    batch_norm: bool = False  # BatchNorm1d after every hidden layer, before the activation
    encoder: bool = False  # Linear encoder / decoder around `num_layers` hidden -> hidden layers (GCNII: always)
    dropedge: float = 0.0  # DropEdge (Rong et al. 2020): fraction of edges dropped per training forward pass
    self_weight: bool = False  # gcn: + h W_self, a separate weight on the node's own features (DropEdge's withloop)
    heads: int = 8  # gat: heads of the hidden layers (concatenated)
    out_heads: int = 1  # gat: heads of the output layer (averaged)
    attn_dropout: float = 0.6  # gat: dropout on the attention coefficients
    value_dropout: float = 0.0  # gat: dropout on the transformed features W h_j the attention averages
    aggr: str = "mean"  # sage, monet: neighbour aggregation, mean | max | sum
    project: bool = False  # sage: Linear + ReLU on neighbours before aggregating (GraphSAGE-pool with max)
    pool_dim: int = 32  # sage_pool: width of the ReLU pooling transform (Shchur et al.'s agg_transform_size)
    num_samples: int = 5  # sage_sampled: neighbours sampled per node, layer and forward pass (graphsage-simple: 5)
    train_eps: bool = True  # gin: learn the self-weight epsilon
    kernels: int = 3  # monet: Gaussian kernels per layer
    pseudo_dim: int = 2  # monet: pseudo-coordinate dimension after the learned projection
    K: int = 3  # cheb: filter size (polynomial degree K - 1); appnp: propagation steps
    alpha: float = 0.1  # gcnii: initial-residual weight; appnp: teleport probability
    theta: float = 0.5  # gcnii: identity-mapping strength lambda, beta_l = log(theta / l + 1)
    shared_weights: bool = True  # gcnii: one W for P h and x0; false is GCNII* (W1 for P h, W2 for x0)


@dataclass
class GraffModelCfg:
    """GRAFF (Di Giovanni et al. 2022, eq. 9): dF/dt = -F Omega + Abar F W + beta F(0), W symmetric."""

    name: str = MISSING
    family: str = "graff"
    hidden_dim: int = 64
    time: float = 3.0  # terminal time T; T / dt layers
    dt: float = 1.0  # explicit Euler step tau; the solver's step_size unless solver.step_size is set
    input_dropout: float = 0.5
    dropout: float = 0.3  # before the decoder
    use_mlp: bool = False  # two residual MLP blocks after the linear encoder
    w_style: str = "diag_dom"  # sum | prod | neg_prod | diag | diag_dom | asymm (the non-gradient-flow control)
    w_trainable: bool = True  # false: W frozen at its random init (the 2022 code's default; v1's fixed (D))
    w_init: str = "uniform"  # diag / diag_dom: uniform (U(-1, 1), glorot W0) | identity (W = I at init)
    omega_style: str = "diag"  # diag (learned vector) | zero | const (omega_value * I)
    omega_value: float = 1.0
    time_dependent: bool = False  # one W_t per Euler step (GRAFF-timedep)
    add_source: bool = True  # + beta F(0), beta learned from 0
    nonlinearity: str = "none"  # none (GRAFF) | relu (GRAFF-NL: applied to the right-hand side) | tanh
    self_loops: bool = True  # Abar = D^-1/2 (A + I) D^-1/2; false: D^-1/2 A D^-1/2
    # Which degrees normalise Abar: with_loops (d_i counts the added self-loop: D~^-1/2 (A + I) D~^-1/2) |
    # without_loops (the reference's get_deg_inv_sqrt: d_i on the data graph's edges only, so a self-loop weighs
    # 1/d_i and an isolated node's row is 0; reference §5.2).
    norm_degree: str = "with_loops"
    # none | layerwise: the right-hand side standardised per channel over the nodes at every evaluation, as the
    # reference's "layerwise" BatchNorm1d behaves (never registered: no trained affine, batch statistics in
    # evaluation too; reference §5.2).
    conv_batch_norm: str = "none"


@dataclass
class CgnnModelCfg:
    """CGNN (Xhonneux et al., ICML 2020, eq. 6 without W): dX/dt = (sigma(a)/2) (A_hat X - X) + X(0)."""

    name: str = MISSING
    family: str = "cgnn"
    hidden_dim: int = 16
    time: float = 12.1  # terminal integration time T
    input_dropout: float = 0.5
    dropout: float = 0.0  # before the decoder
    self_loop_weight: float = 0.555  # A_hat = D^-1/2 (A + w I) D^-1/2, D with the weighted self-loops
    alpha_init: float = 0.918  # every node's a_i at the start: speed sigmoid(a_i) / 2


@dataclass
class GraphconModelCfg:
    """GraphCON (Rusch et al. 2022, eq. 2): X'' = sigma(F(X)) - gamma X - alpha X', state [X, Y = X']."""

    name: str = MISSING
    family: str = "graphcon"
    coupling: str = "gcn"  # gcn | gat | transformer | gin | gatedgcn | grand_attention: F (graphcon.py)
    attention: AttentionCfg | None = None  # grand_attention's A(X(0)); null: AttentionCfg's defaults
    hidden_dim: int = 64
    layers: int = 10  # N steps of size dt: T = layers * dt
    dt: float = 1.0  # the solver's step_size unless solver.step_size is set
    alpha: float = 1.0  # damping
    gamma: float = 1.0  # restoring force
    activation: str = "relu"  # sigma: relu | elu | tanh | none
    residual: str = "none"  # none | linear (+ W_res X) | v1 / v2 (heterophilic code, gcn only; see graphcon.py)
    heads: int = 4  # gat / transformer attention heads (averaged)
    input_dropout: float = 0.0
    dropout: float = 0.0  # before the decoder
    step_dropout: float = 0.0  # on X and Y after the encoder and after every step (heterophilic/graph-level code)
    encoder_activation: str = "none"  # none | relu (heterophilic code: X(0) = ReLU(Linear(x)))
    decoder_activation: str = "relu"  # relu (GRAND-style decoder) | none (heterophilic / graph-level code)
    initial_velocity: str = "encoding"  # encoding (Y(0) = X(0), as both codes do) | zero
    # The homophilic code's learned sigmoid-mixed sources (add_source; graphcon.py): Y' gets X(0), X' gets Y(0).
    source: bool = False
    readout: str = "node"  # node | sum | mean | max: pool the decoded nodes per graph (graph-level tasks)


@dataclass
class SolverCfg:
    method: str = "dopri5"
    # native: grand_bench's own Runge-Kutta loop for euler/midpoint/rk4/dopri5/bosh3/adaptive_heun (same
    # tableaux and step control as torchdiffeq, several times less overhead; solvers/runge_kutta.py);
    # torchdiffeq: always torchdiffeq. The adjoint and every other method always use torchdiffeq.
    backend: str = "native"
    # Training through a native solve: true, the hand-written reverse pass (solvers/rk_backprop.py: the same
    # gradients, without autograd's node per stage term); false, autograd through the solve's arithmetic.
    reverse_pass: bool = True
    step_size: float | None = None  # required by fixed-step methods
    rtol: float = 1e-7
    atol: float = 1e-9
    # Original GRAND convention (reference §1.4): atol = tol_scale * 1e-7, rtol = tol_scale * 1e-9.
    tol_scale: float | None = None
    max_nfe: int = 1000  # function evaluations per solve before the run fails
    max_iters: int = 100  # implicit_adams corrector iterations
    # explicit_adams / implicit_adams: the highest order the multistep method climbs to as its history grows;
    # null = torchdiffeq's 12, as GRAND ran them. Order 12's stability region is tiny: on GRAND-l's Cora operator
    # step 0.5 is unstable at order 12 and accurate to 1e-5 at order <= 8 (conf/tables/grand2021_fig3_step.yaml).
    max_order: int | None = None
    # backward_euler / adams_moulton / imex_euler (solvers/implicit.py): the linear solve of each implicit step
    linear_solver: str = "auto"  # auto (cg if the operator is symmetric, else cgnr) | cg | cgnr (CG on normal eqs)
    linear_tol: float = 1e-5  # relative residual ||b - B x|| / ||b|| a solve must reach
    linear_max_iters: int = 200  # Krylov iterations per solve before the run fails
    adjoint: bool = False
    adjoint_method: str | None = None  # default: same as method
    adjoint_step_size: float | None = None
    adjoint_rtol: float = 1e-7
    adjoint_atol: float = 1e-9
    adjoint_tol_scale: float | None = None


@dataclass
class OptimCfg:
    name: str = "adam"  # adam | adamw | adamax | rmsprop | sgd
    lr: float = 0.01
    weight_decay: float = 5e-4
    # all | weights: no biases (Shchur et al.'s GAT) | first_layer: the first layer's weights alone (baselines;
    # Kipf & Welling's, Shchur et al.'s GCN)
    decay_scope: str = "all"
    momentum: float = 0.0  # sgd / rmsprop


@dataclass
class TrainCfg:
    epochs: int = 100
    patience: int | None = None  # stop after this many epochs without a better validation score
    # Which validation score picks the reported epoch (and counts patience): val_metric (the dataset's metric,
    # the papers' default) | val_loss (node-level only: GCNII's and GraphCON's WebKB code kept the epoch of
    # the lowest validation loss) | val_objective (val_loss + the optimiser's L2 term, as Shchur et al.'s code)
    select: str = "val_metric"
    # Node-level: training nodes per optimiser step, drawn afresh each epoch (one step per epoch, so an epoch is
    # one mini-batch, as graphsage-simple's training); null = every training node (full batch)
    nodes_per_step: int | None = None
    progress: bool = True  # progress bar with loss / val / NFE per epoch
    # Save a checkpoint every k epochs (0 = never) to <checkpoint_dir>/<run key>/; resume=true continues from it.
    checkpoint_every: int = 10


@dataclass
class EvalCfg:
    """The original code's test-time integration-time selection (reference §1.5); off by default.

    When on, each evaluation integrates to time_factor * T, reads the state at `time_points` evenly
    spaced times, and keeps the time with the best validation score (test taken at that time).
    ``state: velocity`` (GraphCON only) decodes the velocity half Y at those times, with the position X at
    time_factor * T as one more candidate: what the GraphCON homophilic code's early-stop integrator does
    (reference §4.3), where the regular forward decodes X.
    """

    time_selection: bool = False
    time_factor: float = 3.0
    time_points: int | None = 30  # null: every step of a fixed-step solver, as the original's integrator
    state: str = "position"  # position | velocity: which half of GraphCON's [X, Y] the selection decodes


@dataclass
class DiagnosticsCfg:
    """Oversmoothing diagnostics of the best-validation model, stored in the run record (diagnostics.py)."""

    dirichlet: bool = False  # Dirichlet energy per time step / layer (GraphCON eq. 13, GRAFF's normalised one)
    points: int | None = None  # ODE models: evenly spaced times in [0, T]; null = every step of a fixed-step solver
    # (21 times for adaptive ones)


@dataclass
class LoggerCfg:
    name: str = "none"  # none | wandb
    project: str = "grand_bench"
    mode: str = "disabled"  # wandb mode: disabled | offline | online
    group: str | None = None
    dir: str = "outputs"


@dataclass
class TunerCfg:
    """Ray Tune sweep settings (group ``tuner/``), read by ``tune.py`` only; ``train.py`` refuses a tuner.

    See docs/sweeps.md. Paths are taken from the project root when relative (a Ray trial's cwd moves).
    """

    name: str = "none"  # the conf/tuner option: none (train.py) | asha | random
    scheduler: str = "asha"  # asha (stops poor trials early) | fifo (every trial runs train.epochs)
    sweep: str | None = None  # Ray folder, records' sweep/tag, wandb group, preset name; default <model>_<dataset>
    space: str | None = None  # conf/search_space/<space>.yaml or a .yaml path; default <model>_<dataset>, else <model>
    num_samples: int = 16  # trials drawn from the space (times the values of any `grid` key)
    metric: str = "val"  # reported every epoch: val | best_val | loss
    mode: str = "max"  # max | min
    max_t: int | None = None  # ASHA's last rung in epochs; default train.epochs
    grace_period: int = 10  # ASHA: epochs every trial runs before it can be stopped
    reduction_factor: int = 3  # ASHA: keep the top 1/reduction_factor at each rung
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # fractional: 0.25 packs four trials per GPU (needs device=cuda)
    max_concurrent_trials: int | None = None  # default: as many as the resources allow
    address: str = "local"  # local (a fresh embedded Ray) | auto (a running cluster) | ray://host:port
    # Nice value of a local Ray's trial workers. Ray's own default, 15, lets any other busy process on the
    # machine starve the trials (10-40x slower epochs measured here); a cluster keeps the value its
    # `ray start` was given (RAY_worker_niceness=0 ray start ...).
    worker_niceness: int = 0
    storage_path: str = "results/sweeps"  # Ray's experiment folders: <storage_path>/<sweep>/
    resume: bool = False  # continue the interrupted sweep of this name (Tuner.restore)
    checkpoint_every: int = 10  # epochs between trial checkpoints; 0 = none (an interrupted trial restarts)
    top_k: int = 10  # rows of the summary table
    search_seed: int | None = None  # seed of the random search; null = a different sample each sweep


@dataclass
class Config:
    dataset: DatasetCfg = field(default_factory=DatasetCfg)
    split: SplitCfg = field(default_factory=SplitCfg)
    model: Any = MISSING  # a family schema, chosen by the model YAML's defaults list
    solver: SolverCfg = field(default_factory=SolverCfg)
    optim: OptimCfg = field(default_factory=OptimCfg)
    train: TrainCfg = field(default_factory=TrainCfg)
    eval: EvalCfg = field(default_factory=EvalCfg)
    diagnostics: DiagnosticsCfg = field(default_factory=DiagnosticsCfg)
    logger: LoggerCfg = field(default_factory=LoggerCfg)
    tuner: TunerCfg = field(default_factory=TunerCfg)  # tune.py only
    seed: int = 0
    seeds: list[int] | None = None  # run each of these seeds (default: [seed])
    splits: list[int] | None = None  # run each of these split indices (default: [split.index])
    device: str = "cpu"  # cpu | cuda | auto
    data_root: str = "data"  # writable; PyG's raw/ and processed/ live here
    raw_mirror: str | None = None  # read-only folder in PyG raw layout to take missing raw files from
    results_dir: str = "results/runs"
    checkpoint_dir: str = "checkpoints"  # one folder per unfinished run, removed once the run is recorded
    resume: bool = False  # skip runs already in the store; continue interrupted ones from their checkpoint
    tag: str | None = None  # free label stored in every record (experiment / sweep name)
    keep_freed_memory: bool = True  # reuse freed memory rather than page-fault big tensors afresh (allocator.py)


MODEL_SCHEMAS: dict[str, type] = {
    "grand": GrandModelCfg,
    "baseline": BaselineModelCfg,
    "graff": GraffModelCfg,
    "graphcon": GraphconModelCfg,
    "cgnn": CgnnModelCfg,
    "reaction_diffusion": ReactionDiffusionModelCfg,
}


def register_configs() -> None:
    """Register the schemas; model YAMLs extend ``schema/model/<family>``."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for family, schema in MODEL_SCHEMAS.items():
        cs.store(group="schema/model", name=family, node=schema)
