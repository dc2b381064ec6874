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
    plot_scaling(read(out), out.with_suffix(".png"))


def loglog_slope(points: list[tuple[float, float]]) -> float:
    xs, ys = [math.log(x) for x, _ in points], [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def plot_scaling(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for model in sorted({r["case"].split("_sbm_")[0] for r in records if "_sbm_" in r["case"]}):
        latest = {r["case"]: r for r in records if r["case"].startswith(model + "_sbm_") and r.get("status") == "ok"}
        ordered = sorted(latest.values(), key=lambda r: r["num_edges"] * r["hidden_dim"])
        points = [(r["num_edges"] * r["hidden_dim"], r["epoch_seconds"]) for r in ordered]
        if len(points) < 2:
            continue
        slope = loglog_slope(points)
        # the range: graphs of 10^4 nodes (about 10^5 edges) and up
        large = [p for p, r in zip(points, ordered, strict=True) if r["num_nodes"] >= 10_000]
        tail = loglog_slope(large) if len(large) >= 2 else float("nan")
        label = f"{model.removeprefix('scaling_')} (slope {slope:.2f}; from 1e4 nodes {tail:.2f})"
        ax.loglog(*zip(*points, strict=True), marker="o", label=label)
        print(f"{model}: log-log slope of epoch time vs |E|*d = {slope:.3f} (from 10^4 nodes: {tail:.3f})")
    ax.set_xlabel("|E| x hidden dim")
    ax.set_ylabel("training epoch (s)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    print(f"plot: {path}")


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
        run_scaling(spec, device, out.with_name(out.stem + "_scaling.jsonl"), models, parts)
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
