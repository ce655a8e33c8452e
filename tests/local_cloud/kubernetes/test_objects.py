"""What batch scoring needs on a cluster before any pod runs (k8s/scoring.yaml), and the emulator's
API for it: namespaces, service accounts, quotas and RBAC objects, validated and enforced as an
API server does."""

from __future__ import annotations

import json
from decimal import Decimal

import kubernetes
import kubernetes_validate
import pytest
import yaml
from kubernetes.client import ApiClient, ApiException
from scaling_platform.batch_scoring import SERVICE_ACCOUNT, PodSize, scoring_arguments, scoring_pod
from scaling_platform.pod_operators import JobPodOperator

from local_cloud.kubernetes import quota
from local_cloud.kubernetes.api import kubeconfig
from local_cloud.kubernetes.manifests import ManifestError, apply
from local_cloud.process import MANIFESTS, ROOT

DOCS = [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text())]


def _by_kind(kind: str) -> list[dict]:
    return [d for d in DOCS if d["kind"] == kind]


def _status(exc: pytest.ExceptionInfo[ApiException]) -> dict:
    return json.loads(exc.value.body)


def scoring_pod_body(namespace: str) -> dict:
    """The pod batch_scoring's operator sends, as the API receives it."""
    op = JobPodOperator(task_id="score", arguments=scoring_arguments(_WHERE), **scoring_pod())
    op.image, op.namespace = "ml-scaling-jobs:latest", namespace
    return ApiClient().sanitize_for_serialization(op.build_pod_request_obj(dry_run=True))


_WHERE = {
    "storage_root": "s3://ml-scaling-storage/ml-scaling",
    "model": "bank-marketing",
    "date": "2026-11-20",
    "input_uri": "s3://ml-scaling-storage/ml-scaling/incoming/bank-marketing/ds=2026-11-20",
    "model_version": "",
    "max_rejected_ratio": 0.05,
    "run_id": "scheduled__2026-11-20",
}


# --- the manifests, without a cluster ----------------------------------------------------------


def test_every_manifest_passes_the_kubernetes_schemas_strictly():
    assert {d["kind"] for d in DOCS} == {
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ResourceQuota",
    }
    for doc in DOCS:
        kubernetes_validate.validate(doc, "1.37.0", strict=True)


