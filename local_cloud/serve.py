"""Spot predictions over HTTP, offline: `make serve` (`python -m local_cloud.serve`).

Starts the emulator with what `make run` kept (the released function and its `live` alias, the
registry in S3), puts an API Gateway HTTP API in front of the alias as on AWS (route
`POST /predict`, a Lambda proxy integration with payload format 2.0, the `$default` stage, and
the function's permission for API Gateway to invoke the alias), prints the URL and a `curl` that
scores a record, and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from local_cloud.airflow.offline import DEFAULT_SPEC, DEFAULT_STORAGE_ROOT, offline_emulator
from local_cloud.aws import apigateway
from local_cloud.process import ROOT, StartupError
from local_cloud.run import example_records
from local_cloud.server import ACCOUNT, REGION, client

if TYPE_CHECKING:
    from mypy_boto3_apigatewayv2 import ApiGatewayV2Client
    from mypy_boto3_lambda import LambdaClient

# Variable ml_lambda_function_prefix's default and the alias releases move
# (scaling_platform.lambda_release: FUNCTION_PREFIX, ALIAS; a test keeps them equal).
FUNCTION_PREFIX = "ml-scaling-spot-predictions"
ALIAS = "live"
ROUTE = "POST /predict"


def create_http_api(lam: LambdaClient, apis: ApiGatewayV2Client, function: str, alias: str = ALIAS) -> str:
    """An HTTP API whose `POST /predict` invokes the function's alias; its id."""
    alias_arn = lam.get_alias(FunctionName=function, Name=alias)["AliasArn"]
    api_id = apis.create_api(Name=f"{function}-http", ProtocolType="HTTP")["ApiId"]
    integration = apis.create_integration(
        ApiId=api_id,
        IntegrationType="AWS_PROXY",
        IntegrationUri=alias_arn,
        PayloadFormatVersion="2.0",
        TimeoutInMillis=apigateway.INTEGRATION_TIMEOUT_S * 1000,
    )
    apis.create_route(ApiId=api_id, RouteKey=ROUTE, Target=f"integrations/{integration['IntegrationId']}")
    apis.create_stage(ApiId=api_id, StageName="$default", AutoDeploy=True)
    method, path = ROUTE.split(" ")
    lam.add_permission(
        FunctionName=function,
        Qualifier=alias,
        StatementId=f"http-api-{api_id}",
        Action="lambda:InvokeFunction",
        Principal="apigateway.amazonaws.com",
        SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*/{method}{path}",
    )
    return api_id


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_cloud.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default=str(DEFAULT_SPEC), help="the model's dataset spec (its name)")
    parser.add_argument(
        "--input", default=str(ROOT / "data" / "bank" / "bank-full.csv"), help="for the example"
    )
    parser.add_argument("--storage-root", default=DEFAULT_STORAGE_ROOT, help="where `make run` trained")
    parser.add_argument("--home", type=Path, default=ROOT / ".airflow", help="the emulator's kept state")
    args = parser.parse_args(argv)
    from spark_jobs.spec import load_spec

    function = f"{FUNCTION_PREFIX}-{load_spec(str(ROOT / args.spec)).name}"
    record = example_records(ROOT / args.input, ROOT / args.spec, count=1)
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    bucket = args.storage_root.removeprefix("s3://").split("/")[0] if "://" in args.storage_root else None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with offline_emulator(home, [bucket] if bucket else []) as endpoint:
            lam = client(endpoint, "lambda")
            try:
                api_id = create_http_api(lam, client(endpoint, "apigatewayv2"), function)
            except lam.exceptions.ResourceNotFoundException:
                raise StartupError(
                    f"no function {function} with an alias {ALIAS!r} yet: `make run` trains a model and "
                    "releases it to the function"
                ) from None
            url = apigateway.url(endpoint, api_id) + ROUTE.split(" ")[1]
            body = json.dumps({"records": record})
            print(f"{ROUTE} on {function}:{ALIAS}: {url}", flush=True)
            print("curl -sS -X POST -H 'Content-Type: application/json' -d " + shlex.quote(body) + f" {url}")
            print("Ctrl-C stops it.", flush=True)
            stop.wait()
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
