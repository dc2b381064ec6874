"""Run the cells of a paper's table that the results store does not hold yet (grand_bench/reproduce.py).

    python scripts/reproduce.py table=grand2021_table2 [models=grand_l,grand_nl] [datasets=cora] [runs=N]
                                [dry_run=true] [any config override, e.g. device=cuda results_dir=/tmp/x]

table: a spec in conf/tables/. models / datasets: our names among the table's rows / columns (default: all
that grand_bench has). runs=N: at most N runs per cell (splits first). dry_run=true: print the plan and the
equivalent train.py commands, train nothing. Resumable: runs already recorded under the table's tag are
skipped, a killed run continues from its checkpoint. Then `make tables`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grand_bench.errors import GrandBenchError  # noqa: E402
from grand_bench.reproduce import main  # noqa: E402

if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except GrandBenchError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
