"""The job package's CLI, the job image's entrypoint: `python -m spark_jobs JOB [ARGS...]`.

Each job is a module with main(argv); `python -m spark_jobs JOB --help` shows its options.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

JOBS = {
    "score": "score a day's partition of records with a registered model (batch scoring)",
    "train": "train, evaluate and register a model (optionally promote it)",
    "registry": "list the model registry or promote a version",
    "contract": "check an input against a dataset spec without Spark",
    "sample_input": "cut a day's partition of unlabeled records out of a labelled dataset",
    "serving": "spot predictions' smoke check of a model version",
}


def usage() -> str:
    width = max(map(len, JOBS))
    lines = [f"  {name:<{width}}  {text}" for name, text in JOBS.items()]
    return "usage: python -m spark_jobs JOB [ARGS...]\n\njobs:\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(usage())
        return 0
    if not args or args[0] not in JOBS:
        print(usage() + (f"\n\nerror: unknown job {args[0]!r}" if args else ""), file=sys.stderr)
        return 2
    module = importlib.import_module(f"spark_jobs.{args[0]}")
    return int(module.main(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
