"""IAM in the emulator: every request is checked against the policies of the principal that
signed it, the files under aws/iam/ that docs/aws.md shows and a real account is given.

moto's own access control checks S3 resources but evaluates EMR and Lambda requests against "*"
and ignores conditions, which would pass or fail the worker's scoped statements for the wrong
reasons; so this module evaluates the policies itself. Each request becomes the checks AWS makes
for it (action, resource ARN, condition keys): S3 by method, path and query; EMR and Lambda by
the operation and parameters the request validator already parsed, with the implicit
`iam:PassRole` of RunJobFlow and CreateFunction and the tags of the cluster a request names.

Principals are told apart by access key id: the Airflow worker, the nodes' instance profile (EMR
steps), the spot-predictions function's role (Lambda sandboxes) and the scoring pods' role. The
emulator's own setup, `make run`'s staging of the input and the tests use an administrator key.
Signatures are not verified (only which key signed), and only the condition operators below are
known: a policy using another one is refused when loaded, never silently passed.
"""

from __future__ import annotations

import io
import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, unquote

log = logging.getLogger("local_cloud.aws.iam")
ADMIN_KEY = "testing"  # local_cloud.server.CREDENTIALS: the platform team, not a workload
_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda want, got: want == got,
    "StringLike": lambda want, got: _like(want, got),
    "ArnEquals": lambda want, got: want == got,
    "ArnLike": lambda want, got: _like(want, got),
}
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike", "ArnNotLike": "ArnLike"}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


@dataclass(frozen=True)
class Check:
    action: str
    resource: str
    context: Mapping[str, str]


