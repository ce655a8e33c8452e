"""Run a job package CLI from a task, the way spark-submit, Lambda and pods run it.

The DAGs know the job package only by these functions; this is the one place that turns a job
into a process, and its answer (a model of spark_jobs.interface) into a task result.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TypeVar

from airflow.providers.common.compat.sdk import AirflowFailException

from spark_jobs.interface import (
    Answer,
    AnswerError,
    Decision,
    InputChecked,
    LambdaPackage,
    Shipped,
    SmokeCheck,
)

A = TypeVar("A", bound=Answer)

# The project root holds spark_jobs/ next to plugins/.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class JobFailed(RuntimeError):
    """A job CLI exited non-zero; the message is what it printed on stderr."""


class JobRefused(JobFailed, AirflowFailException):
    """The job refused its input (exit 2 bad spec or location, 3 data contract, 5 invalid records,
    7 shards not all scored) or storage refused the job (6 access denied): a retry would be
    refused again, so the task fails for good."""


# The job package's exit codes for input it refuses, for access denied, and for a day's shards
# that are not all scored (spark_jobs.errors).
REFUSED_EXIT_CODES = (2, 3, 5, 6, 7)


def run_job(
    job: str, *args: str, answer: type[A], timeout: float = 600, refused: tuple[int, ...] = REFUSED_EXIT_CODES
) -> A:
    """Run `python -m spark_jobs JOB ARGS` (the job package's one CLI); its answer, parsed into the
    model the job prints. An exit code in `refused` fails the task for good (JobRefused); any
    other is retried (JobFailed)."""
    proc = subprocess.run(
        [sys.executable, "-m", "spark_jobs", job, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=PROJECT_ROOT,
        check=False,
    )
    if proc.returncode != 0:
        error = JobRefused if proc.returncode in refused else JobFailed
        raise error(proc.stderr.strip() or f"spark_jobs {job} exited {proc.returncode}")
    try:
        return answer.parse(proc.stdout)
    except AnswerError as exc:
        raise JobRefused(f"spark_jobs {job}: {exc}") from None  # out of step: a retry gives the same


# -- each job a task runs, with its arguments and its answer --------------------------------------


def check_input(input_uri: str, spec_uri: str) -> InputChecked:
    """The Spark-free part of the data contract (the spec's columns, types and files)."""
    return run_job("contract", "--input", input_uri, "--spec", spec_uri, answer=InputChecked)


def ship_code(storage_root: str) -> Shipped:
    """The job code and its environment for EMR steps, built and uploaded once per digest."""
    return run_job("package", "--storage-root", storage_root, answer=Shipped)


def find_lambda_package(storage_root: str) -> LambdaPackage:
    """The Lambda package CI shipped for this code (`make ship`); never built on the worker."""
    return run_job("lambda_package", "--storage-root", storage_root, "--find", answer=LambdaPackage)


def smoke_check(storage_root: str, model: str, version: str) -> SmokeCheck:
    args = ("--storage-root", storage_root, "--model", model, "--version", version)
    return run_job("serving", "smoke", *args, answer=SmokeCheck)


def promote(
    storage_root: str,
    spec_uri: str,
    version: str,
    min_metrics: dict[str, float | None],
    tolerance: float | None,
) -> Decision:
    """Gate `version` (the spec's gate, with the thresholds given); the champion moves only if it
    passes."""
    given = [f"--min-metric={name}={value}" for name, value in min_metrics.items() if value is not None]
    given += [] if tolerance is None else [f"--tolerance={tolerance}"]
    args = ("--storage-root", storage_root, "--spec", spec_uri, "--version", version, *given)
    return run_job("registry", "promote", *args, answer=Decision)


def training_arguments(
    input_uri: str, spec_uri: str, storage_root: str, version: str, run_id: str
) -> list[str]:
    """The training step's job and arguments (spark-submit ... submit.py ARGS). With
    --skip-if-exists a retried step finds the version its first attempt registered."""
    return [
        "train", "--input", input_uri, "--spec", spec_uri, "--storage-root", storage_root,
        "--version", version, "--run-id", run_id, "--skip-if-exists",
    ]  # fmt: skip
