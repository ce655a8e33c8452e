"""Start the local cloud emulator: `python -m local_cloud.server --port 0 --ready-file F`.

moto's AWS APIs behind botocore request validation, listening on 127.0.0.1 only. Writes its
endpoint URL to the ready file once it answers, and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3

from local_cloud.emr_steps import StepRunner
from local_cloud.validation import RequestValidator

REGION = "us-east-1"
LOOPBACK = "127.0.0.1"


def client(endpoint: str, service: str, **kwargs: Any) -> Any:
    """A boto3 client for one of the emulator's services (moto takes any credentials)."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        **kwargs,
    )


def serve(port: int, journal: Path | None) -> tuple[Any, str]:
    """Start moto's server app behind the request validator on a thread; return it and its URL."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = RequestValidator(DomainDispatcherApplication(create_backend_app), journal)
    server = make_server(LOOPBACK, port, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server, f"http://{LOOPBACK}:{server.server_port}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_cloud.server", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--ready-file", type=Path, help="write the endpoint URL here once serving")
    parser.add_argument("--bucket", action="append", default=[], help="S3 bucket to create (repeatable)")
    parser.add_argument("--spark-master", default="local[2]", help="master for the steps' local Spark")
    parser.add_argument("--journal", type=Path, help="append each validated AWS request here (JSON lines)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)

    server, endpoint = serve(args.port, args.journal)
    s3 = client(endpoint, "s3")
    for bucket in args.bucket:
        s3.create_bucket(Bucket=bucket)

    def put_log(uri: str, data: bytes) -> None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        s3.put_object(Bucket=bucket, Key=key, Body=data)

    runner = StepRunner(put_log, master=args.spark_master)
    runner.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.ready_file:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(endpoint)
        tmp.replace(args.ready_file)
    logging.getLogger("local_cloud").info("serving on %s", endpoint)
    stop.wait()
    runner.stop()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