@dataclass(frozen=True)
class Principal:
    name: str  # as AWS names the caller in AccessDenied messages
    access_key: str
    secret_key: str
    statements: tuple[dict[str, Any], ...]

    @property
    def credentials(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def denied(self, checks: Iterable[Check]) -> Check | None:
        """The first check no statement allows (or one denies); None if all are allowed."""
        for check in checks:
            if not allows(self.statements, check):
                return check
        return None


def load_policy(path: Path, values: Mapping[str, str]) -> tuple[dict[str, Any], ...]:
    """A policy file's statements with BUCKET, LOG_BUCKET, REGION and ACCOUNT filled in."""
    text = path.read_text()
    for name in sorted(values, key=len, reverse=True):  # LOG_BUCKET before BUCKET
        text = re.sub(rf"\b{name}\b", values[name], text)
    statements = json.loads(text)["Statement"]
    for st in statements:
        for operator in st.get("Condition", {}):
            if _NEGATED.get(operator, operator) not in _OPERATORS:
                raise ValueError(f"{path.name}: the emulator cannot evaluate condition operator {operator}")
    return tuple(statements)


def allows(statements: Iterable[dict[str, Any]], check: Check) -> bool:
    allowed = False
    for st in statements:
        if not _matches(st, "Action", check.action, ignore_case=True):
            continue
        if not _matches(st, "Resource", check.resource) or not _conditions_hold(st, check.context):
            continue
        if st["Effect"] == "Deny":
            return False
        allowed = True
    return allowed


def _matches(st: dict[str, Any], element: str, value: str, ignore_case: bool = False) -> bool:
    if element not in st and f"Not{element}" in st:
        return not _any_like(st[f"Not{element}"], value, ignore_case)
    return _any_like(st.get(element, []), value, ignore_case)


def _any_like(patterns: str | list[str], value: str, ignore_case: bool) -> bool:
    items = [patterns] if isinstance(patterns, str) else patterns
    return any(_like(p.lower(), value.lower()) if ignore_case else _like(p, value) for p in items)


def _like(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _conditions_hold(st: dict[str, Any], context: Mapping[str, str]) -> bool:
    for operator, tests in st.get("Condition", {}).items():
        negated = operator in _NEGATED
        compare = _OPERATORS[_NEGATED.get(operator, operator)]
        for key, wanted in tests.items():
            wanted = [wanted] if isinstance(wanted, str) else wanted
            got = context.get(key)
            hit = got is not None and any(compare(w, got) for w in wanted)
            if hit == negated:  # a missing key fails a positive test and passes a negated one
                return False
    return True


# --- which checks a request needs ---------------------------------------------------------------


def s3_checks(method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> list[Check]:
    """What AWS checks for an S3 request (path-style, as every client of the emulator sends)."""
    bucket, _, key = unquote(path.lstrip("/")).partition("/")
    params = parse_qs(query, keep_blank_values=True)
    if not bucket:
        return [Check("s3:ListAllMyBuckets", "*", {})]
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if not key:
        if method == "POST" and "delete" in params:  # DeleteObjects: each key is a DeleteObject
            keys = [e.text or "" for e in ET.fromstring(body).iter() if e.tag.endswith("Key")]
            return [Check("s3:DeleteObject", f"{bucket_arn}/{k}", {}) for k in keys]
        if method == "PUT" and not params:
            return [Check("s3:CreateBucket", bucket_arn, {})]
        if method == "DELETE" and not params:
            return [Check("s3:DeleteBucket", bucket_arn, {})]
        if method in ("GET", "HEAD") and (not params or {"list-type", "prefix", "delimiter"} & set(params)):
            return [Check("s3:ListBucket", bucket_arn, {"s3:prefix": params.get("prefix", [""])[0]})]
        if "uploads" in params:
            return [Check("s3:ListBucketMultipartUploads", bucket_arn, {})]
        # Bucket settings (location, versioning, ...): s3:GetBucket<Name> / s3:PutBucket<Name>.
        name = next(iter(params), "")
        verb = "Get" if method in ("GET", "HEAD") else "Put"
        return [Check(f"s3:{verb}Bucket{name[:1].upper()}{name[1:]}", bucket_arn, {})]
    object_arn = f"{bucket_arn}/{key}"
    if method in ("GET", "HEAD"):
        return [
            Check("s3:ListMultipartUploadParts" if "uploadId" in params else "s3:GetObject", object_arn, {})
        ]
    if method == "DELETE":
        return [
            Check("s3:AbortMultipartUpload" if "uploadId" in params else "s3:DeleteObject", object_arn, {})
        ]
    checks = [Check("s3:PutObject", object_arn, {})]  # PUT, a part, or starting/completing an upload
    source = headers.get("x-amz-copy-source")
    if source:
        checks.append(Check("s3:GetObject", f"arn:aws:s3:::{unquote(source.lstrip('/')).split('?')[0]}", {}))
    return checks


def emr_checks(
    operation: str,
    params: Mapping[str, Any],
    region: str,
    account: str,
    cluster_tags: Callable[[str], dict[str, Any]],
) -> list[Check]:
    action = f"elasticmapreduce:{operation}"
    if operation == "RunJobFlow":
        tags = {f"aws:RequestTag/{t['Key']}": t.get("Value", "") for t in params.get("Tags", [])}
        checks = [Check(action, "*", tags)]
        for role, service in (
            (params.get("ServiceRole"), "elasticmapreduce"),
            (params.get("JobFlowRole"), "ec2"),
        ):
            if role:  # an instance profile is passed as the role of the same name
                arn = role if role.startswith("arn:") else f"arn:aws:iam::{account}:role/{role}"
                checks.append(Check("iam:PassRole", arn, {"iam:PassedToService": f"{service}.amazonaws.com"}))
        return checks
    ids = params.get("JobFlowIds") or [
        params.get("ClusterId") or params.get("JobFlowId") or params.get("ResourceId")
    ]
    checks = []
    for cluster_id in filter(None, ids):
        arn = f"arn:aws:elasticmapreduce:{region}:{account}:cluster/{cluster_id}"
        tags = {f"elasticmapreduce:ResourceTag/{k}": v for k, v in cluster_tags(cluster_id).items()}
        checks.append(Check(action, arn, tags))
    return checks or [Check(action, "*", {})]


def lambda_checks(operation: str, params: Mapping[str, Any], region: str, account: str) -> list[Check]:
    action = "lambda:InvokeFunction" if operation == "Invoke" else f"lambda:{operation}"
    name = params.get("FunctionName")
    if not name:
        return [Check(action, "*", {})]
    if not name.startswith("arn:"):
        name = f"arn:aws:lambda:{region}:{account}:function:{name}"
    qualifier = params.get("Qualifier")
    checks = [Check(action, f"{name}:{qualifier}" if qualifier and name.count(":") == 6 else name, {})]
    if operation == "CreateFunction" and params.get("Role"):
        checks.append(Check("iam:PassRole", params["Role"], {"iam:PassedToService": "lambda.amazonaws.com"}))
    return checks


def access_key(environ: Mapping[str, Any]) -> str | None:
    """The access key id a request was signed with (header or presigned query)."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1)
    query = parse_qs(environ.get("QUERY_STRING", ""))
    credential = query.get("X-Amz-Credential", [""])[0]
    return credential.split("/")[0] or None


def denial_message(principal: Principal, check: Check) -> str:
    log.warning("AccessDenied: %s %s %s", principal.name, check.action, check.resource)
    return (
        f"User: {principal.name} is not authorized to perform: {check.action} on resource: "
        f"{check.resource} because no identity-based policy allows the {check.action} action"
    )


# --- enforcement ----------------------------------------------------------------------------------

_S3_DENIED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
)


class IamEnforcer:
    """Checks each request against its signer's policies; the administrator key passes."""

    def __init__(self, principals: Iterable[Principal], region: str, account: str):
        self._principals = {p.access_key: p for p in principals}
        self._region = region
        self._account = account

    def authorize(self, checked: Any, environ: dict[str, Any]) -> tuple[str, list[Any], bytes] | None:
        """For the request validator: a denial of an EMR or Lambda request, or None."""
        key = access_key(environ)
        if key == ADMIN_KEY:
            return None
        principal = self._principals.get(key or "")
        rest = checked.service == "lambda"
        if principal is None:
            message = "The security token included in the request is invalid."
            return _json_denial(rest, "UnrecognizedClientException", message)
        if checked.service == "emr":
            checks = emr_checks(checked.operation, checked.params, self._region, self._account, self._tags)
        elif rest:
            checks = lambda_checks(checked.operation, checked.params, self._region, self._account)
        else:
            checks = [Check(f"{checked.service}:{checked.operation}", "*", {})]
        denied = principal.denied(checks)
        return (
            None
            if denied is None
            else _json_denial(rest, "AccessDeniedException", denial_message(principal, denied))
        )

    def s3_middleware(self, app: Callable[..., Any]) -> Callable[..., Any]:
        """`app` (moto), answering S3 requests their signer may not make with 403 AccessDenied."""
        from local_cloud.aws.validation import credential_service

        def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            key = access_key(environ)
            # Only what is signed for s3 (anonymous requests are not checked).
            if key in (ADMIN_KEY, None) or credential_service(environ) not in ("s3", None):
                return cast(Iterable[bytes], app(environ, start_response))
            principal = self._principals.get(key or "")
            if principal is None:
                code, message = (
                    "InvalidAccessKeyId",
                    "The AWS Access Key Id you provided does not exist in our records.",
                )
            else:
                body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                environ["wsgi.input"] = io.BytesIO(body)
                headers = {
                    k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
                }
                checks = s3_checks(
                    environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""),
                    headers, body,
                )  # fmt: skip
                denied = principal.denied(checks)
                if denied is None:
                    return cast(Iterable[bytes], app(environ, start_response))
                code, message = "AccessDenied", denial_message(principal, denied)
            payload = _S3_DENIED.format(code=code, message=escape(message)).encode()
            start_response(
                "403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(payload)))]
            )
            # As S3 does, no body for HEAD: a client reading one past `Connection: close` fails with
            # an HTTP error (aiohttp: "Data after Connection: close") that hides the 403.
            return [] if environ["REQUEST_METHOD"] == "HEAD" else [payload]

        return wrapped

    def _tags(self, cluster_id: str) -> dict[str, str]:
        from moto.emr.models import emr_backends

        cluster = emr_backends[self._account][self._region].clusters.get(cluster_id)
        return {t["Key"]: t["Value"] for t in cluster.tags} if cluster is not None else {}


def _json_denial(rest: bool, kind: str, message: str) -> tuple[str, list[Any], bytes]:
    if rest:  # Lambda's REST-JSON errors: 403 and a "Message"
        body = json.dumps({"Type": "User", "Message": message}).encode()
        return "403 Forbidden", [("Content-Type", "application/json"), ("x-amzn-ErrorType", kind)], body
    body = json.dumps({"__type": kind, "message": message}).encode()
    return (
        "400 Bad Request",
        [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", kind)],
        body,
    )


def offline_principals(policies: Path, values: Mapping[str, str], account: str) -> list[Principal]:
    """The workloads of an offline deployment, each with its policy files and its own key."""

    def role(name: str, key: str, *files: str) -> Principal:
        statements = tuple(st for f in files for st in load_policy(policies / f, values))
        return Principal(
            f"arn:aws:sts::{account}:assumed-role/{name}/local", key, f"{key}-secret", statements
        )

    return [
        role("ml-scaling-airflow-worker", WORKER_KEY, "airflow-worker.json", "airflow-worker-lambda.json"),
        role("EMR_EC2_DefaultRole", INSTANCE_PROFILE_KEY, "emr-instance-profile.json"),
        role("ml-scaling-spot-predictions", LAMBDA_KEY, "spot-predictions-role.json"),
        role("ml-scaling-jobs", POD_KEY, "scoring-pod-role.json"),
    ]


WORKER_KEY = "AKIAOFFLINEWORKER001"
INSTANCE_PROFILE_KEY = "AKIAOFFLINEEMRNODE01"
LAMBDA_KEY = "AKIAOFFLINELAMBDA001"
POD_KEY = "AKIAOFFLINEPOD000001"
POLICIES = Path(__file__).resolve().parents[2] / "aws" / "iam"


def credentials(key: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": f"{key}-secret"}
