"""The AWS side in one SAM template (aws/template.yaml): valid as CloudFormation would judge it
(cfn-lint, with the SAM transform), its policies the very files the emulator enforces, its
outputs the Airflow Variables the DAGs read."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint, lint_file

from local_cloud.aws import stack
from local_cloud.aws.iam import POLICIES
from local_cloud.process import SECURITY_CONFIGURATION, SECURITY_CONFIGURATION_FILE
from tests.conftest import ROOT

TEMPLATE = ROOT / "aws" / "template.yaml"
# What the policy files write for what the template names: its parameters and pseudo parameters.
PLACEHOLDERS = {
    "${StorageBucketName}": "BUCKET",
    "${LogBucketName}": "LOG_BUCKET",
    "${AWS::Region}": "REGION",
    "${AWS::AccountId}": "ACCOUNT",
}


def _template() -> dict[str, Any]:
    return stack.load(TEMPLATE)


def _as_files_write_it(value: Any) -> Any:
    """A policy from the template, its `!Sub` strings written with the files' placeholders."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        text = value["Fn::Sub"]
        for name, placeholder in PLACEHOLDERS.items():
            text = text.replace(name, placeholder)
        assert "${" not in text, text
        return text
    if isinstance(value, dict):
        return {k: _as_files_write_it(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_files_write_it(v) for v in value]
    return value


def _policies(template: dict[str, Any]) -> dict[str, Any]:
    return {
        policy["PolicyName"]: _as_files_write_it(policy["PolicyDocument"])
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Role"
        for policy in resource["Properties"].get("Policies", [])
    }


def translated(parameters: dict[str, str]) -> dict[str, Any]:
    """The template as CloudFormation runs it: after the SAM transform."""
    return stack.translate(_template(), parameters)


def test_cfn_lint_finds_nothing_and_would_find_a_mistake():
    assert [str(m) for m in lint_file(TEMPLATE)] == []
    broken = TEMPLATE.read_text().replace("MemorySize: 512", "MemorySize: 50")
    assert any("50 is less than the minimum of 128" in str(m) for m in lint(broken))


def test_the_policies_are_the_files_the_emulator_enforces():
    files = {path.stem: json.loads(path.read_text()) for path in sorted(POLICIES.glob("*.json"))}
    names = {
        "emr-instance-profile": "emr-instance-profile",
        "spot-predictions": "spot-predictions-role",
        "scoring-pod": "scoring-pod-role",
        "airflow-worker": "airflow-worker",
        "airflow-worker-lambda": "airflow-worker-lambda",
    }
    policies = _policies(_template())
    assert set(policies) == set(names) and set(names.values()) == set(files)
    for in_template, in_files in names.items():
        assert policies[in_template] == files[in_files], in_template


def test_the_security_configuration_is_the_file_and_the_roles_are_the_ones_clusters_name():
    from scaling_platform.emr import ClusterSettings

    resources = _template()["Resources"]
    config = resources["EmrSecurityConfiguration"]["Properties"]
    assert config["Name"] == SECURITY_CONFIGURATION
    assert config["SecurityConfiguration"] == json.loads(SECURITY_CONFIGURATION_FILE.read_text())
    settings = ClusterSettings(name="nightly", log_uri="s3://logs/emr/")
    assert resources["EmrServiceRole"]["Properties"]["RoleName"] == settings.service_role
    assert resources["EmrInstanceProfile"]["Properties"]["InstanceProfileName"] == settings.job_flow_role


def test_the_function_is_what_a_release_deploys_behind_post_predict_on_its_live_alias():
    from scaling_platform.lambda_release import ALIAS, FUNCTION_PREFIX, FunctionSettings

    from spark_jobs.shipping.lambda_package import HANDLER, RUNTIME

    resources = translated(
        {"StorageBucketName": "b", "LogBucketName": "l", "CodeKey": "ml-scaling/lambda/x.zip"}
    )["Resources"]
    function = resources["SpotPredictionsFunction"]["Properties"]
    settings = FunctionSettings(name="", role_arn="")
    assert function["Handler"] == HANDLER and function["Runtime"] == RUNTIME
    assert (function["MemorySize"], function["Timeout"]) == (settings.memory_size, settings.timeout)
    assert function["FunctionName"] == {"Fn::Sub": f"{FUNCTION_PREFIX}-${{ModelName}}"}
    assert function["Code"] == {"S3Bucket": "b", "S3Key": "ml-scaling/lambda/x.zip"}
    alias = next(r for r in resources.values() if r["Type"] == "AWS::Lambda::Alias")
    assert alias["Properties"]["Name"] == ALIAS
    api = resources["SpotPredictionsApi"]["Properties"]["Body"]
    integration = api["paths"]["/predict"]["Fn::If"][1]["post"]["Fn::If"][1][
        "x-amazon-apigateway-integration"
    ]
    assert integration["type"] == "aws_proxy" and integration["payloadFormatVersion"] == "2.0"
    assert "${SpotPredictionsFunctionAliaslive}" in integration["uri"]["Fn::If"][1]["Fn::Sub"]
    permission = next(r for r in resources.values() if r["Type"] == "AWS::Lambda::Permission")
    assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"


def test_storage_and_roles_need_nothing_the_function_its_code_and_the_pod_role_its_cluster():
    """The first deployment (no code uploaded, no cluster yet) creates the buckets and roles; the
    function, its alias and API wait for CodeKey, the pods' role for the cluster's OIDC provider."""
    resources = translated({"StorageBucketName": "b", "LogBucketName": "l"})["Resources"]
    needs: dict[str, set[str]] = {}
    for resource in resources.values():
        needs.setdefault(resource.get("Condition", "nothing"), set()).add(resource["Type"])
    assert needs == {
        "nothing": {
            "AWS::S3::Bucket",
            "AWS::IAM::Role",
            "AWS::IAM::InstanceProfile",
            "AWS::EMR::SecurityConfiguration",
        },
        "HasCode": {
            "AWS::Lambda::Function",
            "AWS::Lambda::Version",
            "AWS::Lambda::Alias",
            "AWS::Lambda::Permission",
            "AWS::ApiGatewayV2::Api",
            "AWS::ApiGatewayV2::Stage",
        },
        "HasEksCluster": {"AWS::IAM::Role"},
    }
    conditions = _template()["Conditions"]
    assert conditions["HasCode"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CodeKey"}, ""]}]}
    assert conditions["HasEksCluster"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "EksOidcProvider"}, ""]}]}


