"""Hyper-parameter sweep with Ray Tune: ``python tune.py model=grand_l dataset=cora tuner=asha tuner.num_samples=16``.

Same configuration as ``train.py`` (``conf/``) plus the ``tuner`` group and ``conf/search_space/``; see
docs/sweeps.md.
"""

from grand_bench.tune.cli import main

if __name__ == "__main__":
    main()
