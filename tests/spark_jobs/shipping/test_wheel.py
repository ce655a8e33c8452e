"""The project builds as one wheel: the job package alone, importable from it without the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from spark_jobs.shipping.environment import uv
from tests.conftest import ROOT


def test_the_wheel_is_the_job_package_and_serving_imports_from_it_alone(tmp_path):
    subprocess.run(
        [uv(), "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)], check=True, capture_output=True
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    # Every module of the package, by stage, and nothing else of the checkout (emulator, DAGs, tests).
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "spark_jobs").rglob("*.py")}
    assert {n for n in names if not n.startswith("ml_scaling-") and not n.endswith("/")} == sources
    assert {"spark_jobs/serving/lambda_handler.py", "spark_jobs/interface.py"} <= sources
    # Imported from the wheel (a zip on sys.path), in a folder far from the checkout.
    code = (
        f"import sys; sys.path.insert(0, {str(wheel)!r}); import spark_jobs.serving.lambda_handler as h; "
        "import spark_jobs.interface; print(h.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().startswith(str(wheel)), out.stdout
