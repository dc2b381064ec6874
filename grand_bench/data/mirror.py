"""Staging raw files from a read-only mirror into the project's writable data root.

The mirror (env ``GRAND_BENCH_RAW``) is a folder in PyG's raw layout: the same relative paths as
``<root>/<Name>/raw/`` of the PyG dataset classes. PyG writes ``processed/`` next to ``raw/``, so it
must never be pointed at the mirror itself: raw files are copied into ``data_root`` first and PyG
only ever sees ``data_root``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar
from urllib.error import URLError

from grand_bench.data.errors import DataError
from grand_bench.data.integrity import built_from, check_raw_files, sync_processed

log = logging.getLogger(__name__)

OFFLINE_ENV = "GRAND_BENCH_OFFLINE"
MIRROR_ENV = "GRAND_BENCH_RAW"

T = TypeVar("T")


def offline() -> bool:
    """True when env ``GRAND_BENCH_OFFLINE`` forbids download attempts (1/true/yes)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


def check_data_root(data_root: Path, raw_mirror: Path | None) -> None:
    """Refuse a data root that is the mirror or lies inside it (PyG would write processed/ there)."""
    if raw_mirror is None:
        return
    root, mirror = data_root.resolve(), raw_mirror.resolve()
    if root == mirror or mirror in root.parents:
        raise DataError(
            f"data_root {str(root)!r} is inside the read-only raw mirror {str(mirror)!r}; "
            f"choose a data_root outside it (the mirror is only copied from)"
        )


def stage_raw(
    data_root: Path,
    raw_mirror: Path | None,
    rel_dir: str,
    files: Sequence[str],
    sources: Sequence[str] = (),
) -> list[Path]:
    """Copy the missing ``files`` of ``<data_root>/<rel_dir>`` from the mirror; return those still missing.

    Each file is looked up in ``<mirror>/<rel_dir>`` and then in ``<mirror>/<s>`` for each of
    ``sources`` (e.g. a geom-gcn raw folder may take the plain Planetoid files from ``Cora/raw``).
    Files are copied, never linked, so nothing PyG does under data_root can reach the mirror.
    The files present afterwards are checked against the known checksums (a truncated or altered file is a
    DataError naming it), and for a ``.../raw`` folder PyG's sibling ``processed/`` cache is dropped if it
    was built from other raw files (data/integrity.py).
    """
    dest_dir = data_root / rel_dir
    usable_mirror = raw_mirror
    if raw_mirror is not None and not raw_mirror.is_dir():
        # The Makefile exports a default mirror path that exists only on machines that ship one;
        # elsewhere PyG downloads, so an absent mirror is not an error.
        log.warning("raw mirror %s is not a directory; ignoring it", raw_mirror)
        usable_mirror = None
    missing = []
    staged: dict[str, Path] = {}
    for name in files:
        dest = dest_dir / name
        if dest.is_file():
            continue
        src = _find_in_mirror(usable_mirror, (rel_dir, *sources), name)
        if src is None:
            missing.append(dest)
            continue
        _copy_atomic(src, dest)
        staged[name] = src
        log.info("staged raw file %s -> %s", src, dest)
    shas = check_raw_files(data_root, rel_dir, files, sources, staged)
    if Path(rel_dir).name == "raw":  # PyG's layout: <dataset>/raw beside <dataset>/processed
        parent = data_root / Path(rel_dir).parent
        previous = built_from(parent / "processed")
        for variant in parent.glob("*/processed"):  # variants with their own cache (ZINC: subset/, full/)
            sync_processed(variant, shas, default=previous)
        sync_processed(parent / "processed", shas)
    return missing


def _find_in_mirror(raw_mirror: Path | None, rel_dirs: Sequence[str], name: str) -> Path | None:
    if raw_mirror is None:
        return None
    for rel in rel_dirs:
        candidate = raw_mirror / rel / name
        if candidate.is_file():
            return candidate
    return None


def _copy_atomic(src: Path, dest: Path) -> None:
    # Copy under a temporary name and rename, so an interrupted copy never looks like a complete file.
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def missing_raw_error(missing: Sequence[Path], raw_mirror: Path | None, why: str) -> DataError:
    """The one-line error for raw files that neither the mirror nor a download could provide."""
    where = f"not in raw mirror {raw_mirror}" if raw_mirror is not None else "no raw mirror set"
    files = ", ".join(str(p) for p in missing)
    return DataError(
        f"missing raw file(s): {files} ({where}; {why}); set {MIRROR_ENV} to a folder in PyG's raw "
        f"layout holding them (or connect to the internet)"
    )


def build_pyg(factory: Callable[[], T], missing: Sequence[Path], raw_mirror: Path | None) -> T:
    """Construct a PyG dataset, letting it download ``missing`` raw files unless offline.

    PyG downloads whatever raw file is absent when the class is constructed; a network failure
    surfaces as URLError or an OSError subclass (aiohttp's connector errors), turned here into a
    DataError naming the files.
    """
    if missing and offline():
        raise missing_raw_error(missing, raw_mirror, why=f"no download tried: {OFFLINE_ENV} is set")
    try:
        return factory()
    except (URLError, OSError) as err:
        if not missing:
            raise DataError(f"building the PyG dataset failed: {_one_line(err)}") from err
        raise missing_raw_error(missing, raw_mirror, why=f"PyG could not fetch them: {_one_line(err)}") from err


def _one_line(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())
