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
    dev_size: int = 1500  # random-split development set (Shchur et al.; 5000 for CoauthorCS)
    homophily: float | None = None  # syn-cora (Zhu et al. 2020): which homophily level's graph, e.g. 0.3
    graph: int = 1  # syn-cora: which of the three graphs generated per homophily level (1, 2 or 3)


@dataclass
class SplitCfg:
    name: str = MISSING  # public | random | geom_gcn
    index: int = 0  # which split: the random-split seed, or the geom-gcn file index
    lcc: bool = False  # restrict the graph to its largest connected component first
    train_per_class: int = 20  # random split
    num_splits: int = 10  # geom_gcn: number of split files


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
    alpha_sigmoid: bool = True  # diffusion speed sigma(alpha_train); false: alpha_train itself
    self_loop_weight: float = 1.0  # 0 = no self-loops in the diffusion graph
    batch_norm: bool = False
    use_mlp: bool = False  # two residual MLP blocks after the encoder
    edge_sampling: float = 1.0  # GRAND-nl-rw: keep this fraction of edges with the highest attention
    attention: AttentionCfg = field(default_factory=AttentionCfg)
    rewiring: RewiringCfg = field(default_factory=RewiringCfg)


@dataclass
class SolverCfg:
    method: str = "dopri5"
    step_size: float | None = None  # required by fixed-step methods
    rtol: float = 1e-7
    atol: float = 1e-9
    # Original GRAND convention (reference §1.4): atol = tol_scale * 1e-7, rtol = tol_scale * 1e-9.
    tol_scale: float | None = None
    max_nfe: int = 1000  # function evaluations per solve before the run fails
    max_iters: int = 100  # implicit_adams corrector iterations
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
    momentum: float = 0.0  # sgd / rmsprop


@dataclass
class TrainCfg:
    epochs: int = 100
    patience: int | None = None  # stop after this many epochs without a better validation score
    progress: bool = True  # progress bar with loss / val / NFE per epoch


@dataclass
class EvalCfg:
    """The original code's test-time integration-time selection (reference §1.5); off by default.

    When on, each evaluation integrates to time_factor * T, reads the state at `time_points` evenly
    spaced times, and keeps the time with the best validation score (test taken at that time).
    """

    time_selection: bool = False
    time_factor: float = 3.0
    time_points: int = 30


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
    logger: LoggerCfg = field(default_factory=LoggerCfg)
    tuner: TunerCfg = field(default_factory=TunerCfg)  # tune.py only
    seed: int = 0
    seeds: list[int] | None = None  # run each of these seeds (default: [seed])
    splits: list[int] | None = None  # run each of these split indices (default: [split.index])
    device: str = "cpu"  # cpu | cuda | auto
    data_root: str = "data"  # writable; PyG's raw/ and processed/ live here
    raw_mirror: str | None = None  # read-only folder in PyG raw layout to take missing raw files from
    results_dir: str = "results/runs"
    tag: str | None = None  # free label stored in every record (experiment / sweep name)


MODEL_SCHEMAS: dict[str, type] = {"grand": GrandModelCfg}


def register_configs() -> None:
    """Register the schemas; model YAMLs extend ``schema/model/<family>``."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for family, schema in MODEL_SCHEMAS.items():
        cs.store(group="schema/model", name=family, node=schema)