def test_the_manifests_name_what_the_dag_and_the_emulators_iam_use():
    (namespace,) = _by_kind("Namespace")
    assert "'ml-scaling'" in scoring_pod()["namespace"]  # Variable ml_k8s_namespace's default
    assert namespace["metadata"]["name"] == "ml-scaling"
    assert {d["metadata"].get("namespace") for d in DOCS if d["kind"] != "Namespace"} == {"ml-scaling"}
    (account,) = _by_kind("ServiceAccount")
    assert account["metadata"]["name"] == SERVICE_ACCOUNT
    assert account["automountServiceAccountToken"] is False
    role_arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    # The role whose policy (aws/iam/scoring-pod-role.json) the emulator holds the pods to.
    assert role_arn.endswith(":role/ml-scaling-jobs")
    (role,), (binding,) = _by_kind("Role"), _by_kind("RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }


def test_the_quota_admits_two_runs_of_the_largest_fan_out():
    """16 pods a run (the max_pods cap) of PodSize, two runs at once: admitted; one more is not."""
    (doc,) = _by_kind("ResourceQuota")
    spec = scoring_pod_body("ml-scaling")["spec"]
    two_runs = [spec] * 32
    quota.admit("the-32nd", spec, [doc], two_runs[:31])
    with pytest.raises(Exception, match="exceeded quota: ml-scaling-scoring"):
        quota.admit("the-33rd", spec, [doc], two_runs)
    assert quota.pod_usage(spec)["limits.memory"] == Decimal(2**30)
    assert quota.pod_usage(spec)["requests.cpu"] == Decimal(PodSize().cpu_request)


# --- the emulator's API ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(emulator):
    return kubernetes.config.new_client_from_config_dict(kubeconfig(emulator))


@pytest.fixture(scope="module")
def core(api):
    return kubernetes.client.CoreV1Api(api)


def test_the_emulator_starts_with_the_manifests_applied(api, core):
    account = core.read_namespaced_service_account(SERVICE_ACCOUNT, "ml-scaling")
    assert account.metadata.annotations["eks.amazonaws.com/role-arn"].endswith(":role/ml-scaling-jobs")
    assert account.automount_service_account_token is False
    # As on a cluster, the namespace got its default service account.
    assert core.read_namespaced_service_account("default", "ml-scaling").metadata.uid
    assert core.read_namespace("ml-scaling").status.phase == "Active"
    rbac = kubernetes.client.RbacAuthorizationV1Api(api)
    (role,) = rbac.list_namespaced_role("ml-scaling").items
    assert {r for rule in role.rules for r in rule.resources} == {"pods", "pods/log", "events"}
    assert (
        rbac.read_namespaced_role_binding(role.metadata.name, "ml-scaling").role_ref.name
        == role.metadata.name
    )
    status = core.read_namespaced_resource_quota("ml-scaling-scoring", "ml-scaling").status
    assert status.hard["pods"] == "32" and status.used["pods"] == "0"


def test_a_scoring_pod_whose_service_account_is_missing_is_refused(core):
    """A namespace without the manifests' service account: the API server refuses the pod (403),
    as a cluster does, and nothing runs."""
    core.create_namespace({"metadata": {"name": "no-scoring-account"}})
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod("no-scoring-account", scoring_pod_body("no-scoring-account"))
    assert exc.value.status == 403
    message = _status(exc)["message"]
    assert message.startswith('pods "batch-scoring-') and message.endswith(
        f"is forbidden: error looking up service account no-scoring-account/{SERVICE_ACCOUNT}: "
        f'serviceaccount "{SERVICE_ACCOUNT}" not found'
    )
    assert core.list_namespaced_pod("no-scoring-account").items == []


def test_a_pod_sent_to_a_namespace_that_does_not_exist_is_refused(core):
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod("nowhere", scoring_pod_body("nowhere"))
    assert exc.value.status == 404 and _status(exc)["message"] == 'namespaces "nowhere" not found'
    with pytest.raises(ApiException) as exc:
        core.read_namespace("nowhere")
    assert exc.value.status == 404


def _small_pod(name: str, resources: dict | None) -> dict:
    # Sleeps until deleted: a quota counts a pod until it ends.
    container = {
        "name": "base",
        "image": "local-cloud-test/tools:1.0",
        "args": ["import time; time.sleep(60)"],
    }
    if resources is not None:
        container["resources"] = resources
    return {"metadata": {"name": name}, "spec": {"restartPolicy": "Never", "containers": [container]}}


def test_a_quota_refuses_a_pod_that_does_not_say_what_it_uses_and_one_over_the_limit(core):
    ns = "quota-test"
    core.create_namespace({"metadata": {"name": ns}})
    core.create_namespaced_resource_quota(
        ns, {"metadata": {"name": "small"}, "spec": {"hard": {"pods": "1", "limits.memory": "256Mi"}}}
    )
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod(ns, _small_pod("unbounded", None))
    assert exc.value.status == 403
    assert _status(exc)["message"] == (
        'pods "unbounded" is forbidden: failed quota: small: must specify limits.memory for: base'
    )
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod(ns, _small_pod("greedy", {"limits": {"memory": "1Gi"}}))
    assert _status(exc)["message"] == (
        'pods "greedy" is forbidden: exceeded quota: small, requested: limits.memory=1Gi, '
        "used: limits.memory=0, limited: limits.memory=256Mi"
    )
    core.create_namespaced_pod(ns, _small_pod("fits", {"limits": {"memory": "128Mi"}}))
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod(ns, _small_pod("second", {"limits": {"memory": "64Mi"}}))
    assert _status(exc)["message"] == (
        'pods "second" is forbidden: exceeded quota: small, requested: pods=1, used: pods=1, limited: pods=1'
    )
    used = core.read_namespaced_resource_quota("small", ns).status.used
    assert used == {"pods": "1", "limits.memory": "128Mi"}
    core.delete_namespaced_pod("fits", ns, grace_period_seconds=0)
    assert core.read_namespaced_resource_quota("small", ns).status.used == {"pods": "0", "limits.memory": "0"}


def test_objects_are_validated_named_and_unique_as_on_a_cluster(api, core):
    rbac = kubernetes.client.RbacAuthorizationV1Api(api)
    core.create_namespace({"metadata": {"name": "objects-test"}})
    core.create_namespaced_service_account("objects-test", {"metadata": {"name": "reader"}})
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_service_account("objects-test", {"metadata": {"name": "reader"}})
    assert exc.value.status == 409 and _status(exc)["message"] == 'serviceaccounts "reader" already exists'
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_service_account("objects-test", {"metadata": {"name": "Not_A_Name"}})
    assert exc.value.status == 422 and "RFC 1123 subdomain" in _status(exc)["message"]
    with pytest.raises(ApiException) as exc:  # a field the schema does not have (strict, as the server)
        rbac.create_namespaced_role(
            "objects-test",
            {
                "metadata": {"name": "r"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verb": ["get"]}],
            },
        )
    assert exc.value.status == 422 and _status(exc)["details"]["kind"] == "Role"
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_resource_quota(
            "objects-test", {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "lots"}}}
        )
    assert exc.value.status == 422 and "spec.hard[pods]" in _status(exc)["message"]
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_service_account("no-such-namespace", {"metadata": {"name": "reader"}})
    assert exc.value.status == 404
    core.delete_namespaced_service_account("reader", "objects-test")
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_service_account("reader", "objects-test")
    assert exc.value.status == 404


def test_a_manifest_the_api_server_refuses_fails_naming_its_file(emulator, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: x\n  namespace: missing-ns\n")
    with pytest.raises(
        ManifestError, match=r'^bad.yaml: 404 Not Found: .*namespaces \\"missing-ns\\" not found'
    ):
        apply(emulator, [bad])
    assert (ROOT / "k8s" / "scoring.yaml") in MANIFESTS
