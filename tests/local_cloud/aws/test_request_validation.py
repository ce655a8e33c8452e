"""The emulator refuses what AWS would refuse: botocore validation of every EMR request."""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from scaling_platform.emr import MANAGED_POLICY_TAG, ClusterSettings, job_flow_overrides

from local_cloud.aws.validation import read_journal
from local_cloud.process import SECURITY_CONFIGURATION
from local_cloud.server import client
from tests.conftest import in_network


def _unchecked_emr(endpoint):
    """A client that sends whatever it is given, as a non-boto client or a bug could."""
    return client(endpoint, "emr", config=Config(parameter_validation=False))


def test_an_invalid_request_is_refused_and_never_reaches_the_backend(emulator, emulator_journal):
    emr = _unchecked_emr(emulator)
    before = len(emr.list_clusters()["Clusters"])
    request = job_flow_overrides(
        ClusterSettings(name="bad", log_uri="s3://logs/emr/"), dag_id="d", run_id="r"
    )
    request["Instances"]["InstanceGroups"][0]["InstanceCount"] = "one"
    del request["Name"]

    with pytest.raises(ClientError) as refused:
        emr.run_job_flow(**request)

    error = refused.value.response["Error"]
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "ValidationException"
    assert 'Missing required parameter in input: "Name"' in error["Message"]
    assert "Instances.InstanceGroups[0].InstanceCount" in error["Message"]
    assert len(emr.list_clusters()["Clusters"]) == before
    last = read_journal(emulator_journal)[-2]  # the ListClusters after it is the last
    assert last["operation"] == "RunJobFlow" and "InstanceCount" in last["error"]


def test_valid_requests_pass_and_are_journaled(emulator, emulator_journal):
    emr = _unchecked_emr(emulator)
    request = job_flow_overrides(
        ClusterSettings(name="ok", log_uri="s3://logs/emr/", **in_network()), dag_id="d", run_id="r"
    )
    cluster_id = emr.run_job_flow(**request)["JobFlowId"]
    emr.terminate_job_flows(JobFlowIds=[cluster_id])
    entries = read_journal(emulator_journal)[-2:]
    assert [(e["service"], e["operation"], e["error"]) for e in entries] == [
        ("emr", "RunJobFlow", None),
        ("emr", "TerminateJobFlows", None),
    ]


def test_a_restarted_emulator_is_found_at_its_own_address(tmp_path):
    from local_cloud.process import running_emulator

    (tmp_path / "endpoint").write_text("http://127.0.0.1:9")  # left by an earlier emulator
    with running_emulator(tmp_path, buckets=[]) as endpoint:
        assert endpoint != "http://127.0.0.1:9"
        assert _unchecked_emr(endpoint).list_clusters()["Clusters"] == []


def _tagged(resource_type, tag=True):
    tags = [{"Key": MANAGED_POLICY_TAG, "Value": "true"}] if tag else [{"Key": "team", "Value": "ml"}]
    return [{"ResourceType": resource_type, "Tags": tags}]


def _network(endpoint, tag=True):
    ec2 = client(endpoint, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24", TagSpecifications=_tagged("subnet", tag))[
        "Subnet"
    ]["SubnetId"]
    groups = tuple(
        ec2.create_security_group(
            GroupName=f"emr-{name}-{vpc}",
            Description=name,
            VpcId=vpc,
            TagSpecifications=_tagged("security-group", tag),
        )["GroupId"]
        for name in ("primary", "nodes")
    )
    return subnet, groups


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ("unknown security configuration", "Security configuration 'no-such-config' does not exist"),
        ("no managed-policy tag", f"requires the cluster tag {MANAGED_POLICY_TAG}=true"),
        ("untagged subnet", f"lacks the tag {MANAGED_POLICY_TAG}=true"),
        ("unknown subnet", "The subnet ID 'subnet-0000000000' does not exist"),
        ("no subnet", "without one EMR uses the default VPC's subnet, which lacks the tag"),
        ("groups of another VPC", "is not in the VPC of the cluster's subnet"),
    ],
)
def test_emr_refuses_what_the_managed_role_and_security_configurations_need(emulator, change, refusal):
    """What EMR checks beyond the request's shape (local_cloud/aws/emr/rules.py); moto alone accepts all."""
    emr = _unchecked_emr(emulator)
    subnet, groups = _network(emulator, tag=change != "untagged subnet")
    settings = {
        "security_configuration": SECURITY_CONFIGURATION,
        "subnet_id": subnet,
        "security_groups": groups,
    }
    if change == "unknown security configuration":
        settings["security_configuration"] = "no-such-config"
    if change == "unknown subnet":
        settings["subnet_id"] = "subnet-0000000000"
    if change == "groups of another VPC":
        settings["security_groups"] = _network(emulator)[1]
    if change == "no subnet":
        settings["subnet_id"], settings["security_groups"] = None, ()
    request = job_flow_overrides(
        ClusterSettings(name="net", log_uri="s3://logs/emr/", **settings), dag_id="d", run_id="r"
    )
    if change == "no managed-policy tag":
        request["Tags"] = [t for t in request["Tags"] if t["Key"] != MANAGED_POLICY_TAG]
    before = len(emr.list_clusters()["Clusters"])

    with pytest.raises(ClientError) as refused:
        emr.run_job_flow(**request)

    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert refusal in refused.value.response["Error"]["Message"]
    assert len(emr.list_clusters()["Clusters"]) == before


def test_a_cluster_in_a_tagged_network_with_the_imdsv2_configuration_starts(emulator):
    emr = _unchecked_emr(emulator)
    subnet, groups = _network(emulator)
    request = job_flow_overrides(
        ClusterSettings(
            name="net",
            log_uri="s3://logs/emr/",
            security_configuration=SECURITY_CONFIGURATION,
            subnet_id=subnet,
            security_groups=groups,
        ),
        dag_id="d",
        run_id="r",
    )
    cluster_id = emr.run_job_flow(**request)["JobFlowId"]
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert cluster["SecurityConfiguration"] == SECURITY_CONFIGURATION
    config = emr.describe_security_configuration(Name=SECURITY_CONFIGURATION)["SecurityConfiguration"]
    assert '"MinimumInstanceMetadataServiceVersion": 2' in config
    emr.terminate_job_flows(JobFlowIds=[cluster_id])
