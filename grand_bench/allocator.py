"""Let freed tensor memory be reused instead of handed back to the OS (glibc malloc on Linux).

glibc serves an allocation above its mmap threshold (32 MiB at most) with a fresh ``mmap`` and unmaps it
when it is freed, so every new tensor of that size page-faults all of its pages again. On a graph of 10^6
nodes and 10^7 edges each per-edge tensor is 40 MB and each [N, 16] state 64 MB, and a GRAND-nl training
step makes hundreds of them: it took 13.4M minor page faults and 30 s; served from the heap, which is
kept rather than trimmed, 2.1M faults and 20 s (1 thread, ``make bench-scaling``'s case). Peak RSS grows
about 25% (6.9 -> 8.6 GB there), since freed blocks stay in the process. The tensors of Cora- or PubMed-sized
graphs stay under the threshold, where glibc already reused freed memory. PyTorch's CPU tuning guide
suggests jemalloc or tcmalloc for the same reason; this needs no extra library. ``keep_freed_memory=false``
turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_MMAP_MAX = -4
_applied = False


def keep_freed_memory(enabled: bool = True) -> bool:
    """Serve every allocation from the heap and never trim it, for the rest of the process (glibc only).

    Returns whether the setting is in force. Idempotent; a no-op (False) off Linux or without glibc."""
    global _applied
    if not enabled or _applied:
        return _applied
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # both calls return 1 on success; the trim threshold is the largest int (glibc takes it as unsigned)
    _applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    return _applied
