"""keep_freed_memory: freed big tensors' pages are reused, not faulted in again (glibc on Linux)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from grand_bench.run_key import run_key

# A fresh interpreter per setting: the policy holds for the rest of a process. It reports the minor page
# faults of ten rounds of elementwise arithmetic on a 64 MB tensor (above glibc's largest mmap threshold), as
# a solver's stages do with an [N, d] state, after five warm-up rounds: with the policy the heap has settled
# by then (torch's aligned requests are a little larger than the block just freed, so the first rounds may
# still take fresh pages until freed blocks coalesce).
PROBE = """
import resource, sys, torch
from grand_bench.allocator import keep_freed_memory
print(keep_freed_memory(sys.argv[1] == "on"))
x = torch.ones(16 * 2**20)
def stage():
    y = x * 2
    z = y + x
    return float(z[0])
for _ in range(5):
    stage()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    stage()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def probe(setting: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, setting], capture_output=True, text=True, check=True)
    in_force, faults = out.stdout.split()
    return in_force == "True", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tunables")
def test_kept_memory_is_reused_without_page_faults():
    in_force, faults_kept = probe("on")
    off, faults_default = probe("off")
    assert in_force and not off
    pages = 10 * 2 * 64 * 2**20 // 4096  # two new 64 MB tensors per round
    assert faults_default > 0.9 * pages  # glibc maps and unmaps each of them: every page faults again
    # kept: the heap serves them from pages already mapped. Over 25 probes, 0 or 3 of the 20 tensors still
    # took fresh pages (where Python's own small objects land varies), never more.
    assert faults_kept < 0.25 * pages


def test_the_setting_is_not_part_of_a_runs_identity(tmp_path):
    from omegaconf import OmegaConf

    base = {"model": {"name": "gcn"}, "seed": 0, "keep_freed_memory": True}
    assert run_key(OmegaConf.create(base)) == run_key(OmegaConf.create({**base, "keep_freed_memory": False}))
    assert run_key(OmegaConf.create(base)) == run_key({"model": {"name": "gcn"}, "seed": 0})  # older records
