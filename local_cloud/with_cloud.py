"""Run one command against the offline cloud: `python -m local_cloud.with_cloud -- COMMAND ...`.

Starts the emulator with what earlier runs kept (S3 objects, Lambda functions), gives the command
the SDK settings that reach it (AWS_ENDPOINT_URL and credentials, as a role gives them on AWS),
and stops the emulator when the command ends. `make show`, `make train` and `make score` use it so
that an `s3://` storage root means the same bucket `make run` wrote.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from local_cloud.airflow.offline import offline_emulator
from local_cloud.lifetime import die_with_parent
from local_cloud.process import ROOT, StartupError
from local_cloud.server import CREDENTIALS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_cloud.with_cloud", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--home", type=Path, default=ROOT / ".airflow", help="where the emulator keeps its state"
    )
    parser.add_argument(
        "--bucket", action="append", default=[], help="a bucket the command needs (repeatable)"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    try:
        with offline_emulator(home, args.bucket) as endpoint:
            env = os.environ | CREDENTIALS | {"AWS_ENDPOINT_URL": endpoint}
            return subprocess.run(command, env=env, cwd=ROOT, preexec_fn=die_with_parent()).returncode
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
