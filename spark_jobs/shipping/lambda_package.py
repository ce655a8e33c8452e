"""The Lambda deployment package: `python -m spark_jobs lambda_package --out FILE | --storage-root URI`.

`--storage-root URI` builds and uploads it (`make ship`); with `--find` it only prints the
package shipped for this code and lock; `--image-context DIR` writes the container image's inputs.

A zip of the handler's modules (those of the job package it imports: no training code) plus the
`lambda` dependency group (pydantic, PyYAML, fsspec) at the lock's versions and hashes, as wheels
for Lambda's platform (the python3.12 runtime: Amazon Linux 2023, x86_64), whatever machine
builds it. The same lock and sources give the same bytes, so Lambda's
CodeSha256 tells whether a function already runs this code. The container image
(docker/lambda.Dockerfile) installs the same requirements and copies the same modules.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from spark_jobs import storage
from spark_jobs.errors import JobError, run_cli
from spark_jobs.interface import LambdaPackage
from spark_jobs.locations import argument
from spark_jobs.shipping import environment, package

HANDLER = "spark_jobs.serving.lambda_handler.handler"
# The zip and the image carry the handler's module and what it imports, not the training code.
ENTRY = HANDLER.rsplit(".", 1)[0]
# The handler is pure Python: nothing ties it to EMR's 3.11, and python3.11 (Amazon Linux 2) is
# on Lambda's deprecation path; python3.12 runs on Amazon Linux 2023 (glibc 2.34) until 2028.
RUNTIME = "python3.12"
PYTHON_VERSION = RUNTIME.removeprefix("python")
GROUP = "lambda"
PLATFORM = "x86_64-manylinux_2_34"


def digest() -> str:
    """Names a package without building it: lock, platform and job sources (this builder is one)."""
    parts = [
        (environment.PROJECT / "uv.lock").read_bytes(),
        package.source_digest(package.source_files(ENTRY)).encode(),
        PLATFORM.encode(),
        RUNTIME.encode(),
    ]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def build() -> bytes:
    """The zip's bytes: dependencies for Lambda's platform, then the job sources."""
    with tempfile.TemporaryDirectory(prefix="lambda-") as tmp:
        target = Path(tmp) / "package"
        reqs = environment.requirements(group=GROUP)
        environment.install(reqs, ["--target", str(target)], PLATFORM, PYTHON_VERSION)
        files = {
            path.relative_to(target).as_posix(): path.read_bytes()
            for path in sorted(target.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts and _kept(path.relative_to(target))
        }
    return package.build_zip(files | package.source_files(ENTRY))


def _kept(rel: Path) -> bool:
    # Console scripts name the build folder in their shebangs; uv's .lock is its own bookkeeping.
    return rel.parts[0] not in ("bin", ".lock")


def code_sha256(data: bytes) -> str:
    """How Lambda reports a package's checksum (CodeSha256): base64 of the sha256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class NotShippedError(JobError):
    """The package of this code and lock was never uploaded (`make ship` does it)."""


def _record(storage_root: str) -> str:
    return storage.join(storage.normalize(storage_root), "lambda", digest(), "package.json")


def find(storage_root: str) -> dict[str, str]:
    """The package shipped for this code and lock, never built here: a release on the Airflow
    worker must not need uv, PyPI or the build's time."""
    record = _record(storage_root)
    if not storage.exists(record):
        raise NotShippedError(
            f"no Lambda package for this code at {record.rsplit('/', 1)[0]}/: "
            f"ship it from CI with `make ship STORAGE_ROOT={storage_root}`"
        )
    return dict(json.loads(storage.read_bytes(record)))


def ship(storage_root: str) -> dict[str, str]:
    """Build and upload the zip once per digest; return its URI and Lambda-style checksum.

    package.json, written after the zip, records the checksum: its presence means complete, and
    a release learns the checksum without downloading the zip.
    """
    record = _record(storage_root)
    if storage.exists(record):
        return dict(json.loads(storage.read_bytes(record)))
    folder = record.rsplit("/", 1)[0]
    data = build()
    shipped = {
        "zip_uri": storage.join(folder, "spot-predictions.zip"),
        "code_sha256": code_sha256(data),
        "handler": HANDLER,
        "runtime": RUNTIME,
    }
    storage.write_bytes(shipped["zip_uri"], data)
    storage.write_bytes(record, storage.dump_json(shipped))
    return shipped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spark_jobs lambda_package", description=__doc__.split("\n")[0]
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="write the zip here")
    where.add_argument(
        "--storage-root",
        type=argument("storage root"),
        help="upload under <root>/lambda/<digest>/ and print its URI",
    )
    parser.add_argument(
        "--find", action="store_true", help="with --storage-root: print the shipped package, never build"
    )
    where.add_argument(
        "--image-context",
        type=Path,
        help="write docker/lambda.Dockerfile's inputs here: the locked requirements and the sources",
    )
    args = parser.parse_args(argv)
    if args.find and not args.storage_root:
        parser.error("--find needs --storage-root")

    def command() -> None:
        if args.image_context:
            reqs = args.image_context / "requirements.txt"
            reqs.parent.mkdir(parents=True, exist_ok=True)
            reqs.write_text(environment.requirements(group=GROUP))
            for name, data in package.source_files(ENTRY).items():
                (args.image_context / name).parent.mkdir(parents=True, exist_ok=True)
                (args.image_context / name).write_bytes(data)
            print(json.dumps({"image_context": str(args.image_context)}))
        elif args.out:
            data = build()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_bytes(data)
            print(json.dumps({"zip": str(args.out), "bytes": len(data), "code_sha256": code_sha256(data)}))
        else:
            print(LambdaPackage(**(find if args.find else ship)(args.storage_root)).show())

    return run_cli(command, also=(OSError,))
