"""spark-submit entry point: `spark-submit [options] submit.py JOB [ARGS]` runs spark_jobs.JOB.main(ARGS).

spark-submit runs a file, not `python -m`; this file is shipped next to the job package's zip
(--py-files), so EMR steps, the local emulator and pods all reach the same CLIs.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import spark_jobs

JOBS = ("train", "registry", "score")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in JOBS:
        print(f"usage: submit.py {{{','.join(JOBS)}}} [ARGS]", file=sys.stderr)
        return 2
    spark_jobs.configure_logging()
    module = importlib.import_module(f"spark_jobs.{args[0]}")
    return int(module.main(args[1:]))


if __name__ == "__main__":
    sys.exit(main())
