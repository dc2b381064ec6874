"""Write grand_bench/data/checksums.tsv: size and sha256 of every raw file in the raw mirror.

Every file under the mirror (PyG's raw layout; its MANIFEST.tsv and README.md excepted) is hashed; where the
mirror's MANIFEST.tsv lists a file, the computed size and sha256 must agree with it, or nothing is written.
The table is committed with the package and checked against staged raw files (grand_bench/data/integrity.py).

    .venv/bin/python scripts/make_checksums.py                    # mirror from GRAND_BENCH_RAW or ../shared/data
    .venv/bin/python scripts/make_checksums.py /path/to/mirror --out grand_bench/data/checksums.tsv
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grand_bench.data.integrity import CHECKSUMS, sha256_of  # noqa: E402

NOT_DATA = ("MANIFEST.tsv", "README.md")


def manifest(mirror: Path) -> dict[str, tuple[int, str]]:
    """The mirror's own MANIFEST.tsv (columns dataset, file, bytes, sha256, ...): file -> (bytes, sha256)."""
    path = mirror / "MANIFEST.tsv"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", newline="") as handle:
        return {row["file"]: (int(row["bytes"]), row["sha256"]) for row in csv.DictReader(handle, delimiter="\t")}


def table(mirror: Path) -> tuple[list[tuple[str, int, str]], list[str]]:
    """(rows of (path, bytes, sha256) sorted by path, disagreements with MANIFEST.tsv)."""
    listed = manifest(mirror)
    rows, problems = [], []
    for path in sorted(p for p in mirror.rglob("*") if p.is_file()):
        rel = path.relative_to(mirror).as_posix()
        if rel in NOT_DATA or any(part.startswith(".") for part in Path(rel).parts):
            continue
        size, sha = path.stat().st_size, sha256_of(path)
        if rel in listed and listed[rel] != (size, sha):
            problems.append(f"{rel}: {size} bytes {sha} but MANIFEST.tsv says {listed[rel][0]} bytes {listed[rel][1]}")
        rows.append((rel, size, sha))
    problems += [f"{rel}: in MANIFEST.tsv but not in the mirror" for rel in sorted(set(listed) - {r[0] for r in rows})]
    return rows, problems


def main() -> int:
    default = os.environ.get("GRAND_BENCH_RAW") or str(ROOT.parent / "shared" / "data")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mirror", nargs="?", default=default, help="raw mirror folder (PyG raw layout)")
    parser.add_argument("--out", default=str(CHECKSUMS), help="table to write")
    args = parser.parse_args()
    mirror = Path(args.mirror)
    if not mirror.is_dir():
        print(f"error: raw mirror {mirror} is not a folder", file=sys.stderr)
        return 2
    rows, problems = table(mirror)
    if problems:
        print("error: the mirror disagrees with its MANIFEST.tsv:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    lines = [
        "# Size and sha256 of the raw benchmark files, by path in PyG's raw layout.",
        "# Written by scripts/make_checksums.py from the raw mirror (checked against its MANIFEST.tsv); do not edit.",
        "file\tbytes\tsha256",
        *(f"{rel}\t{size}\t{sha}" for rel, size, sha in rows),
    ]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(rows)} checksums to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
