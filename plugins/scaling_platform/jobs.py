"""Run a job package CLI from a task, the way spark-submit, Lambda and pods run it.

The DAGs know the job package only by module names and arguments; this is the one place that
turns those into a process, and its JSON answer into a task result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException

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
    job: str, *args: str, timeout: float = 600, refused: tuple[int, ...] = REFUSED_EXIT_CODES
) -> Any:
    """Run `python -m spark_jobs JOB ARGS` (the job package's one CLI); return its stdout parsed as JSON. An exit code in
    `refused` fails the task for good (JobRefused); any other is retried (JobFailed)."""
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
    return json.loads(proc.stdout) if proc.stdout.strip() else None
