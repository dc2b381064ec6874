"""Train a model: ``python train.py model=grand_l dataset=cora [seeds=[0,1,2]] [solver=rk4 solver.step_size=0.5]``.

Configuration lives in ``conf/`` (Hydra); see README.md.
"""

from grand_bench.cli import main

if __name__ == "__main__":
    main()
