"""The boto3 clients behind the amazon provider's hooks, typed by service.

The provider types a hook's `conn` as any boto3 client or resource, so mypy would check no call
made on it; these give each the client type boto3-stubs generates from the same botocore models
the emulator validates requests against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from mypy_boto3_emr import EMRClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client


def emr_client(hook: AwsBaseHook) -> EMRClient:
    return cast("EMRClient", hook.conn)


def lambda_client(hook: AwsBaseHook) -> LambdaClient:
    return cast("LambdaClient", hook.conn)


def s3_client(hook: AwsBaseHook) -> S3Client:
    return cast("S3Client", hook.conn)
