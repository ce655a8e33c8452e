"""Ship the job: `python -m spark_jobs package --storage-root URI` prints the artefact URIs.

Builds a zip of this package (for spark-submit --py-files) and the spark-submit entry point
under <root>/code/<source digest>/, and the packed Python environment (for --archives) under
<root>/environments/<lock digest>/. Each is built and uploaded once per digest, so every run
names exactly the code and dependencies it ran. Prints one JSON object: code_uri,
entrypoint_uri, code_digest, environment_uri, environment_digest.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.resources
import io
import json
import subprocess
import zipfile
from collections.abc import Sequence
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import spark_jobs
from spark_jobs import storage
from spark_jobs.errors import run_cli
from spark_jobs.interface import Shipped
from spark_jobs.locations import storage_root_option
from spark_jobs.shipping import environment

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip entries get fixed times so equal code gives equal bytes


def source_files(entry: str | None = None) -> dict[str, bytes]:
    """The package's Python sources by archive name (`spark_jobs/serving/predict.py`), sorted: all
    of them, or only the modules that module `entry` imports (imported_modules)."""
    sources = _sources()
    wanted = imported_modules(entry, sources) if entry else set(sources)
    return {_archive_name(name, sources[name]): sources[name].read_bytes() for name in sorted(wanted)}


def imported_modules(entry: str, sources: dict[str, Traversable] | None = None) -> set[str]:
    """The package's modules (dotted names) `entry` needs: itself, the packages around each, and
    every module of the package it imports, at any depth, read from the code (an import inside a
    function counts: it runs later, where only the shipped modules are)."""
    sources = sources or _sources()
    found: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in found or name not in sources:
            continue
        found.add(name)
        todo += [name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)]  # its packages
        for node in ast.walk(ast.parse(sources[name].read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                todo += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
    return found


def _sources() -> dict[str, Traversable]:
    """Every module of the package by dotted name (a package by its own name), read through
    importlib.resources: on EMR the package is imported from the shipped zip, not a folder."""
    found: dict[str, Traversable] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for item in folder.iterdir():
            if item.is_dir() and item.joinpath("__init__.py").is_file():
                walk(item, f"{prefix}.{item.name}")
            elif item.name == "__init__.py":
                found[prefix] = item
            elif item.name.endswith(".py"):
                found[f"{prefix}.{item.name[:-3]}"] = item

    walk(importlib.resources.files(spark_jobs), "spark_jobs")
    return found


def _archive_name(module: str, source: Traversable) -> str:
    folder = module if source.name == "__init__.py" else module.rsplit(".", 1)[0]
    return f"{folder.replace('.', '/')}/{source.name}"


def source_digest(files: dict[str, bytes]) -> str:
    """sha256 over the sources' names and bytes: identifies the code where there is no git."""
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(name.encode() + b"\0" + data)
    return digest.hexdigest()


def code_version() -> dict[str, Any]:
    """Package version, git commit when there is a checkout, and the digest of the job sources."""
    commit = None
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        commit = out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "package": spark_jobs.__version__,
        "git_commit": commit,
        "source_sha256": source_digest(source_files()),
    }


def build_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, _FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def ship(storage_root: str, target: environment.Target | None = None) -> dict[str, str]:
    root = storage.normalize(storage_root)
    files = source_files()
    digest = source_digest(files)[:16]
    folder = storage.join(root, "code", digest)
    code_uri, entry_uri = storage.join(folder, "spark_jobs.zip"), storage.join(folder, "submit.py")
    if not storage.exists(entry_uri):  # the entry point is written last: its presence means complete
        storage.write_bytes(code_uri, build_zip(files))
        storage.write_bytes(entry_uri, files["spark_jobs/shipping/submit.py"])
    return {"code_uri": code_uri, "entrypoint_uri": entry_uri, "code_digest": digest} | ship_environment(
        root, target or environment.Target()
    )


def ship_environment(root: str, target: environment.Target) -> dict[str, str]:
    digest = environment.digest(target)
    env_uri = storage.join(root, "environments", digest, "environment.tar.gz")
    if not storage.exists(env_uri):  # uploaded whole, so its presence means complete
        with environment.archive(target) as packed:
            storage.put_file(str(packed), env_uri)
    return {"environment_uri": env_uri, "environment_digest": digest}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark_jobs package", description=__doc__.split("\n")[0])
    storage_root_option(parser)
    parser.add_argument(
        "--platform", default=environment.Target.platform, help="wheel platform of the cluster nodes"
    )
    parser.add_argument(
        "--python-prefix",
        default=environment.Target.python_prefix,
        help="where the nodes have bin/python3.11 (default: /usr, as on EMR 7)",
    )
    parser.add_argument(
        "--image-requirements",
        type=Path,
        help="only write the job image's locked requirements (the pod group; docker/jobs.Dockerfile)",
    )
    args = parser.parse_args(argv)
    target = environment.Target(args.platform, args.python_prefix)

    def command() -> None:
        if args.image_requirements:
            args.image_requirements.parent.mkdir(parents=True, exist_ok=True)
            args.image_requirements.write_text(environment.requirements(group="pod"))
            print(json.dumps({"requirements": str(args.image_requirements)}))
        else:
            print(Shipped(**ship(args.storage_root, target)).show())

    return run_cli(command, also=(OSError,))
