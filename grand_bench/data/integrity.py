"""Integrity of raw files and of PyG's processed caches built from them.

* **Known checksums.** ``checksums.tsv`` (beside this module; written by ``scripts/make_checksums.py`` from
  the raw mirror and its MANIFEST.tsv) lists the size and sha256 of every raw file the mirror ships, by its
  path in PyG's raw layout. A staged raw file with a listed path must match it; a truncated or altered file
  stops the run with one line naming the file and how to restore it. Files not in the table are accepted.
* **Hash once.** Digests are cached in ``<data_root>/.raw_digests.json`` by (size, mtime): a file is hashed
  again only when it changes.
* **Processed caches follow their raw files.** PyG rebuilds ``processed/`` only when it is missing, so a
  changed raw file would silently keep serving the old graph. The digests of the raw files a cache was
  built from are kept in ``processed/raw_digests.json``; when one differs, ``processed/`` is deleted and
  PyG rebuilds it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from grand_bench.data.errors import DataError

log = logging.getLogger(__name__)

CHECKSUMS = Path(__file__).with_name("checksums.tsv")
DIGEST_CACHE = ".raw_digests.json"  # in data_root
PROCESSED_RECORD = "raw_digests.json"  # in a processed/ folder
CHUNK = 1 << 20


@dataclass(frozen=True)
class Known:
    path: str  # the file's path in PyG's raw layout, as listed in checksums.tsv
    size: int
    sha256: str


@functools.cache
def known_checksums(table: Path = CHECKSUMS) -> dict[str, Known]:
    """``checksums.tsv``: path -> (size, sha256); empty when the table is absent."""
    if not table.is_file():
        return {}
    known = {}
    for line in table.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        path, size, sha = line.split("\t")[:3]
        if path == "file":  # header
            continue
        known[path] = Known(path, int(size), sha)
    return known


def expected(rel_dirs: Sequence[str], name: str) -> Known | None:
    """The listed checksum of raw file ``name`` under the first of ``rel_dirs`` that the table knows."""
    table = known_checksums()
    for rel in rel_dirs:
        found = table.get(f"{rel}/{name}")
        if found is not None:
            return found
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def digests(root: Path, rel_paths: Sequence[str]) -> dict[str, str]:
    """sha256 of each ``root/<rel>``, from the (size, mtime) cache in ``root`` where the file is unchanged."""
    cache_file = root / DIGEST_CACHE
    with FileLock(str(cache_file) + ".lock"):
        try:
            cache = json.loads(cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cache = {}  # absent or unreadable: it is only a cache
        out, changed = {}, False
        for rel in rel_paths:
            stat = (root / rel).stat()
            entry = cache.get(rel)
            if not (isinstance(entry, list) and entry[:2] == [stat.st_size, stat.st_mtime_ns]):
                entry = [stat.st_size, stat.st_mtime_ns, sha256_of(root / rel)]
                cache[rel], changed = entry, True
            out[rel] = entry[2]
        if changed:
            _write_json(cache_file, cache)
    return out


def check_raw_files(
    root: Path,
    rel_dir: str,
    names: Sequence[str],
    sources: Sequence[str] = (),
    staged_from: dict[str, Path] | None = None,
) -> dict[str, str]:
    """Check the present raw files ``<root>/<rel_dir>/<name>`` against the known checksums; name -> sha256.

    ``sources`` are further mirror folders the files may come from (their listed checksums apply too);
    ``staged_from`` maps the names just copied from the mirror to their mirror path, so that a bad copy is
    blamed on the mirror (and removed from ``root``) instead of on the data root.
    """
    staged_from = staged_from or {}
    present = [n for n in names if (root / rel_dir / n).is_file()]
    shas = digests(root, [f"{rel_dir}/{n}" for n in present])
    out = {}
    for name in present:
        path = root / rel_dir / name
        sha = shas[f"{rel_dir}/{name}"]
        known = expected((rel_dir, *sources), name)
        if known is not None and (path.stat().st_size != known.size or sha != known.sha256):
            raise _corrupt(path, sha, known, staged_from.get(name))
        out[name] = sha
    return out


def _corrupt(path: Path, sha: str, known: Known, mirror_copy: Path | None) -> DataError:
    size = path.stat().st_size
    what = "truncated" if size < known.size else "altered"
    found = f"{size} bytes, sha256 {sha[:12]}..., expected {known.size} bytes, sha256 {known.sha256[:12]}..."
    if mirror_copy is not None:
        path.unlink(missing_ok=True)  # never leave a known-bad copy in the data root
        return DataError(
            f"raw file {mirror_copy} in the raw mirror is {what} ({found}, {known.path} in "
            f"grand_bench/data/checksums.tsv); restore it in the mirror (its MANIFEST.tsv names the source)"
        )
    return DataError(
        f"raw file {path} is {what} ({found}, {known.path} in grand_bench/data/checksums.tsv); delete it and "
        f"run again to re-stage it from the raw mirror (GRAND_BENCH_RAW) or let PyG download it again"
    )


def built_from(processed_dir: Path) -> dict[str, str]:
    """The raw digests recorded for ``processed_dir`` ({} if none)."""
    try:
        return json.loads((processed_dir / PROCESSED_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def sync_processed(processed_dir: Path, raw_digests: dict[str, str], default: dict[str, str] | None = None) -> bool:
    """Delete ``processed_dir`` if it was built from raw files other than ``raw_digests``; True if deleted.

    A raw file the record does not name yet (a cache built before records were kept, a file PyG downloaded
    while building) is adopted, not a reason to rebuild: an expensive cache (MNIST superpixels) is never
    thrown away on a guess. The record is written before PyG builds a missing cache, under the dataset lock
    that ``load_raw`` holds. ``default``: the record to assume when the folder has none (a cache PyG built
    in a variant folder, which only the dataset's main record knows about).
    """
    record_file = processed_dir / PROCESSED_RECORD
    recorded = built_from(processed_dir) or dict(default or {})
    has_cache = processed_dir.is_dir() and any(p.name != PROCESSED_RECORD for p in processed_dir.iterdir())
    stale = sorted(name for name, sha in raw_digests.items() if recorded.get(name, sha) != sha)
    deleted = False
    if has_cache and stale:
        log.warning("raw files changed since %s was built (%s); rebuilding it", processed_dir, ", ".join(stale))
        shutil.rmtree(processed_dir)
        recorded, deleted = {}, True
    merged = {**recorded, **raw_digests}
    if merged != recorded or not record_file.is_file():
        _write_json(record_file, merged)
    return deleted


def _write_json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(value, handle, indent=0, sort_keys=True)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from other users of a shared data root
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
