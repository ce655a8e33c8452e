"""The job's Python environment for `spark-submit --archives ENV.tar.gz#environment`.

Built from the project's lock file, for the cluster's platform rather than this machine's, so the
nodes run exactly the pinned dependencies the tests ran. Spark's own Python (pyspark, py4j) is
left out: the cluster provides it, and a second copy would shadow the cluster's Spark.

Why not venv-pack (what the AWS docs use): its last release is from 2018 and it rewrites the
interpreter link of a Python 3.11 venv to `/usr/bin/python3.113.11`. Packing a venv is a tar
file with three links re-pointed, done here.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from spark_jobs.errors import JobError

PROJECT = Path(__file__).resolve().parents[2]  # the checkout: shipping runs where uv.lock is
PYTHON_VERSION = "3.11"
# Environments built on this machine, by digest: a second storage root, or a fresh offline home,
# uploads the first build (19 s of CPU, 170 MB) instead of building it again.
CACHE = PROJECT / "build" / "job-environments"
# Spark on the cluster provides these.
PROVIDED_BY_SPARK = ("pyspark", "py4j")


@dataclass(frozen=True)
class Target:
    """Where the environment will run: EMR 7 nodes are x86_64 Amazon Linux 2023 (glibc 2.34)
    with Python 3.11 at /usr/bin/python3.11."""

    platform: str = "x86_64-manylinux_2_28"
    python_prefix: str = "/usr"


def requirements(project: Path = PROJECT, group: str | None = None) -> str:
    """Locked dependencies as requirements.txt with the lock's hashes (the install refuses any
    other file): the job package's runtime dependencies without Spark's own (the cluster brings
    them), or one dependency group's."""
    command = [uv(), "export", "--project", str(project), "--locked", "--no-emit-project"]
    command += ["--no-header", "--no-annotate", "--quiet"]
    if group:
        command += ["--only-group", group]
    else:
        command += ["--no-default-groups"]
        for name in PROVIDED_BY_SPARK:
            command += ["--no-emit-package", name]
    return _run(command).stdout


def digest(target: Target, project: Path = PROJECT) -> str:
    """Names an environment without building it (and without uv, so a worker can find one that CI
    shipped): the lock, the target and this packer. The same inputs give the same bytes."""
    lock = project / "uv.lock"
    if not lock.exists():
        raise JobError(f"{lock} not found: the job environment is built from the project's lock file")
    text = hashlib.sha256(lock.read_bytes() + Path(__file__).read_bytes()).hexdigest()
    text += f"\n{target.platform}\n{target.python_prefix}\n{PYTHON_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextlib.contextmanager
def archive(target: Target, cache: Path = CACHE) -> Iterator[Path]:
    """The packed environment for `target`, built once and kept in `cache` under its digest (the
    same digest, the same bytes); one builder at a time, so parallel ships build it once. Where
    `cache` cannot be written (a read-only checkout), built afresh and removed after use."""
    name = f"{digest(target)}.tar.gz"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        lock = (cache / f".{name}.lock").open("w")
    except OSError:
        with tempfile.TemporaryDirectory(prefix="job-env-") as tmp:
            build(requirements(), target, Path(tmp) / name)
            yield Path(tmp) / name
        return
    with contextlib.closing(lock):
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cache / name).exists():
            build(requirements(), target, cache / name)  # written whole, then renamed
    yield cache / name


def build(reqs: str, target: Target, out: Path) -> None:
    """Install `reqs` for `target` into a fresh venv and pack it as a relocatable .tar.gz at `out`."""
    with tempfile.TemporaryDirectory(prefix="job-env-") as tmp:
        venv = Path(tmp) / "env"
        _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
        install(reqs, ["--python", str(venv / "bin" / "python")], target.platform)
        pack(venv, target.python_prefix, out)


def install(
    reqs: str, where: list[str], platform: str | None = None, python_version: str = PYTHON_VERSION
) -> None:
    """Install exactly the hashed wheels in `reqs` (`where`: uv's --python or --target option):
    for another `platform` and Python version, or without one for the interpreter `where` names."""
    with tempfile.TemporaryDirectory(prefix="reqs-") as tmp:
        path = Path(tmp) / "requirements.txt"
        path.write_text(reqs)
        command = [uv(), "pip", "install", "--quiet", *where]
        if platform:
            command += ["--python-platform", platform, "--python-version", python_version]
        command += ["--only-binary", ":all:", "--no-deps", "--require-hashes", "-r", str(path)]
        _run(command)


def pack(venv: Path, python_prefix: str, out: Path) -> None:
    """Tar the venv with its interpreter links pointing at `python_prefix`; same input, same bytes."""
    interpreter = f"{python_prefix.rstrip('/')}/bin/python{PYTHON_VERSION}"
    links = {
        f"bin/python{PYTHON_VERSION}": interpreter,
        "bin/python3": f"python{PYTHON_VERSION}",
        "bin/python": f"python{PYTHON_VERSION}",
    }
    config = f"home = {python_prefix.rstrip('/')}/bin\ninclude-system-site-packages = false\n"
    config += f"version = {PYTHON_VERSION}\n"
    partial = out.with_name(f".{out.name}.partial")
    with open(partial, "wb") as raw:
        with gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name, target in links.items():
                    tar.addfile(_entry(name, tarfile.SYMTYPE, linkname=target))
                tar.addfile(_entry("pyvenv.cfg", size=len(config)), io.BytesIO(config.encode()))
                for path in sorted(venv.rglob("*")):
                    name = path.relative_to(venv).as_posix()
                    # bin/ holds only the interpreter links: Spark runs nothing else, and the
                    # scripts' shebangs name the build folder.
                    if name.startswith("bin/") or name == "pyvenv.cfg" or "__pycache__" in name:
                        continue
                    if path.is_symlink():
                        tar.addfile(_entry(name, tarfile.SYMTYPE, linkname=os.readlink(path)))
                    elif path.is_dir():
                        tar.addfile(_entry(name, tarfile.DIRTYPE, mode=0o755))
                    elif name.endswith(".dist-info/RECORD"):
                        record = _without_scripts(path.read_bytes())
                        tar.addfile(_entry(name, size=len(record)), io.BytesIO(record))
                    else:
                        mode = 0o755 if os.access(path, os.X_OK) else 0o644
                        with path.open("rb") as fh:
                            tar.addfile(_entry(name, size=path.stat().st_size, mode=mode), fh)
    os.replace(partial, out)


def _without_scripts(record: bytes) -> bytes:
    """A wheel's RECORD without the bin/ scripts left out of the archive (their hashes name the
    build folder)."""
    return b"".join(line for line in record.splitlines(keepends=True) if b"/bin/" not in line.split(b",")[0])


def _entry(
    name: str, kind: bytes = tarfile.REGTYPE, *, size: int = 0, mode: int = 0o644, linkname: str = ""
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode, info.linkname = kind, size, mode, linkname
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if kind == tarfile.SYMTYPE:
        info.mode = 0o777
    return info


def uv() -> str:
    """The uv pinned in the lock file (a dependency of the orchestration group)."""
    try:
        from uv import find_uv_bin
    except ImportError:
        raise JobError(
            "building the job environment needs uv: install the project's airflow dependency group"
        ) from None
    return str(find_uv_bin())


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise JobError(f"{Path(command[0]).name} {command[1]} failed: {proc.stderr.strip()[-2000:]}")
    return proc
