"""Spot-prediction latency of the Lambda handler; prints one JSON document.

`cold_init_ms`: a fresh interpreter importing the handler and loading the model (manifest,
spec and portable model, checksums verified), what a new Lambda container pays before its
first answer; the median of several fresh processes. `warm_*`: the handler called again in a
warm container, for 1 and 1,000 records (p50 and p99 of many calls). `emulator_roundtrip_ms`:
one record through boto3 invoke, the emulator and awslambdaric, for scale (HTTP included).
Goals: cold init under 1 s, warm p50 under 2 ms for one record.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from tests.conftest import bank_records, function_request, handmade_version  # noqa: E402

COLD_RUNS = 7
WARM_CALLS = {1: 2000, 1000: 50}

_COLD = """
import time
started = time.perf_counter()
from spark_jobs.serving import lambda_handler
lambda_handler.predictor()
print((time.perf_counter() - started) * 1000)
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cold_init(env: dict[str, str]) -> float:
    times = []
    for _ in range(COLD_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", _COLD], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout.strip()))
    return statistics.median(times[1:])  # the first run also fills the OS file cache


def warm(n: int, calls: int) -> dict[str, float]:
    from spark_jobs.serving import lambda_handler

    event = {"records": bank_records(1) * n}
    lambda_handler.handler(event)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        lambda_handler.handler(event)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(percentile(times, 0.5), 3), "p99_ms": round(percentile(times, 0.99), 3)}


def emulator_roundtrip(root: str, spot_zip: bytes) -> float:
    from local_cloud.airflow.offline import LAMBDA_ROLE
    from local_cloud.server import client, serve

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    emulator = serve(0, None, roles=[LAMBDA_ROLE])
    try:
        lam = client(emulator.endpoint, "lambda")
        env = {"ML_STORAGE_ROOT": root, "ML_MODEL_NAME": "bank-marketing"}
        lam.create_function(**function_request(spot_zip, env, name="bench"))
        payload = json.dumps({"records": bank_records(1)})
        lam.invoke(FunctionName="bench", Payload=payload)
        times = []
        for _ in range(200):
            started = time.perf_counter()
            lam.invoke(FunctionName="bench", Payload=payload)["Payload"].read()
            times.append((time.perf_counter() - started) * 1000)
        return round(statistics.median(times), 2)
    finally:
        emulator.shutdown()


def main() -> None:
    from spark_jobs.shipping import lambda_package

    with tempfile.TemporaryDirectory() as tmp:
        root = str(handmade_version(Path(tmp) / "root").root)
        env = os.environ | {
            "ML_STORAGE_ROOT": root,
            "ML_MODEL_NAME": "bank-marketing",
        }
        os.environ.update({"ML_STORAGE_ROOT": root, "ML_MODEL_NAME": "bank-marketing"})
        report = {
            "cold_init_ms": round(cold_init(env), 1),
            "warm_1_record": warm(1, WARM_CALLS[1]),
            "warm_1000_records": warm(1000, WARM_CALLS[1000]),
            "emulator_roundtrip_ms": emulator_roundtrip(root, lambda_package.build()),
            "goals": {"cold_init_ms": 1000, "warm_1_record_p50_ms": 2},
        }
    print(json.dumps({"bench": "lambda", **report}, indent=1))


if __name__ == "__main__":
    main()
