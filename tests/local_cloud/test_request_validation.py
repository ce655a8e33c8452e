"""The emulator refuses what AWS would refuse: botocore validation of every EMR request."""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from scaling_platform.emr import ClusterSettings, job_flow_overrides

from local_cloud.server import client
from local_cloud.validation import read_journal


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
    request = job_flow_overrides(ClusterSettings(name="ok", log_uri="s3://logs/emr/"), dag_id="d", run_id="r")
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
