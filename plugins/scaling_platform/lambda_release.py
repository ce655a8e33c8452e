"""Release a model version to the spot-predictions Lambda function: publish, check, then move the alias.

The order is what makes a failed release harmless: the function's code and configuration are
brought up to date, a new version is published (pinned to one model version by its
environment), that version is invoked with a request whose answer is known, and only then does
the alias (`live`) move to it. A failure at any step raises and leaves the alias where it was,
so callers keep getting the old version's answers.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scaling_platform.jobs import find_lambda_package, smoke_check

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_lambda.type_defs import FunctionCodeTypeDef

# Each model has its own function, `<prefix>-<model>` (Variable ml_lambda_function_prefix), released
# by its own nightly run: two models never share a configuration that a release rewrites.
FUNCTION_PREFIX = "ml-scaling-spot-predictions"
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# What spot_predictions invokes; a release moves it only after the new version's check.
ALIAS = "live"


class ReleaseFailed(RuntimeError):
    """The new version did not pass its check; the alias was not moved."""


def function_name(model: str, prefix: str = FUNCTION_PREFIX) -> str:
    """The spot-predictions function of one model."""
    name = f"{prefix}-{model}"
    if not _FUNCTION_NAME.match(name):
        raise ValueError(
            f"Lambda function name {name[:80]!r} (prefix {prefix[:80]!r} + model) must be at most 64 "
            "letters, digits, '-' and '_': shorten Variable ml_lambda_function_prefix"
        )
    return name


@dataclass(frozen=True)
class FunctionSettings:
    name: str
    role_arn: str
    alias: str = ALIAS
    memory_size: int = 512
    timeout: int = 30


def function_config(
    settings: FunctionSettings, package: dict[str, str], env: dict[str, str]
) -> dict[str, Any]:
    """The configuration a release sets (CreateFunction / UpdateFunctionConfiguration fields)."""
    return {
        "FunctionName": settings.name,
        "Role": settings.role_arn,
        "Runtime": package["runtime"],
        "Handler": package["handler"],
        "MemorySize": settings.memory_size,
        "Timeout": settings.timeout,
        "Environment": {"Variables": env},
    }


def model_environment(storage_root: str, model: str, version: str) -> dict[str, str]:
    return {"ML_STORAGE_ROOT": storage_root, "ML_MODEL_NAME": model, "ML_MODEL_VERSION": version}


def code_location(zip_uri: str) -> FunctionCodeTypeDef:
    """Where Lambda takes the code from: the object on S3, or the zip's bytes for a local root."""
    if zip_uri.startswith("s3://"):
        bucket, _, key = zip_uri.removeprefix("s3://").partition("/")
        return {"S3Bucket": bucket, "S3Key": key}
    with open(zip_uri, "rb") as fh:
        return {"ZipFile": fh.read()}


def release_model(
    client: LambdaClient, settings: FunctionSettings, storage_root: str, model: str, version: str
) -> dict[str, Any]:
    """Release a registry version: find the Lambda package `make ship` uploaded (never built on
    the worker), work out the check request and its answer from the registry (both job CLIs),
    then `release`."""
    package = find_lambda_package(storage_root).model_dump()
    smoke = smoke_check(storage_root, model, version).model_dump()
    return release(client, settings, package, model_environment(storage_root, model, version), smoke)


def release(
    client: LambdaClient,
    settings: FunctionSettings,
    package: dict[str, str],
    env: dict[str, str],
    smoke: dict[str, Any],
) -> dict[str, Any]:
    """Bring the function to `package` and `env`, publish, check with `smoke`, move the alias."""
    config = function_config(settings, package, env)
    current = _configuration(client, settings.name)
    if current is None:
        client.create_function(**config, Code=code_location(package["zip_uri"]), Publish=False)
        client.get_waiter("function_active_v2").wait(FunctionName=settings.name)
    else:
        if current["CodeSha256"] != package["code_sha256"]:
            client.update_function_code(FunctionName=settings.name, **code_location(package["zip_uri"]))
            client.get_waiter("function_updated_v2").wait(FunctionName=settings.name)
        if _differs(current, config):
            client.update_function_configuration(**config)
            client.get_waiter("function_updated_v2").wait(FunctionName=settings.name)
    # CodeSha256 makes the publish fail if someone else changed the code in between.
    version = client.publish_version(
        FunctionName=settings.name,
        CodeSha256=package["code_sha256"],
        Description=f"model {env['ML_MODEL_VERSION']}",
    )["Version"]
    client.get_waiter("published_version_active").wait(FunctionName=settings.name, Qualifier=version)
    check_version(client, settings.name, version, smoke)
    previous = _alias_version(client, settings.name, settings.alias)
    if previous is None:
        client.create_alias(FunctionName=settings.name, Name=settings.alias, FunctionVersion=version)
    elif previous != version:
        client.update_alias(FunctionName=settings.name, Name=settings.alias, FunctionVersion=version)
    return {
        "function": settings.name,
        "alias": settings.alias,
        "version": version,
        "previous_version": previous,
        "model_version": env["ML_MODEL_VERSION"],
    }


def check_version(client: LambdaClient, name: str, version: str, smoke: dict[str, Any]) -> None:
    """Invoke the new version with a known request; its answer must be the expected one."""
    response = client.invoke(FunctionName=name, Qualifier=version, Payload=json.dumps(smoke["event"]))
    body = response["Payload"].read().decode()
    if response.get("FunctionError"):
        raise ReleaseFailed(f"{name}:{version} failed its check, the alias was not moved: {body[:2000]}")
    answer, expected = json.loads(body), smoke["expected"]
    got = [p["probability"] for p in answer.get("predictions", [])]
    want = [p["probability"] for p in expected["predictions"]]
    if (
        answer.get("model_version") != expected["model_version"]
        or len(got) != len(want)
        or not all(math.isclose(a, b, rel_tol=0, abs_tol=1e-9) for a, b in zip(got, want, strict=False))
    ):
        raise ReleaseFailed(
            f"{name}:{version} answered {body[:1000]} but {json.dumps(expected)[:1000]} was expected; "
            "the alias was not moved"
        )


def _configuration(client: LambdaClient, name: str) -> dict[str, Any] | None:
    try:
        return dict(client.get_function_configuration(FunctionName=name))
    except client.exceptions.ResourceNotFoundException:
        return None


def _alias_version(client: LambdaClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_alias(FunctionName=name, Name=alias)["FunctionVersion"])
    except client.exceptions.ResourceNotFoundException:
        return None


def _differs(current: dict[str, Any], config: dict[str, Any]) -> bool:
    now = {
        "Role": current.get("Role"),
        "Runtime": current.get("Runtime"),
        "Handler": current.get("Handler"),
        "MemorySize": current.get("MemorySize"),
        "Timeout": current.get("Timeout"),
        "Environment": {"Variables": current.get("Environment", {}).get("Variables", {})},
    }
    return any(now[key] != config[key] for key in now)
