"""IAM in the emulator (local_cloud.aws.iam): the policy files docs/aws.md shows are the ones each
workload is held to, and a statement taken out fails the task that needed it with AccessDenied."""

from __future__ import annotations

import json
import re
import shutil

import botocore.exceptions
import pytest

from local_cloud.airflow.offline import LAMBDA_ROLE, LOG_BUCKET, dags_test, offline_airflow
from local_cloud.aws.iam import (
    INSTANCE_PROFILE_KEY,
    LAMBDA_KEY,
    POD_KEY,
    POLICIES,
    WORKER_KEY,
    Check,
    allows,
    credentials,
    load_policy,
    s3_checks,
)
from local_cloud.process import running_emulator
from local_cloud.server import ACCOUNT, REGION, client
from tests.conftest import BANK, ROOT

BUCKET = "iam-test-storage"
VALUES = {"BUCKET": BUCKET, "LOG_BUCKET": LOG_BUCKET, "REGION": REGION, "ACCOUNT": ACCOUNT}


def _statements(name: str):
    return load_policy(POLICIES / name, VALUES)


def test_docs_show_the_policy_files_the_emulator_enforces():
    shown = []
    for doc in ("docs/aws.md", "docs/kubernetes.md"):
        for block in re.findall(r"```json\n(.*?)```", (ROOT / doc).read_text(), re.DOTALL):
            if '"Statement"' in block:
                shown.append(json.loads(block))
    files = [json.loads(path.read_text()) for path in sorted(POLICIES.glob("*.json"))]
    assert sorted(map(json.dumps, shown)) == sorted(map(json.dumps, files))


def test_s3_requests_become_the_checks_aws_makes():
    assert s3_checks("GET", "/b/k/x.csv", "", {}, b"") == [
        Check("s3:GetObject", "arn:aws:s3:::b/k/x.csv", {})
    ]
    listing = s3_checks("GET", "/b", "list-type=2&prefix=ml-scaling%2Fmodels%2F", {}, b"")
    assert listing == [Check("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "ml-scaling/models/"})]
    copy = s3_checks("PUT", "/b/new", "", {"x-amz-copy-source": "/b/old%20name"}, b"")
    assert copy == [
        Check("s3:PutObject", "arn:aws:s3:::b/new", {}),
        Check("s3:GetObject", "arn:aws:s3:::b/old name", {}),
    ]
    body = b"<Delete><Object><Key>a/1</Key></Object><Object><Key>a/2</Key></Object></Delete>"
    assert [c.resource for c in s3_checks("POST", "/b", "delete=", {}, body)] == [
        "arn:aws:s3:::b/a/1",
        "arn:aws:s3:::b/a/2",
    ]


def test_conditions_scope_the_worker_to_its_own_clusters_and_roles():
    worker = _statements("airflow-worker.json")
    run = "elasticmapreduce:RunJobFlow"
    assert allows(worker, Check(run, "*", {"aws:RequestTag/project": "ml-scaling"}))
    assert not allows(worker, Check(run, "*", {}))  # untagged: refused
    cluster = f"arn:aws:elasticmapreduce:{REGION}:{ACCOUNT}:cluster/j-1"
    other = {"elasticmapreduce:ResourceTag/project": "someone-else"}
    assert not allows(worker, Check("elasticmapreduce:TerminateJobFlows", cluster, other))
    admin = f"arn:aws:iam::{ACCOUNT}:role/Admin"
    assert not allows(worker, Check("iam:PassRole", admin, {"iam:PassedToService": "ec2.amazonaws.com"}))
    # The Lambda role lists its own prefix only: a missing champion is a 404, not a 403.
    spot = _statements("spot-predictions-role.json")
    assert allows(
        spot, Check("s3:ListBucket", f"arn:aws:s3:::{BUCKET}", {"s3:prefix": "ml-scaling/models/x/"})
    )
    assert not allows(spot, Check("s3:ListBucket", f"arn:aws:s3:::{BUCKET}", {"s3:prefix": ""}))


def test_a_policy_the_emulator_cannot_evaluate_is_refused(tmp_path):
    doc = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                          "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}  # fmt: skip
    (tmp_path / "p.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="cannot evaluate condition operator IpAddress"):
        load_policy(tmp_path / "p.json", VALUES)


@pytest.mark.emulator
def test_each_workload_has_what_its_policy_grants_and_no_more(tmp_path):
    with running_emulator(
        tmp_path, [BUCKET, LOG_BUCKET], [LAMBDA_ROLE], iam=(BUCKET, LOG_BUCKET)
    ) as endpoint:
        client(endpoint, "s3").put_object(Bucket=BUCKET, Key="ml-scaling/models/m/champion.json", Body=b"{}")

        def s3(key: str):
            return client(endpoint, "s3", credentials(key))

        def denied(call, **kwargs) -> bool:
            try:
                call(**kwargs)
            except botocore.exceptions.ClientError as exc:
                return exc.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")
            return False

        champion = {"Bucket": BUCKET, "Key": "ml-scaling/models/m/champion.json"}
        assert s3(LAMBDA_KEY).get_object(**champion)["Body"].read() == b"{}"
        assert denied(s3(LAMBDA_KEY).put_object, Body=b"x", **champion)  # the function only reads models
        assert denied(
            s3(POD_KEY).get_object, Bucket=BUCKET, Key="data/bank/bank.csv"
        )  # pods: not the raw data
        s3(INSTANCE_PROFILE_KEY).put_object(Body=b"v", **champion)
        assert denied(s3(INSTANCE_PROFILE_KEY).put_object, Bucket=BUCKET, Key="ml-scaling/code/x", Body=b"x")
        missing = {"Bucket": BUCKET, "Key": "ml-scaling/models/none/champion.json"}
        with pytest.raises(botocore.exceptions.ClientError, match="404|NoSuchKey"):
            s3(LAMBDA_KEY).head_object(**missing)
        assert denied(client(endpoint, "emr", credentials(WORKER_KEY)).list_clusters)


@pytest.mark.emulator
def test_without_the_workers_s3_statement_ship_code_fails_with_access_denied(tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    worker = json.loads((policies / "airflow-worker.json").read_text())
    worker["Statement"] = [s for s in worker["Statement"] if s["Sid"] != "ShipCodeAndPromote"]
    (policies / "airflow-worker.json").write_text(json.dumps(worker))
    root = f"s3://{BUCKET}/ml-scaling"
    (tmp_path / "home").mkdir()
    with offline_airflow(tmp_path / "home", root, BANK, policies=policies) as (env, _):
        code, output, states = dags_test(env, "nightly_training", {}, "2026-11-20")
    assert code != 0
    # Access denied is not retried: the policy must change first.
    assert states["validate_input"] == "success" and states["ship_code"] == "failed", states
    assert "up_for_retry" not in output.lower()
    assert "error: access denied (Forbidden): the role this job runs as" in output
    worker = "assumed-role/ml-scaling-airflow-worker/local s3:GetObject"
    assert (
        # ship_code's first read: the Lambda package CI shipped, looked up before any cluster.
        f"AccessDenied: arn:aws:sts::{ACCOUNT}:{worker} arn:aws:s3:::{BUCKET}/ml-scaling/lambda/"
        in (tmp_path / "home" / "emulator.log").read_text()
    )
