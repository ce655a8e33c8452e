"""The Lambda package: complete for Lambda's platform, nothing heavy, the same bytes every build."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile

import pytest

from local_cloud.aws.awslambda.runtimes import find_interpreter
from spark_jobs.shipping import lambda_package
from tests.conftest import ROOT


def test_the_zip_holds_the_handler_and_its_locked_dependencies_for_lambdas_platform(spot_zip):
    names = zipfile.ZipFile(io.BytesIO(spot_zip)).namelist()
    assert "spark_jobs/serving/lambda_handler.py" in names
    tops = {n.split("/")[0] for n in names}
    assert {"pydantic", "pydantic_core", "yaml", "fsspec"} <= tops
    assert not tops & {"pyspark", "pandas", "numpy", "sklearn", "pyarrow", "s3fs", "bin"}
    # Of the job package, only what serving imports (at any depth, in functions too): everything a
    # fresh interpreter loads with the handler, and nothing of training, scoring, data or shipping.
    listing = (
        "import sys, spark_jobs.serving.lambda_handler; print(*[m for m in sys.modules if 'spark_jobs' in m])"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", listing], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    shipped = {
        n.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for n in names
        if n.startswith("spark_jobs/")
    }
    assert "spark_jobs.serving.lambda_handler" in loaded and loaded <= shipped
    stages = {m.split(".")[1] for m in shipped if m.count(".") >= 2}
    assert stages == {"serving", "registry"}, stages
    assert not shipped & {"spark_jobs.session", "spark_jobs.__main__"}  # Spark's session, the CLI
    # A supported runtime, python3.12 on Amazon Linux 2023 (python3.11 on Amazon Linux 2 is on the
    # deprecation path), and compiled modules for it: x86_64 Linux, CPython 3.12.
    assert lambda_package.RUNTIME == "python3.12"
    compiled = [n for n in names if n.endswith(".so")]
    assert compiled and all("cpython-312-x86_64-linux-gnu" in n for n in compiled)
    assert len(spot_zip) < 10 * 1024 * 1024  # Lambda takes 50 MB zipped, 250 MB unzipped


def test_the_same_sources_and_lock_give_the_same_bytes(spot_zip):
    again = lambda_package.build()
    assert lambda_package.code_sha256(again) == lambda_package.code_sha256(spot_zip)


def test_the_handler_imports_from_the_zip_alone(spot_zip, tmp_path):
    zipfile.ZipFile(io.BytesIO(spot_zip)).extractall(tmp_path)
    # -I -S: no site-packages, no project folder; only the zip's contents and the standard library.
    code = f"import sys; sys.path[:0] = [{str(tmp_path)!r}]; import {lambda_package.ENTRY}; print('ok')"
    python = find_interpreter(lambda_package.PYTHON_VERSION)  # the runtime's, not this project's
    out = subprocess.run([python, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_the_container_image_uses_lambdas_base_and_the_same_handler(spot_zip, tmp_path):
    dockerfile = (ROOT / "docker" / "lambda.Dockerfile").read_text()
    assert re.search(
        rf"^FROM public\.ecr\.aws/lambda/python:{re.escape(lambda_package.PYTHON_VERSION)}$", dockerfile, re.M
    )
    assert f'CMD ["{lambda_package.HANDLER}"]' in dockerfile
    assert "--require-hashes" in dockerfile
    # What the image copies is what `make lambda-image` writes: the zip's requirements and modules.
    context = tmp_path / "lambda"
    assert lambda_package.main(["--image-context", str(context)]) == 0
    reqs = (context / "requirements.txt").read_text()
    assert re.search(r"^pydantic==", reqs, re.M) and "--hash=sha256:" in reqs and "pyspark" not in reqs
    copies = re.findall(r"^COPY build/lambda/(\S+) ", dockerfile, re.M)
    assert copies == ["requirements.txt", "spark_jobs/"]
    written = {p.relative_to(context).as_posix() for p in (context / "spark_jobs").rglob("*.py")}
    zipped = {n for n in zipfile.ZipFile(io.BytesIO(spot_zip)).namelist() if n.startswith("spark_jobs/")}
    assert written == zipped


def test_a_release_finds_the_shipped_package_and_never_builds_it(tmp_path):
    from scaling_platform.jobs import JobFailed
    from scaling_platform.lambda_release import FunctionSettings, release_model

    settings = FunctionSettings(name="f", role_arn="arn:aws:iam::123456789012:role/r")
    # Nothing shipped: the release says how to ship, and writes nothing (no build on the worker).
    with pytest.raises(JobFailed, match=r"make ship STORAGE_ROOT="):
        release_model(None, settings, str(tmp_path), "bank-marketing", "v1")
    assert not (tmp_path / "lambda").exists()
    shipped = lambda_package.ship(str(tmp_path))
    assert lambda_package.find(str(tmp_path)) == shipped


def test_make_ship_uploads_the_lambda_package_with_the_job_code():
    out = subprocess.run(
        ["make", "-n", "--no-print-directory", "ship", "STORAGE_ROOT=s3://bucket/prefix"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    commands = [line for line in out.stdout.splitlines() if "--storage-root s3://bucket/prefix" in line]
    assert any("-m spark_jobs package " in c for c in commands), out.stdout
    assert any("-m spark_jobs lambda_package " in c and "--find" not in c for c in commands), out.stdout
