"""Ship the job code: `python -m spark_jobs.package --storage-root URI` prints the artefact URIs.

Builds a zip of this package (for spark-submit --py-files) and the spark-submit entry point,
and writes both under <root>/code/<source digest>/, so a code version is uploaded once and
every run names exactly the code it ran. Prints one JSON object: code_uri, entrypoint_uri,
code_digest.
"""

from __future__ import annotations

import argparse
import importlib.resources
import io
import json
import sys
import zipfile
from collections.abc import Sequence

import spark_jobs
from spark_jobs import storage
from spark_jobs.errors import JobError

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip entries get fixed times so equal code gives equal bytes


def source_files() -> dict[str, bytes]:
    """The package's Python sources by archive name, sorted."""
    package = importlib.resources.files(spark_jobs)
    return {
        f"spark_jobs/{entry.name}": entry.read_bytes()
        for entry in sorted(package.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".py")
    }


def build_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def ship(storage_root: str) -> dict[str, str]:
    from spark_jobs.train import code_version

    digest = code_version()["source_sha256"][:16]
    folder = storage.join(storage.normalize(storage_root), "code", digest)
    files = source_files()
    code_uri, entry_uri = storage.join(folder, "spark_jobs.zip"), storage.join(folder, "submit.py")
    if not storage.exists(entry_uri):  # the entry point is written last: its presence means complete
        storage.write_bytes(code_uri, build_zip(files))
        storage.write_bytes(entry_uri, files["spark_jobs/submit.py"])
    return {"code_uri": code_uri, "entrypoint_uri": entry_uri, "code_digest": digest}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark_jobs.package", description=__doc__.split("\n")[0])
    parser.add_argument("--storage-root", default="storage", help="storage root URI (default: ./storage)")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(ship(args.storage_root)))
    except (JobError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
