"""Hyper-parameter sweeps with Ray Tune (``tune.py``; docs/sweeps.md).

``space`` turns conf/search_space files into Tune domains, ``trainable`` runs one trial exactly as
``train.py`` runs one run, ``scheduler`` is ASHA with a stop that lets trials record themselves,
``sweep`` drives it all, ``summary`` and ``export`` turn the records into a table and a preset.
Ray is imported by these modules, so import them only where a sweep runs.
"""
