"""Spot predictions over HTTP under load: `make serve`'s road, measured; prints one JSON document.

A fresh emulator on 127.0.0.1 (its own process, as `make serve` runs it) serves the real
spot-predictions package behind its `live` alias and an HTTP API (`POST /predict`, payload format
2.0). `http`: `--requests` POSTs of one record each (10,000 by default) from `--concurrency`
threads (8), each on its own connection; latency percentiles, throughput and every non-200 answer
by status. `direct`: the same record through boto3's `invoke` on the alias, one at a time, and
`http_sequential` the same through HTTP, to show what API Gateway's road adds. Loopback only,
and bounded: at most 100,000 requests.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from tests.conftest import bank_records, function_request, handmade_version  # noqa: E402

SEQUENTIAL_CALLS = 300


def percentiles(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)

    return {"p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "max_ms": round(ordered[-1], 2)}


def post(url: str, body: bytes) -> tuple[int, float]:
    parts = urlsplit(url)
    started = time.perf_counter()
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request("POST", parts.path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status, (time.perf_counter() - started) * 1000
    finally:
        connection.close()


def load(url: str, body: bytes, requests: int, concurrency: int) -> dict[str, object]:
    times: list[float] = []
    statuses: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    lock = threading.Lock()
    left = iter(range(requests))

    def worker() -> None:
        while True:
            with lock:
                if next(left, None) is None:
                    return
            try:
                status, took = post(url, body)
            except OSError as exc:
                with lock:
                    failures[type(exc).__name__] += 1
                continue
            with lock:
                statuses[status] += 1
                times.append(took)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {
        "requests": requests,
        "concurrency": concurrency,
        "wall_s": round(wall, 2),
        "requests_per_s": round(requests / wall, 1),
        **percentiles(times),
        "ok": statuses.get(200, 0),
        "errors": {str(k): v for k, v in sorted(statuses.items()) if k != 200} | dict(failures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if not 1 <= args.requests <= 100_000 or not 1 <= args.concurrency <= 64:
        parser.error("--requests is 1 to 100,000 and --concurrency 1 to 64")

    from local_cloud.airflow.offline import LAMBDA_ROLE
    from local_cloud.aws import apigateway
    from local_cloud.process import running_emulator
    from local_cloud.serve import ALIAS, ROUTE, create_http_api
    from local_cloud.server import client
    from spark_jobs.shipping import lambda_package

    with tempfile.TemporaryDirectory() as tmp:
        root = str(handmade_version(Path(tmp) / "root").root)
        with running_emulator(Path(tmp), [], [LAMBDA_ROLE]) as endpoint:
            lam = client(endpoint, "lambda")
            env = {"ML_STORAGE_ROOT": root, "ML_MODEL_NAME": "bank-marketing"}
            name = lam.create_function(**function_request(lambda_package.build(), env))["FunctionName"]
            lam.get_waiter("function_active_v2").wait(FunctionName=name)
            version = lam.publish_version(FunctionName=name)["Version"]
            lam.create_alias(FunctionName=name, Name=ALIAS, FunctionVersion=version)
            url = apigateway.url(endpoint, create_http_api(lam, client(endpoint, "apigatewayv2"), name))
            url += ROUTE.split(" ")[1]
            body = json.dumps({"records": bank_records(1)}).encode()
            assert post(url, body)[0] == 200  # warm: one sandbox, the model loaded

            direct = []
            for _ in range(SEQUENTIAL_CALLS):
                started = time.perf_counter()
                lam.invoke(FunctionName=name, Qualifier=ALIAS, Payload=body)["Payload"].read()
                direct.append((time.perf_counter() - started) * 1000)
            sequential = [post(url, body)[1] for _ in range(SEQUENTIAL_CALLS)]
            report = {
                "http": load(url, body, args.requests, args.concurrency),
                "http_sequential": {"calls": SEQUENTIAL_CALLS, **percentiles(sequential)},
                "direct_invoke": {"calls": SEQUENTIAL_CALLS, **percentiles(direct)},
                "http_minus_direct_p50_ms": round(
                    statistics.median(sequential) - statistics.median(direct), 2
                ),
            }
    print(json.dumps({"bench": "http_api", **report}, indent=1))


if __name__ == "__main__":
    main()
