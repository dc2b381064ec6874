"""The papers' tables and figures from the run records; never trains (`make tables`, `make figures`).

    python scripts/make_tables.py [results/runs] [--out results/tables] [--figures results/figures]
                                  [--no-tables] [--no-figures] [--table grand2021_table1 ...]

Writes results/tables/<spec>.{md,tex,csv} and results/tables/README.md for every spec in conf/tables/
(grand_bench/report/tables.py), then results/figures/<spec>.png and results/figures/README.md
(grand_bench/report/figures.py). A corrupt store line is reported (file:line) and skipped; a figure with no
records is skipped with a one-line note.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grand_bench.report import read_records  # noqa: E402
from grand_bench.report.figures import make_figures  # noqa: E402
from grand_bench.report.tables import write_tables  # noqa: E402


def load(results: str) -> list[dict]:
    if not Path(results).exists():
        print(f"note: {results} does not exist; tables show the papers' values only", file=sys.stderr)
        return []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = read_records(results)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results/runs", help="a store folder or .jsonl file")
    parser.add_argument("--out", default="results/tables")
    parser.add_argument("--figures", default="results/figures")
    parser.add_argument("--no-tables", action="store_true")
    parser.add_argument("--no-figures", action="store_true")
    parser.add_argument("--table", action="append", help="only this spec (repeatable); the index lists only these")
    args = parser.parse_args()
    records = load(args.results)
    if not args.no_tables:
        written = write_tables(records, args.out, args.table, source=args.results)
        print(f"{len(written)} files in {args.out} from {len(records)} records")
    if not args.no_figures:
        figures, notes = make_figures(records, args.figures)
        for note in notes:
            print(note)
        print(f"{len(figures)} figure(s) in {args.figures}")


if __name__ == "__main__":
    main()
