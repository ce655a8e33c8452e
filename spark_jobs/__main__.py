"""The job package's one CLI: `python -m spark_jobs JOB [ARGS...]`.

The EMR step (through shipping/submit.py), the scoring pods (the job image's entrypoint), the DAG
tasks (scaling_platform.jobs.run_job), make and the tests all come in here. Each job is a module
with main(argv); `python -m spark_jobs JOB --help` shows its options.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import spark_jobs
from spark_jobs.errors import exit_now

# job name -> (module, what it does); a job's module is imported only when it runs.
JOBS = {
    "train": ("spark_jobs.training.train", "train, evaluate and register a model (optionally promote it)"),
    "registry": ("spark_jobs.registry.store", "list the model registry or promote a version"),
    "contract": ("spark_jobs.data.contract", "check an input against a dataset spec without Spark"),
    "sample_input": (
        "spark_jobs.data.sample_input",
        "cut a day's partition of unlabeled records out of a labelled dataset",
    ),
    "score": ("spark_jobs.scoring.score", "score a day's partition of records with a registered model"),
    "shards": ("spark_jobs.scoring.shards", "split a day into shards for pods, or commit their scores"),
    "serving": ("spark_jobs.serving.predict", "spot predictions' smoke check of a model version"),
    "package": ("spark_jobs.shipping.package", "ship the job code and its environment for EMR"),
    "lambda_package": ("spark_jobs.shipping.lambda_package", "build or ship the Lambda deployment package"),
    "deploy": ("spark_jobs.shipping.deploy", "deploy aws/template.yaml (CloudFormation, the SAM transform)"),
    "class_archive": ("spark_jobs.class_archive", "make this checkout's class archive for local Spark JVMs"),
}


def usage() -> str:
    width = max(map(len, JOBS))
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in JOBS.items()]
    return "usage: python -m spark_jobs JOB [ARGS...]\n\njobs:\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(usage())
        return 0
    if not args or args[0] not in JOBS:
        print(usage() + (f"\n\nerror: unknown job {args[0]!r}" if args else ""), file=sys.stderr)
        return 2
    spark_jobs.configure_logging()
    module = importlib.import_module(JOBS[args[0]][0])
    return int(module.main(args[1:]) or 0)


if __name__ == "__main__":
    exit_now(main())