def test_the_pods_role_trusts_exactly_the_manifests_service_account():
    import yaml

    trust = _template()["Resources"]["ScoringPodRole"]["Properties"]["AssumeRolePolicyDocument"]["Fn::Sub"]
    provider = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"
    for name, value in {
        "${EksOidcProvider}": provider,
        "${AWS::Partition}": "aws",
        "${AWS::AccountId}": "1",
    }.items():
        trust = trust.replace(name, value)
    (statement,) = json.loads(trust)["Statement"]
    docs = yaml.safe_load_all((ROOT / "k8s" / "scoring.yaml").read_text())
    account = next(d for d in docs if d["kind"] == "ServiceAccount")
    subject = f"system:serviceaccount:{account['metadata']['namespace']}:{account['metadata']['name']}"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"]["StringEquals"] == {
        f"{provider}:sub": subject,
        f"{provider}:aud": "sts.amazonaws.com",
    }
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(":role/ml-scaling-jobs")
    assert _template()["Resources"]["ScoringPodRole"]["Properties"]["RoleName"] == "ml-scaling-jobs"


@pytest.mark.parametrize(
    "variable", ["ml_storage_root", "emr_log_uri", "ml_emr_security_configuration", "ml_lambda_role_arn"]
)
def test_the_outputs_are_the_airflow_variables(variable):
    outputs = _template()["Outputs"]
    named = {o["Description"].removeprefix("Variable "): name for name, o in outputs.items()}
    assert variable in named
    assert re.sub(r"(^|_)(\w)", lambda m: m[2].upper(), variable) == named[variable]
    docs = (ROOT / "docs" / "aws.md").read_text()
    assert f"`{variable}`" in docs


def test_the_template_names_no_file_that_is_not_there():
    for path in re.findall(r"aws/[\w/.-]+\.json", TEMPLATE.read_text()):
        assert Path(ROOT / path).exists(), path
