"""aws/template.yaml deployed to the emulator as `make deploy` deploys it on AWS (CloudFormation's
CreateStack and UpdateStack, with the SAM transform), in its two steps: buckets and roles, then
the function once its code is shipped; and then a prediction over the HTTP API the stack made.
The emulator runs the transform with AWS's translator, lets moto's CloudFormation create what it
models, and makes the rest through the services' APIs (local_cloud.aws.stack)."""

from __future__ import annotations

import contextlib
import io
import json
from urllib.parse import urlparse

import pytest
import s3fs

from local_cloud.airflow.offline import LOCAL_OIDC_PROVIDER, LOG_BUCKET, airflow_env, stack_parameters
from local_cloud.aws import apigateway, stack
from local_cloud.process import SECURITY_CONFIGURATION, SECURITY_CONFIGURATION_FILE, running_emulator
from local_cloud.server import CREDENTIALS, client
from spark_jobs.shipping import deploy, lambda_package
from tests.conftest import BANK, bank_records, handmade_version
from tests.local_cloud.aws.test_http_api import _post

pytestmark = pytest.mark.emulator
BUCKET = "ml-scaling-storage"
CODE_KEY = "ml-scaling/lambda/test/spot-predictions.zip"


@pytest.fixture(scope="module")
def bare_emulator(tmp_path_factory):
    """An emulator with nothing made yet: no bucket, no role, no security configuration."""
    with running_emulator(tmp_path_factory.mktemp("stack"), [], stack=None) as endpoint:
        # The one a test emulator always has, which the template makes.
        client(endpoint, "emr").delete_security_configuration(Name=SECURITY_CONFIGURATION)
        yield endpoint


@pytest.fixture
def on_the_emulator(bare_emulator, monkeypatch):
    """This process's SDK pointed at the emulator, as `make deploy` run there would be."""
    _point_at(bare_emulator, monkeypatch)
    yield bare_emulator
    s3fs.S3FileSystem.clear_instance_cache()


