# grand_bench: every target uses the project's own virtual environment (.venv).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Here the raw benchmark files are mirrored beside the project; users with internet need not set it.
export GRAND_BENCH_RAW ?= $(abspath ../shared/data)

.PHONY: install test test-fast lint format clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# The CPU wheel first: an unpinned torch would pull several GB of CUDA packages.
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e ".[dev]"
	touch $@

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check grand_bench tests scripts train.py tune.py
	$(VENV)/bin/ruff format --check grand_bench tests scripts train.py tune.py

format: install
	$(VENV)/bin/ruff check --fix grand_bench tests scripts train.py tune.py
	$(VENV)/bin/ruff format grand_bench tests scripts train.py tune.py

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache

# A 16-trial ASHA sweep of GRAND-l on Cora with short trials, then its best preset re-run through train.py
# (docs/sweeps.md). A few minutes on 2 CPU cores; it starts over each time. Records and summary go to
# results/sweeps/records (not the committed store), the preset to conf/experiment/sweep_demo.yaml.
SWEEP_DEMO = model=grand_l dataset=cora tuner=asha tuner.sweep=demo tuner.space=grand_l_cora_demo \
	tuner.num_samples=16 tuner.search_seed=0 train.epochs=20 tuner.grace_period=4 tuner.reduction_factor=2 \
	solver=rk4 solver.step_size=1.0 results_dir=results/sweeps/records

.PHONY: sweep-demo
sweep-demo: install
	rm -rf results/sweeps/demo
	$(PY) tune.py $(SWEEP_DEMO)
	$(PY) train.py experiment=sweep_demo results_dir=results/sweeps/records train.progress=false

# The papers' tables (results/tables/) and figures (results/figures/) from the run records in results/runs;
# never trains. Specs: conf/tables/; the papers' numbers: reference/published_results.csv.
.PHONY: tables figures reproduce
tables: install
	$(PY) scripts/make_tables.py results/runs --out results/tables --figures results/figures

figures: install
	$(PY) scripts/make_tables.py results/runs --figures results/figures --no-tables

# GraphCON Fig. 2 as the paper set it up (10x10 grid, random features, untrained 100-layer models; no training,
# about 20 s): results/figures/graphcon2022_fig2_grid.{png,json}
.PHONY: figure-grid
figure-grid: install
	$(PY) scripts/dirichlet_grid.py

# Trains the cells of one table that are not recorded yet (resumable), e.g.
#   make reproduce TABLE=grand2021_table2 ARGS='models=grand_l datasets=cora runs=10'
reproduce: install
	$(PY) scripts/reproduce.py table=$(TABLE) $(ARGS)

# Benchmarks (issue 7): conf/bench/default.yaml -> results/bench/<device>.{jsonl,md}; scaling on synthetic graphs
# -> results/bench/<device>_scaling.{jsonl,png}. Pass e.g. BENCH_ARGS="device=cuda" or "cases=[grand_l_cora_dopri5]".
.PHONY: bench bench-scaling
bench: install
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(PY) scripts/bench.py $(BENCH_ARGS)

bench-scaling: install
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(PY) scripts/bench.py bench=scaling $(BENCH_ARGS)
