"""Errors a user can act on; the CLIs print their message and exit non-zero, without a traceback."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import NoReturn


def run_cli(action: Callable[[], object], also: tuple[type[Exception], ...] = ()) -> int:
    """A CLI's exit code: 0 once `action` (which prints the CLI's answer) is done; a JobError, or
    one of the `also` types, is printed as `error: ...` without a traceback."""
    try:
        action()
    except JobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except PermissionError as exc:  # s3fs's 403, which names no action or object
        print(
            f"error: access denied ({exc}): the role this job runs as may not make one of its storage "
            "requests (CloudTrail names the action and object; offline, the emulator's log)",
            file=sys.stderr,
        )
        return ACCESS_DENIED_EXIT_CODE
    except also as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


# A storage request the job's role may not make: a retry is refused again (IAM must change).
ACCESS_DENIED_EXIT_CODE = 6


class JobError(Exception):
    """Base class: the message alone tells the user what is wrong and where."""

    exit_code = 1


class SpecError(JobError):
    """The dataset spec is missing or invalid."""

    exit_code = 2


class DataContractError(JobError):
    """The input data does not match the dataset spec."""

    exit_code = 3


class RegistryError(JobError):
    """The model registry is missing something, or would be left inconsistent."""

    exit_code = 4


class IntegrityError(RegistryError):
    """A stored artefact does not match the checksum in its manifest."""


class NoChampionError(RegistryError):
    """Nothing has been promoted yet, so there is no model to serve."""


class InvalidInputError(JobError):
    """Records sent for prediction do not match the dataset spec (the caller must fix them)."""

    exit_code = 5


class IncompleteShardsError(JobError):
    """A day's shards are not all scored, or not of one plan: the commit cannot publish the day
    until the failed shard is scored again."""

    exit_code = 7


def exit_now(code: int) -> NoReturn:
    """Exit with `code` once the logs are flushed, without the interpreter's teardown: threads a
    native library left running (Arrow's CSV reader after a read that failed) can abort it with
    SIGABRT, "terminate called without an active exception" (apache/arrow#34314), and a pod whose
    job refused its input (exit 3) would then be taken for a crash (134) and run again."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