def _point_at(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_S3": endpoint}.items():
        monkeypatch.setenv(name, value)
    # s3fs keeps one filesystem per set of arguments, made with the endpoint of its time: an
    # earlier test's would reach another emulator.
    s3fs.S3FileSystem.clear_instance_cache()


def _deploy(*extra: str) -> dict[str, str]:
    """`python -m spark_jobs deploy` with the offline parameters: its outputs."""
    arguments = [f"--parameter={k}={v}" for k, v in stack_parameters(BUCKET).items()]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert deploy.main(["--template", str(stack.TEMPLATE), *arguments, *extra]) == 0
    return dict(json.loads(out.getvalue()))


@pytest.fixture(scope="module")
def first_deployment(bare_emulator):
    with pytest.MonkeyPatch.context() as monkeypatch:
        _point_at(bare_emulator, monkeypatch)
        return _deploy()


def test_the_first_deployment_makes_buckets_roles_and_the_security_configuration(
    bare_emulator, first_deployment
):
    s3, iam = client(bare_emulator, "s3"), client(bare_emulator, "iam")
    for bucket in (BUCKET, LOG_BUCKET):
        (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
        # moto's CloudFormation drops these two; the deployment applies them by API.
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4
    (expiry,) = s3.get_bucket_lifecycle_configuration(Bucket=LOG_BUCKET)["Rules"]
    assert expiry["Filter"] == {"Prefix": "emr/"} and expiry["Expiration"] == {"Days": 90}
    (abort,) = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert abort["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}

    attached = iam.list_attached_role_policies(RoleName="EMR_DefaultRole_V2")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonEMRServicePolicy_v2"]
    (profile_role,) = iam.get_instance_profile(InstanceProfileName="EMR_EC2_DefaultRole")["InstanceProfile"][
        "Roles"
    ]
    assert profile_role["RoleName"] == "EMR_EC2_DefaultRole"
    pod_trust = iam.get_role(RoleName="ml-scaling-jobs")["Role"]["AssumeRolePolicyDocument"]
    (condition,) = [s["Condition"]["StringEquals"] for s in pod_trust["Statement"]]
    assert condition[f"{LOCAL_OIDC_PROVIDER}:sub"] == "system:serviceaccount:ml-scaling:ml-scaling-jobs"
    config = client(bare_emulator, "emr").describe_security_configuration(Name="ml-scaling-imdsv2")
    assert json.loads(config["SecurityConfiguration"]) == json.loads(SECURITY_CONFIGURATION_FILE.read_text())

    # No code uploaded yet: no function, no API.
    assert "SpotPredictionsUrl" not in first_deployment
    assert client(bare_emulator, "lambda").list_functions()["Functions"] == []


def test_the_outputs_are_the_variables_the_offline_runs_set(bare_emulator, first_deployment, tmp_path):
    env = airflow_env(tmp_path, bare_emulator, f"s3://{BUCKET}/ml-scaling", BANK, LOG_BUCKET)
    named = {
        "MlStorageRoot": "ML_STORAGE_ROOT",
        "EmrLogUri": "EMR_LOG_URI",
        "MlEmrSecurityConfiguration": "ML_EMR_SECURITY_CONFIGURATION",
        "MlLambdaRoleArn": "ML_LAMBDA_ROLE_ARN",
    }
    assert {k: first_deployment[k] for k in named} == {k: env[f"AIRFLOW_VAR_{v}"] for k, v in named.items()}


def test_with_its_code_the_stack_serves_predictions_over_its_http_api(
    on_the_emulator, first_deployment, spot_zip
):
    emulator = on_the_emulator
    # make deploy's second step: the package shipped (as `make ship` leaves it) and a champion in
    # the bucket, then the same stack with CodeKey: the function, its version and `live` alias,
    # the HTTP API and its stage.
    shipped = lambda_package.ship(f"s3://{BUCKET}/ml-scaling")
    registry = handmade_version(f"s3://{BUCKET}/ml-scaling")
    outputs = _deploy("--code-from", f"s3://{BUCKET}/ml-scaling")
    assert {k: v for k, v in outputs.items() if k != "SpotPredictionsUrl"} == first_deployment

    lam = client(emulator, "lambda")
    function = f"ml-scaling-spot-predictions-{registry.model}"
    code = lam.get_function(FunctionName=function)["Configuration"]
    assert code["CodeSha256"] == shipped["code_sha256"] and code["Handler"] == shipped["handler"]
    assert lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"] == "1"
    (grant,) = json.loads(lam.get_policy(FunctionName=function, Qualifier="live")["Policy"])["Statement"]
    api_id = urlparse(outputs["SpotPredictionsUrl"]).hostname.split(".")[0]
    assert grant["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert grant["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(f":{api_id}/*/POST/predict")
    (stage,) = client(emulator, "apigatewayv2").get_stages(ApiId=api_id)["Items"]
    assert stage["StageName"] == "$default" and stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == 20

    records = bank_records(2)
    url = apigateway.url(emulator, api_id) + "/predict"
    status, _, body = _post(url, json.dumps({"records": records}).encode())
    direct = lam.invoke(FunctionName=function, Qualifier="live", Payload=json.dumps({"records": records}))
    assert status == 200, body
    answer = json.loads(body)
    assert answer["model_version"] == "v1" and answer["count"] == 2
    assert answer["predictions"] == json.loads(direct["Payload"].read())["predictions"]

    # Deployed again unchanged: the same alias, API and grant, nothing added. And `make deploy`
    # run again, whose first step gives no CodeKey: the stack keeps the one it has (an update
    # without it would delete the function, its alias and the API).
    assert _deploy("--code-from", f"s3://{BUCKET}/ml-scaling") == outputs
    assert _deploy() == outputs
    assert lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"] == "1"
    assert len(client(emulator, "apigatewayv2").get_apis()["Items"]) == 1
    assert (
        len(json.loads(lam.get_policy(FunctionName=function, Qualifier="live")["Policy"])["Statement"]) == 1
    )


def test_without_the_capabilities_cloudformation_asks_for_nothing_is_made(on_the_emulator):
    cfn = client(on_the_emulator, "cloudformation")
    parameters = [
        {"ParameterKey": k, "ParameterValue": v} for k, v in stack_parameters("cap-storage").items()
    ]
    for given, missing in (
        ([], "CAPABILITY_AUTO_EXPAND"),
        (["CAPABILITY_AUTO_EXPAND"], "CAPABILITY_NAMED_IAM"),
    ):
        with pytest.raises(cfn.exceptions.InsufficientCapabilitiesException, match=missing):
            cfn.create_stack(
                StackName="caps",
                TemplateBody=stack.TEMPLATE.read_text(),
                Parameters=parameters,
                Capabilities=given,
            )
    assert "cap-storage" not in {b["Name"] for b in client(on_the_emulator, "s3").list_buckets()["Buckets"]}


def test_what_the_emulator_cannot_apply_is_refused_before_anything_is_made(on_the_emulator, tmp_path):
    template = stack.TEMPLATE.read_text().replace(
        "            ExpirationInDays: 90",
        "            ExpirationInDays: 90\n            NoncurrentVersionExpirationInDays: 30",
    )
    assert template != stack.TEMPLATE.read_text()
    parameters = stack_parameters("other-storage") | {"LogBucketName": "other-logs"}
    with pytest.raises(
        deploy.DeployError, match="LogBucket: lifecycle rule field.s. NoncurrentVersionExpirationInDays"
    ):
        deploy.deploy(template, "other", parameters)
    buckets = {b["Name"] for b in client(on_the_emulator, "s3").list_buckets()["Buckets"]}
    assert not buckets & {"other-storage", "other-logs"}


def test_create_and_update_mean_what_they_say(on_the_emulator, first_deployment):
    cfn = client(on_the_emulator, "cloudformation")
    request = {
        "TemplateBody": stack.TEMPLATE.read_text(),
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in stack_parameters(BUCKET).items()],
        "Capabilities": deploy.CAPABILITIES,
    }
    with pytest.raises(cfn.exceptions.AlreadyExistsException, match="already exists"):
        cfn.create_stack(StackName="ml-scaling", **request)
    with pytest.raises(cfn.exceptions.ClientError, match=r"Stack \[nowhere\] does not exist"):
        cfn.update_stack(StackName="nowhere", **request)
    kept = {"ParameterKey": "CodeKey", "UsePreviousValue": True}
    with pytest.raises(cfn.exceptions.ClientError, match="no previous value"):
        cfn.create_stack(
            StackName="nowhere-either", **request | {"Parameters": [*request["Parameters"], kept]}
        )


def test_parameters_are_checked_before_anything_is_made(on_the_emulator):
    template = stack.TEMPLATE.read_text()
    with pytest.raises(deploy.DeployError, match=r"Parameters: \[LogBucketName\] must have values"):
        deploy.deploy(template, "no-logs", {"StorageBucketName": "x-storage"})
    with pytest.raises(deploy.DeployError, match=r"Parameters: \[Bucket\] do not exist in the template"):
        deploy.deploy(template, "typo", stack_parameters("y-storage") | {"Bucket": "b"})
    with pytest.raises(deploy.DeployError, match="Parameter 'ModelName' must match pattern"):
        deploy.deploy(template, "bad-model", stack_parameters("z-storage") | {"ModelName": "Bank Model"})
    names = [
        s["StackName"] for s in client(on_the_emulator, "cloudformation").list_stacks()["StackSummaries"]
    ]
    assert not {"no-logs", "typo", "bad-model"} & set(names)
