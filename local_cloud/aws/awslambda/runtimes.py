"""The Lambda runtimes the emulator runs: `python -m local_cloud.aws.awslambda.runtimes [RUNTIME ...]`.

A function's runtime (`python3.12`) decides the interpreter its handler runs on, as on Lambda: a
zip built for another Python fails to import its compiled modules. Each runtime is a folder under
build/lambda-runtimes/: the path of an interpreter of that version found on this machine, and what
Lambda's runtime puts beside the function's code (the real runtime interface client, boto3),
installed from the lock for that interpreter. `make run` and `make test` prepare the runtime the project's
function uses (spark_jobs.shipping.lambda_package.RUNTIME); the emulator prepares any other on its first
invocation (a function kept from before an upgrade, say), as AWS runs every supported runtime.
Without Python of that version, or wheels for it in the lock, it says so.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from local_cloud.process import ROOT

RUNTIMES = ROOT / "build" / "lambda-runtimes"
# The dependency group of what Lambda's Python runtime provides (pyproject.toml).
GROUP = "lambda-runtime"
_NAME = re.compile(r"^python(3\.\d+)$")


class RuntimeMissing(RuntimeError):
    """The emulator cannot run this runtime: it was not prepared, or no interpreter exists."""


@dataclass(frozen=True)
class Runtime:
    name: str
    interpreter: str
    # awslambdaric, boto3 and their dependencies, for this interpreter.
    modules: Path


def runtime(name: str, root: Path = RUNTIMES) -> Runtime:
    """A prepared runtime."""
    folder = root / name
    try:
        interpreter = (folder / "interpreter").read_text().strip()
    except FileNotFoundError:
        raise RuntimeMissing(
            f"the emulator has no Lambda runtime {name!r} yet: "
            f"`python -m local_cloud.aws.awslambda.runtimes {name}` prepares it"
        ) from None
    return Runtime(name, interpreter, folder / "modules")


def prepare(name: str, root: Path = RUNTIMES) -> Runtime:
    """Prepare a runtime once per lock file (written aside, then moved into place)."""
    from spark_jobs.errors import JobError
    from spark_jobs.shipping import environment

    match = _NAME.match(name)
    if not match:
        raise RuntimeMissing(f"{name!r}: the emulator runs Python runtimes only (python3.N)")
    folder, stamp = root / name, hashlib.sha256((ROOT / "uv.lock").read_bytes()).hexdigest()
    if (folder / "lock.sha256").is_file() and (folder / "lock.sha256").read_text() == stamp:
        found = runtime(name, root)
        if Path(found.interpreter).exists():
            return found
    interpreter = find_interpreter(match[1])
    partial = root / f".{name}.{uuid.uuid4().hex}"
    try:
        try:
            reqs = environment.requirements(group=GROUP)
            environment.install(reqs, ["--python", interpreter, "--target", str(partial / "modules")])
        except JobError as exc:  # the lock has no wheels for that Python, or uv found no index
            raise RuntimeMissing(f"preparing Lambda runtime {name} failed: {exc}") from None
        (partial / "interpreter").write_text(interpreter + "\n")
        (partial / "lock.sha256").write_text(stamp)
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return runtime(name, root)


def find_interpreter(version: str) -> str:
    """An interpreter of `version` (3.12): this one, python3.12 on PATH, pyenv's, /usr's, or one
    that uv installed (`uv python install 3.12`, as docker/airflow.Dockerfile does)."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    installed = sorted(
        pyenv.glob(f"{version}.*/bin/python{version}"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parts[-3])],
        reverse=True,
    )
    candidates = [
        shutil.which(f"python{version}"),
        *installed,
        f"/usr/bin/python{version}",
        _uv_python(version),
    ]
    for candidate in filter(None, candidates):
        found = _real_interpreter(str(candidate), version)
        if found:
            return found
    raise RuntimeMissing(
        f"Lambda's python{version} runtime runs handlers on Python {version}, and none was found "
        f"(python{version} on PATH, pyenv, /usr/bin, uv): install Python {version} (apt, pyenv or "
        f"`uv python install {version}`)"
    )


def _uv_python(version: str) -> str | None:
    from spark_jobs.shipping.environment import uv

    try:
        out = subprocess.run(
            [uv(), "python", "find", "--managed-python", version],
            capture_output=True,
            text=True,
            timeout=60,
            env=os.environ | {"UV_PYTHON_DOWNLOADS": "never"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _real_interpreter(candidate: str, version: str) -> str | None:
    """The interpreter's own path if `candidate` runs Python `version` (a pyenv shim answers only
    in a shell that selects that version: the sandbox needs the binary behind it)."""
    probe = "import sys; print('%d.%d' % sys.version_info[:2], sys.executable)"
    try:
        out = subprocess.run([candidate, "-I", "-c", probe], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    answer = out.stdout.split(maxsplit=1) if out.returncode == 0 else []
    return answer[1].strip() if len(answer) == 2 and answer[0] == version else None


def main(argv: Sequence[str] | None = None) -> int:
    from spark_jobs.shipping.lambda_package import RUNTIME

    parser = argparse.ArgumentParser(
        prog="python -m local_cloud.aws.awslambda.runtimes", description=__doc__.split("\n")[0]
    )
    parser.add_argument("runtimes", nargs="*", default=[RUNTIME], help=f"default: {RUNTIME}")
    args = parser.parse_args(argv)
    try:
        for name in args.runtimes:
            found = prepare(name)
            print(f"Lambda runtime {found.name}: {found.interpreter}")
    except RuntimeMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
