"""`make bench`: time the cases of conf/bench/<bench>.yaml and write results/bench/<device>.{jsonl,md}.

    python scripts/bench.py                          # conf/bench/default.yaml on the CPU
    python scripts/bench.py device=cuda cases=[grand_l_cora_dopri5] epochs=20
    python scripts/bench.py bench=scaling            # time/memory vs graph size, log-log plot
    python scripts/bench.py bench=scaling models=[graff] parts=[sbm]   # a part of it
    python scripts/bench.py table_only=true          # rewrite the Markdown table from the records

Each case runs in a fresh process (peak RSS is its own); a case that fails is recorded as failed and the
others go on. See grand_bench/bench.py for what is measured.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grand_bench.bench import (  # noqa: E402
    BENCH_DIR,
    bench_record,
    device_name,
    history_table,
    markdown_table,
    measure_isolated,
    oldest_first,
    results_dir,
)
from grand_bench.report.store import append_record, read_records  # noqa: E402


def read(path: Path) -> list[dict]:
    return read_records(path) if path.exists() else []


def run_cases(spec, device: str, wanted: list[str] | None, out: Path) -> None:
    cases = [c for c in spec.cases if wanted is None or c.name in wanted]
    if wanted is not None and len(cases) != len(wanted):
        known = ", ".join(c.name for c in spec.cases)
        raise SystemExit(f"unknown bench case(s) {sorted(set(wanted) - {c.name for c in cases})}; valid: {known}")
    for number, case in enumerate(cases, 1):
        print(f"[{number}/{len(cases)}] {case.name} ...", flush=True)
        result = measure_isolated(
            overrides=[*case.overrides, f"device={device}"],
            epochs=int(case.get("epochs", spec.epochs)),
            warmup=int(case.get("warmup", spec.warmup)),
            floor_repeats=int(spec.floor_repeats),
        )
        record = bench_record(case.name, result, device)
        append_record(out, record)
        print(markdown_table([record]).splitlines()[-1], flush=True)


def run_scaling(spec, device: str, out: Path, models: list[str] | None = None, parts: list[str] | None = None) -> None:
    """Time per epoch vs |E| on SBM graphs ("sbm"), an ogbn-arxiv-sized graph ("arxiv"), and adjoint memory vs T
    ("adjoint"); ``models`` / ``parts`` restrict what is run (default: everything in the spec)."""
    models = models or list(spec.models)
    parts = parts or ["sbm", "arxiv", "adjoint"]

    def overrides(model: str) -> list[str]:
        return [f"model={model}", *spec.common, *spec.models[model], f"device={device}"]

    for model in models if "sbm" in parts else []:
        for size in spec.sizes:
            print(f"{model} SBM n={size} ...", flush=True)
            result = measure_isolated(
                overrides=overrides(model),
                epochs=int(spec.epochs),
                warmup=int(spec.warmup),
                floor_repeats=int(spec.floor_repeats),
                synthetic={"num_nodes": int(size), "features": 32},
            )
            append_record(out, bench_record(f"scaling_{model}_sbm_{size}", result, device))
    arxiv = dict(spec.arxiv_like)
    for model in models if "arxiv" in parts else []:
        print(f"{model} ogbn-arxiv-sized graph ...", flush=True)
        synthetic = {"num_nodes": arxiv["num_nodes"], "num_edges": arxiv["num_edges"] // 2}
        synthetic |= {"features": arxiv["features"], "num_blocks": arxiv["classes"]}
        result = measure_isolated(
            overrides=overrides(model),
            epochs=1,
            warmup=1,
            floor_repeats=3,
            synthetic=synthetic,
        )
        append_record(out, bench_record(f"scaling_{model}_arxiv_like", result, device))
    for adjoint in (False, True) if "adjoint" in parts else ():
        for t in spec.adjoint_times:
            print(f"grand_l T={t} adjoint={adjoint} ...", flush=True)
            result = measure_isolated(
                overrides=[
                    *overrides("grand_l"),
                    f"model.time={t}",
                    f"solver.adjoint={str(adjoint).lower()}",
                ],
                epochs=1,
                warmup=1,
                floor_repeats=3,
                synthetic={"num_nodes": 100_000, "features": 32},
            )
            append_record(out, bench_record(f"adjoint_{adjoint}_T{t:g}", result, device))


def loglog_slope(points: list[tuple[float, float]]) -> float:
    xs, ys = [math.log(x) for x, _ in points], [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def scaling_curves(records: list[dict]) -> dict[str, tuple[list[tuple[float, float]], float, float]]:
    """Per model: the latest (|E| x d, epoch s) of each SBM size, the log-log slope over all of them, and the
    slope from 10^4 nodes up (the issue's range)."""
    curves = {}
    for model in sorted({r["case"].split("_sbm_")[0] for r in records if "_sbm_" in r["case"]}):
        latest = {r["case"]: r for r in oldest_first(records) if r["case"].startswith(model + "_sbm_")}
        ordered = sorted((r for r in latest.values() if r.get("status") == "ok"), key=lambda r: r["num_edges"])
        points = [(r["num_edges"] * r["hidden_dim"], r["epoch_seconds"]) for r in ordered]
        if len(points) < 2:
            continue
        large = [p for p, r in zip(points, ordered, strict=True) if r["num_nodes"] >= 10_000]
        tail = loglog_slope(large) if len(large) >= 2 else float("nan")
        curves[model.removeprefix("scaling_")] = (points, loglog_slope(points), tail)
    return curves


def plot_scaling(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for model, (points, slope, tail) in scaling_curves(records).items():
        ax.loglog(
            *zip(*points, strict=True), marker="o", label=f"{model} (slope {slope:.2f}; from 1e4 nodes {tail:.2f})"
        )
        print(f"{model}: log-log slope of epoch time vs |E|*d = {slope:.3f} (from 10^4 nodes: {tail:.3f})")
    ax.set_xlabel("|E| x hidden dim")
    ax.set_ylabel("training epoch (s)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    print(f"plot: {path}")


def write_scaling_table(records: list[dict], path: Path, device: str) -> None:
    slopes = "\n".join(
        f"| {model} | {slope:.2f} | {tail:.2f} |" for model, (_, slope, tail) in scaling_curves(records).items()
    )
    path.write_text(
        f"# Scaling ({device_name(device)})\n\nLog-log slope of training-epoch time against |E| x d on the SBM graphs "
        "(latest measurement of each size; target from 10^4 nodes: <= 1.1):\n\n"
        f"| model | slope, 10^3-10^6 nodes | slope, 10^4-10^6 nodes |\n|---|---|---|\n{slopes}\n\n"
        f"Latest measurement of each case:\n\n{markdown_table(records)}\n"
        "## History\n\nEvery measurement, oldest first.\n\n" + history_table(records)
    )
    print(f"table: {path}")


def main(argv: list[str]) -> None:
    args = OmegaConf.from_dotlist(argv)
    bench = args.get("bench", "default")
    spec = OmegaConf.load(BENCH_DIR / f"{bench}.yaml")
    for key in ("epochs", "warmup", "floor_repeats"):
        if key in args:
            spec[key] = args[key]
    device = str(args.get("device", "cpu"))
    out = results_dir() / f"{device_name(device)}.jsonl"
    if bench == "scaling":
        models, parts = (list(args[k]) if k in args else None for k in ("models", "parts"))
        scaling = out.with_name(out.stem + "_scaling.jsonl")
        if not args.get("table_only", False):
            run_scaling(spec, device, scaling, models, parts)
        plot_scaling(read(scaling), scaling.with_suffix(".png"))
        write_scaling_table(read(scaling), scaling.with_suffix(".md"), device)
        return
    wanted = list(args.cases) if "cases" in args else None
    if not args.get("table_only", False):  # table_only=true: rewrite the .md from the records, time nothing
        run_cases(spec, device, wanted, out)
    table = out.with_suffix(".md")
    records = read(out)
    table.write_text(
        f"# Benchmark ({device_name(device)})\n\nLatest measurement of each case:\n\n{markdown_table(records)}\n"
        '## History\n\nEvery measurement, oldest first. Before session 3\'s changes, "s per eval" was the whole '
        'solve per NFE (now "solve s/NFE").\n\n' + history_table(records)
    )
    print(f"records: {out}\ntable: {table}")


if __name__ == "__main__":
    main(sys.argv[1:])
