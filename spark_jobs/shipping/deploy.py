"""Deploy aws/template.yaml as `aws cloudformation deploy` does: `python -m spark_jobs deploy`.

CreateStack, or UpdateStack if the stack exists, with the SAM transform run by CloudFormation
(CAPABILITY_AUTO_EXPAND) and named IAM roles (CAPABILITY_NAMED_IAM); then the wait until the stack
is complete, and its outputs (the Airflow Variables) printed as JSON. With `--code-from ROOT`,
CodeKey is the Lambda package `make ship` uploaded under that storage root for this code: the
function, its `live` alias and the HTTP API are deployed too. `make deploy` runs it twice, with
`make ship` in between (docs/aws.md); with AWS_ENDPOINT_URL set to the emulator it deploys there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from spark_jobs.shipping import lambda_package

CAPABILITIES = ["CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
WAIT = {"WaiterConfig": {"Delay": 5, "MaxAttempts": 360}}  # up to 30 minutes


class DeployError(RuntimeError):
    """CloudFormation refused or rolled back the stack: its reason."""


def deploy(template: str, stack_name: str, parameters: Mapping[str, str], cfn: Any = None) -> dict[str, str]:
    """Create or update the stack; wait for it; return its outputs (OutputKey -> value). On an
    update, a parameter not given keeps its value (as `aws cloudformation deploy` does): a
    deployment without CodeKey must not delete the function a deployment with it made."""
    import botocore.session
    from botocore.exceptions import ClientError, WaiterError

    cfn = cfn or botocore.session.get_session().create_client("cloudformation")
    try:
        (existing,) = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" not in str(exc):
            raise
        existing = None
    if existing is not None and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        raise DeployError(
            f"stack {stack_name} failed to create and was rolled back: delete it "
            f"(aws cloudformation delete-stack --stack-name {stack_name}) and deploy again"
        )
    given = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    kept = [
        {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
        for p in (existing or {}).get("Parameters", [])
        if p["ParameterKey"] not in parameters
    ]
    request = {
        "StackName": stack_name,
        "TemplateBody": template,
        "Parameters": given + kept,
        "Capabilities": CAPABILITIES,
    }
    try:
        if existing is not None:
            cfn.update_stack(**request)
        else:
            cfn.create_stack(**request)
        cfn.get_waiter("stack_update_complete" if existing else "stack_create_complete").wait(
            StackName=stack_name, **WAIT
        )
    except ClientError as exc:
        if "No updates are to be performed" not in str(exc):
            raise DeployError(f"stack {stack_name}: {exc.response['Error']['Message']}") from None
    except WaiterError:
        raise DeployError(f"stack {stack_name} did not complete: {_failure(cfn, stack_name)}") from None
    (stack,) = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _failure(cfn: Any, stack_name: str) -> str:
    """Why the stack failed: its resources' first failure, as the console's Events tab shows it."""
    events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
    failed = [e for e in events if e["ResourceStatus"].endswith("_FAILED")]
    if not failed:
        (stack,) = cfn.describe_stacks(StackName=stack_name)["Stacks"]
        return f"{stack['StackStatus']} {stack.get('StackStatusReason', '')}".strip()
    first = failed[-1]  # events come newest first
    return f"{first['LogicalResourceId']} ({first['ResourceType']}): {first.get('ResourceStatusReason', '')}"


def code_key(storage_root: str, bucket: str) -> str:
    """The key, in the storage bucket, of the Lambda package shipped for this code."""
    zip_uri = lambda_package.find(storage_root)["zip_uri"]
    prefix = f"s3://{bucket}/"
    if not zip_uri.startswith(prefix):
        raise DeployError(f"the Lambda package {zip_uri} is not in the stack's bucket {bucket}")
    return zip_uri.removeprefix(prefix)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark_jobs deploy", description=__doc__.split("\n")[0])
    parser.add_argument("--template", type=Path, default=Path("aws/template.yaml"))
    parser.add_argument("--stack-name", default="ml-scaling")
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template parameter (repeatable)",
    )
    parser.add_argument(
        "--code-from",
        metavar="STORAGE_ROOT",
        help="set CodeKey to the Lambda package `make ship` uploaded under this storage root",
    )
    args = parser.parse_args(argv)
    parameters: dict[str, str] = {}
    for spec in args.parameter:
        name, sep, value = spec.partition("=")
        if not sep or not name:
            parser.error(f"--parameter takes NAME=VALUE, not {spec!r}")
        parameters[name] = value
    try:
        if args.code_from:
            if "StorageBucketName" not in parameters:
                parser.error("--code-from needs --parameter StorageBucketName=BUCKET")
            parameters["CodeKey"] = code_key(args.code_from, parameters["StorageBucketName"])
        outputs = deploy(args.template.read_text(), args.stack_name, parameters)
    except (DeployError, lambda_package.NotShippedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(outputs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
