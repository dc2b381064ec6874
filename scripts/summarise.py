"""Summarise run records: one row per (model, dataset, split, tag), ours beside the paper's number.

    python scripts/summarise.py [results/runs] [--out results/summary.md] [--tag core_check]

Ours: mean ± population std of the test score at the best validation epoch over the `ok` runs. A row pools
every setting recorded under its tag ("settings" counts them: an earlier preset, an exploratory override); the
tables of `make tables` count each setting apart.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grand_bench.report import read_records, summarise  # noqa: E402
from grand_bench.report.reference import paper_value  # noqa: E402
from grand_bench.run_key import setting_key  # noqa: E402


def rows(records: list[dict]) -> list[list[str]]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["model"], r["dataset"], r["split"], r.get("tag") or "")].append(r)
    table = []
    for (model, dataset, split, tag), runs in sorted(groups.items()):
        ok = [r for r in runs if r["status"] == "ok"]
        mean, std, n = summarise(100 * r["test_at_best_val"] for r in ok)
        ours = f"{mean:.1f} ± {std:.1f}" if n else "–"
        ref = paper_value(model, dataset, split)
        paper = f"{ref[0]:.1f} ± {ref[1]:.1f}" if ref and ref[1] is not None else (f"{ref[0]:.1f}" if ref else "–")
        delta = f"{mean - ref[0]:+.1f}" if ref and n else "–"
        sec, _, _ = summarise(r["seconds_per_epoch"] for r in ok)
        nfe, _, _ = summarise(r["nfe_forward"] for r in ok)
        table.append(
            [
                model,
                dataset,
                split,
                tag,
                ours,
                paper,
                delta,
                str(n),
                str(len(runs) - len(ok)),
                str(len({setting_key(r["config"]) for r in runs if isinstance(r.get("config"), dict)})),
                f"{sec:.2f}" if n else "–",
                f"{nfe:.0f}" if n else "–",
                ref[2] if ref else "",
            ]
        )
    return table


def markdown(table: list[list[str]]) -> str:
    head = [
        "model",
        "dataset",
        "split",
        "tag",
        "ours (test %)",
        "paper",
        "Δ",
        "n ok",
        "n failed",
        "settings",
        "s/epoch",
        "NFE fwd",
        "paper cell",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results/runs")
    parser.add_argument("--out", default=None, help="also write the Markdown table here")
    parser.add_argument("--tag", default=None, help="only records with this tag")
    args = parser.parse_args()
    records = read_records(args.results)
    if args.tag is not None:
        records = [r for r in records if r.get("tag") == args.tag]
    text = markdown(rows(records))
    print(text)
    if args.out:
        header = (
            "# Run summary\n\nWritten by `scripts/summarise.py` from the run records in "
            f"`{args.results}`. Ours: mean ± population std of test accuracy at the best validation epoch; "
            "paper: `reference/published_results.csv`. A row pools every setting recorded under its tag (settings: "
            "how many; the tables in `results/tables` count each apart). s/epoch is the recorded wall-clock time per "
            "epoch (it depends on what else shared the machine; see each record's `machine` and `config`).\n\n"
        )
        Path(args.out).write_text(header + text, encoding="utf-8")


if __name__ == "__main__":
    main()
