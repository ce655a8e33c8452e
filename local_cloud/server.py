"""Start the local cloud emulator: `python -m local_cloud.server --port 0 --ready-file F`.

moto's AWS APIs behind botocore request validation, listening on 127.0.0.1 only: EMR steps run
with local Spark, Lambda functions run in sandboxes through the real runtime client, and pods
sent to its Kubernetes API run as containers (or host processes) of the images named by `--image`. Writes its
endpoint URL to the ready file once it answers, and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3

from local_cloud.aws.apigateway import HttpApis
from local_cloud.aws.awslambda.sandbox import SandboxPool
from local_cloud.aws.awslambda.service import LambdaInvocations
from local_cloud.aws.emr import network as emr_network
from local_cloud.aws.emr.rules import run_job_flow_error
from local_cloud.aws.emr.steps import StepRunner
from local_cloud.aws.iam import (
    INSTANCE_PROFILE_KEY,
    LAMBDA_KEY,
    POD_KEY,
    POLICIES,
    IamEnforcer,
    credentials,
    offline_principals,
)
from local_cloud.aws.s3 import S3State
from local_cloud.aws.state import DurableState
from local_cloud.aws.validation import RequestValidator
from local_cloud.kubernetes import manifests
from local_cloud.kubernetes.api import KubernetesApi
from local_cloud.kubernetes.containers import find_engine
from local_cloud.lifetime import watch_parent
from local_cloud.process import ROOT
from spark_jobs.errors import exit_now

if TYPE_CHECKING:
    from mypy_boto3_apigatewayv2 import ApiGatewayV2Client
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_emr import EMRClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
LOOPBACK = "127.0.0.1"
# What every client of the emulator uses (moto takes any credentials): SDK environment variables.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
_LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@overload
def client(
    endpoint: str, service: Literal["apigatewayv2"], keys: Mapping[str, str] = ..., **kwargs: Any
) -> ApiGatewayV2Client: ...
@overload
def client(
    endpoint: str, service: Literal["ec2"], keys: Mapping[str, str] = ..., **kwargs: Any
) -> EC2Client: ...
@overload
def client(
    endpoint: str, service: Literal["emr"], keys: Mapping[str, str] = ..., **kwargs: Any
) -> EMRClient: ...
@overload
def client(
    endpoint: str, service: Literal["lambda"], keys: Mapping[str, str] = ..., **kwargs: Any
) -> LambdaClient: ...
@overload
def client(
    endpoint: str, service: Literal["s3"], keys: Mapping[str, str] = ..., **kwargs: Any
) -> S3Client: ...
@overload
def client(endpoint: str, service: str, keys: Mapping[str, str] = ..., **kwargs: Any) -> Any: ...
def client(endpoint: str, service: str, keys: Mapping[str, str] = CREDENTIALS, **kwargs: Any) -> Any:
    """A boto3 client for one of the emulator's services, signing with `keys` (the
    administrator's by default; local_cloud.aws.iam.credentials(...) for a workload's); typed by
    boto3-stubs for the services named above."""
    make: Callable[..., Any] = boto3.client  # the overloads above give the caller its type
    return make(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
        **kwargs,
    )


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


@dataclass
class Emulator:
    server: Any
    endpoint: str
    sandboxes: SandboxPool
    kubernetes: KubernetesApi | None = None

    def shutdown(self) -> None:
        self.sandboxes.stop()
        if self.kubernetes is not None:
            self.kubernetes.shutdown()  # no pod's processes outlive the emulator
        self.server.shutdown()


def serve(
    port: int,
    journal: Path | None,
    workdir: Path | None = None,
    state_dir: Path | None = None,
    roles: Sequence[str] = (),
    images: Mapping[str, Path] = {},  # noqa: B006 (read only)
    pods_dir: Path | None = None,
    kube_journal: Path | None = None,
    host: str = LOOPBACK,
    iam_buckets: tuple[str, str] | None = None,
    policies: Path = POLICIES,
    pod_runtime: str = "auto",
    stack: Mapping[str, str] | None = None,
) -> Emulator:
    """Start moto's app behind the Lambda invoker and the request validator on a thread, and the
    Kubernetes API in front of them (its requests never reach botocore's validation).

    `workdir` holds the Lambda sandboxes' code and logs (a temporary folder if None); `roles` are
    IAM roles Lambda may assume (provisioned outside this project on AWS); with a `state_dir`,
    Lambda functions, versions and aliases outlive this emulator (local_cloud.aws.state). `images`
    maps image repository names to Dockerfiles (built from the repository root); each pod's logs
    and volumes go under `pods_dir` (a temporary folder if None); Kubernetes requests are
    journalled to `kube_journal`; they run as containers of the engine `pod_runtime` names (`auto`:
    podman or docker if either answers; `process`: host processes). With `iam_buckets` (the
    storage and log buckets the policy files name) every workload's requests are checked against
    its policies in `policies`. With `stack` (the template's parameters) the project's template,
    aws/template.yaml, is deployed first, as the platform team deploys it on AWS (local_cloud.aws.stack).
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    # AWS managed policies (AmazonEMRServicePolicy_v2, which the template attaches) exist on AWS;
    # moto knows them only if it loads them when its IAM backend starts (0.8 s).
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    moto_app = DomainDispatcherApplication(create_backend_app)
    # Functions run with their role's credentials, pods with their service account's (as EKS gives
    # them); without IAM checks both have the administrator's.
    sandbox_env: dict[str, str] = credentials(LAMBDA_KEY) if iam_buckets else dict(CREDENTIALS)
    node_env: dict[str, str] = credentials(POD_KEY) if iam_buckets else dict(CREDENTIALS)
    pool = SandboxPool(workdir or Path(tempfile.mkdtemp(prefix="lambda-")), sandbox_env)
    state = DurableState(state_dir) if state_dir else None
    # S3 written through to disk, so what one run wrote the next one reads.
    s3_state = S3State(state_dir / "s3", ACCOUNT) if state_dir else None
    aws_app = s3_state.middleware(moto_app) if s3_state else moto_app
    # IAM: with the buckets the policies name, each workload's requests are checked (local_cloud.aws.iam).
    enforcer = None
    if iam_buckets is not None:
        values = {
            "BUCKET": iam_buckets[0],
            "LOG_BUCKET": iam_buckets[1],
            "REGION": REGION,
            "ACCOUNT": ACCOUNT,
        }
        enforcer = IamEnforcer(offline_principals(policies, values, ACCOUNT), REGION, ACCOUNT)
        aws_app = enforcer.s3_middleware(aws_app)
    invocations = LambdaInvocations(aws_app, pool, ACCOUNT, REGION)
    aws = RequestValidator(
        invocations,
        journal,
        on_success=state.record if state else None,
        rules={("emr", "RunJobFlow"): functools.partial(run_job_flow_error, account=ACCOUNT, region=REGION)},
        authorize=enforcer.authorize if enforcer else None,
    )
    # Pods reach the emulator's S3 as Lambda functions do (on EKS: the region and the service
    # account's role credentials).
    pods = pods_dir or Path(tempfile.mkdtemp(prefix="pods-"))
    # SAM templates (CloudFormation's CreateStack and UpdateStack with the transform) are deployed
    # by the emulator itself; local_cloud.aws.stack imports this module, hence here.
    from local_cloud.aws import stack as stacks

    sam = stacks.SamStacks(aws)
    # HTTP APIs' routes (API Gateway) run their Lambda integrations.
    http_apis = HttpApis(sam, invocations, ACCOUNT, REGION)
    kubernetes = KubernetesApi(
        http_apis, pods, images, ROOT, kube_journal, node_env, find_engine(pod_runtime)
    )
    app = kubernetes
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    # What clients on this machine (Lambda sandboxes, pods, steps) use, whatever the bind address.
    endpoint = f"http://{LOOPBACK}:{server.server_port}"
    # Functions reach the emulator's S3 the way they would reach AWS's: through the SDK's settings.
    sandbox_env["AWS_ENDPOINT_URL"] = node_env["AWS_ENDPOINT_URL"] = endpoint
    # Polled every 0.1 s for the shutdown request, not 0.5: a stop is then that much sooner.
    threading.Thread(target=server.serve_forever, args=(0.1,), name="http", daemon=True).start()
    sam.endpoint = endpoint
    if stack is not None:
        # Before the kept objects are back (they go into the stack's buckets): not saved meanwhile.
        with s3_state.paused() if s3_state else contextlib.nullcontext():
            stacks.deploy(endpoint, stacks.load(), stack, stacks.STACK_NAME)
        logging.getLogger("local_cloud").info("deployed %s as stack %s", stacks.TEMPLATE, stacks.STACK_NAME)
    iam = client(endpoint, "iam")
    for name in roles:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(_LAMBDA_TRUST))
    # Before anyone knows the endpoint, so no request sees a half-restored state; objects before
    # functions, whose code may be in S3.
    if s3_state:
        count = s3_state.restore(client(endpoint, "s3"))
        logging.getLogger("local_cloud").info("restored %d S3 object(s) from %s", count, state_dir)
    if state:
        count = state.replay(moto_app)
        logging.getLogger("local_cloud").info("restored %d Lambda change(s) from %s", count, state_dir)
    return Emulator(server, endpoint, pool, kubernetes)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, with `images` (repository -> Dockerfile) parsed from the --image options."""
    parser = argparse.ArgumentParser(prog="python -m local_cloud.server", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument(
        "--host",
        default=LOOPBACK,
        help="address to listen on (default 127.0.0.1; 0.0.0.0 only inside a container: docker-compose)",
    )
    parser.add_argument("--ready-file", type=Path, help="write the endpoint URL here once serving")
    parser.add_argument("--bucket", action="append", default=[], help="S3 bucket to create (repeatable)")
    parser.add_argument("--role", action="append", default=[], help="IAM role Lambda may assume (repeatable)")
    parser.add_argument(
        "--security-configuration",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="an EMR security configuration to create from a JSON file (repeatable)",
    )
    parser.add_argument(
        "--stack-parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="deploy aws/template.yaml at start with this parameter (repeatable; none: no stack)",
    )
    parser.add_argument(
        "--manifest",
        action="append",
        default=[],
        type=Path,
        help="Kubernetes objects to create, as `kubectl create -f FILE` (repeatable)",
    )
    parser.add_argument("--spark-master", default="local[2]", help="master for the steps' local Spark")
    parser.add_argument("--journal", type=Path, help="append each validated AWS request here (JSON lines)")
    parser.add_argument("--workdir", type=Path, help="Lambda sandboxes' code and logs")
    parser.add_argument("--state-dir", type=Path, help="keep Lambda functions here between runs")
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="NAME=DOCKERFILE",
        help="an image repository pods may run, built from DOCKERFILE (repeatable)",
    )
    parser.add_argument("--pods-dir", type=Path, help="each pod's logs and volumes")
    parser.add_argument("--kube-journal", type=Path, help="append each Kubernetes request here (JSON lines)")
    parser.add_argument(
        "--iam",
        dest="iam_buckets",
        nargs=2,
        metavar=("BUCKET", "LOG_BUCKET"),
        help="check every workload's requests against its IAM policy, naming these buckets",
    )
    parser.add_argument("--iam-policies", type=Path, default=POLICIES, help="the policy files' folder")
    parser.add_argument(
        "--pod-runtime",
        choices=["auto", "podman", "docker", "process"],
        default=os.environ.get("LOCAL_CLOUD_POD_RUNTIME", "auto"),
        help="how pods run: containers of an engine (auto: the first that answers) or host processes "
        "(default: $LOCAL_CLOUD_POD_RUNTIME, else auto)",
    )
    parser.add_argument("--parent-pid", type=int, help="stop, with all it started, when this process dies")
    args = parser.parse_args(argv)
    args.security_configurations = {}
    for spec in args.security_configuration:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            parser.error(f"--security-configuration takes NAME=FILE (a JSON file), not {spec!r}")
        args.security_configurations[name] = Path(path)
    args.stack = {}
    for spec in args.stack_parameter:
        name, sep, value = spec.partition("=")
        if not sep or not name:
            parser.error(f"--stack-parameter takes NAME=VALUE, not {spec!r}")
        args.stack[name] = value
    args.images = {}
    for spec in args.image:
        name, sep, dockerfile = spec.partition("=")
        if not sep or not name or not dockerfile:
            parser.error(f"--image takes NAME=DOCKERFILE, not {spec!r}")
        args.images[name] = Path(dockerfile).resolve()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)

    emulator = serve(
        args.port,
        args.journal,
        args.workdir,
        args.state_dir,
        args.role,
        images=args.images,
        pods_dir=args.pods_dir,
        kube_journal=args.kube_journal,
        host=args.host,
        iam_buckets=tuple(args.iam_buckets) if args.iam_buckets else None,
        policies=args.iam_policies,
        pod_runtime=args.pod_runtime,
        stack=args.stack or None,
    )
    s3 = client(emulator.endpoint, "s3")
    kept = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    for bucket in set(args.bucket) - kept:
        s3.create_bucket(Bucket=bucket)
    # What the platform team creates once on AWS (docs/aws.md), before any cluster names it.
    emr = client(emulator.endpoint, "emr")
    for name, path in args.security_configurations.items():
        emr.create_security_configuration(Name=name, SecurityConfiguration=path.read_text())
    emr_network.create(client(emulator.endpoint, "ec2"))
    # ... and on the cluster (k8s/): the scoring namespace, its service account, RBAC and quota.
    for created in manifests.apply(emulator.endpoint, args.manifest):
        logging.getLogger("local_cloud").info("created %s", created)

    def put_log(uri: str, data: bytes) -> None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        s3.put_object(Bucket=bucket, Key=key, Body=data)

    # A step reaches S3 as on EMR (the nodes' credentials, the region's endpoint): here the emulator's.
    node_credentials = credentials(INSTANCE_PROFILE_KEY) if args.iam_buckets else CREDENTIALS
    step_env = node_credentials | {"AWS_ENDPOINT_URL": emulator.endpoint}
    runner = StepRunner(put_log, master=args.spark_master, env=step_env)
    runner.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.parent_pid:

        def orphaned() -> None:
            # Steps (spark-submit and its JVM) and Lambda sandboxes are in this process group: they
            # go with it (the signal reaches this process's own handler too). Pods, each in its own
            # group, are stopped by shutdown().
            if os.getpgrp() == os.getpid():
                os.killpg(os.getpid(), signal.SIGTERM)
            stop.set()

        watch_parent(args.parent_pid, orphaned)
    if args.ready_file:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(emulator.endpoint)
        tmp.replace(args.ready_file)
    logging.getLogger("local_cloud").info("serving on %s", emulator.endpoint)
    stop.wait()
    runner.stop()
    emulator.shutdown()
    return 0


if __name__ == "__main__":
    # Everything it started is stopped and every change saved: moto's state needs no teardown,
    # which took 0.9 s of each of the many starts the tests and `make run` make.
    exit_now(main())
