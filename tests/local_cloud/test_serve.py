"""`make serve` (python -m local_cloud.serve): the function an earlier run released, behind an HTTP
API, answering the curl it prints."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys

import pytest

from local_cloud.airflow.offline import offline_emulator
from local_cloud.process import ROOT
from local_cloud.serve import ALIAS, FUNCTION_PREFIX
from local_cloud.server import client
from tests.conftest import function_request, handmade_version

pytestmark = [pytest.mark.emulator]


def test_serve_prints_a_curl_that_gets_a_prediction_from_the_released_function(tmp_path, spot_zip):
    home, root = tmp_path / "home", tmp_path / "root"
    handmade_version(root)
    home.mkdir()
    # What `make run` leaves: the model's function, released behind its alias, kept by the emulator.
    with offline_emulator(home, []) as endpoint:
        lam = client(endpoint, "lambda")
        env = {"ML_STORAGE_ROOT": str(root), "ML_MODEL_NAME": "bank-marketing"}
        request = function_request(spot_zip, env) | {"FunctionName": f"{FUNCTION_PREFIX}-bank-marketing"}
        lam.create_function(**request)
        lam.get_waiter("function_active_v2").wait(FunctionName=request["FunctionName"])
        version = lam.publish_version(FunctionName=request["FunctionName"])["Version"]
        lam.create_alias(FunctionName=request["FunctionName"], Name=ALIAS, FunctionVersion=version)

    serve = subprocess.Popen(
        [sys.executable, "-m", "local_cloud.serve", "--home", str(home), "--storage-root", str(root)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stdout is not None
        lines = [serve.stdout.readline() for _ in range(3)]
        assert lines[0].startswith(
            "POST /predict on ml-scaling-spot-predictions-bank-marketing:live: http://"
        ), (
            lines,
            serve.stderr.read() if serve.poll() is not None else "",
        )
        curl = shlex.split(lines[1])
        assert curl[0] == "curl" and curl[-1] == lines[0].split(": ", 1)[1].strip()
        answer = json.loads(
            subprocess.run(curl, capture_output=True, text=True, timeout=60, check=True).stdout
        )
        assert answer["count"] == 1 and answer["model_version"] == "v1"
        assert answer["predictions"][0]["label"] in ("yes", "no")
    finally:
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=60) == 0


def test_serve_without_a_released_function_says_what_to_run(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "local_cloud.serve",
            "--home",
            str(tmp_path / "home"),
            "--storage-root",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert (
        "no function ml-scaling-spot-predictions-bank-marketing with an alias 'live' yet: `make run`"
        in proc.stderr
    )
