"""The emulator's Kubernetes pod API: validated pods run as containers (podman or docker, built from
their Dockerfiles) or, with no engine, as local processes, with a kubelet's status."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from decimal import Decimal
from pathlib import Path

import kubernetes
import psutil
import pytest
from kubernetes.client import ApiException

from local_cloud.aws.validation import read_journal
from local_cloud.kubernetes.api import kubeconfig
from local_cloud.kubernetes.containers import LABEL, find_engine
from local_cloud.kubernetes.images import parse_dockerfile, repository
from local_cloud.kubernetes.selectors import parse_label_selector
from local_cloud.kubernetes.units import parse_quantity
from local_cloud.process import ROOT

NS = "local-cloud-tests"
TOOLS = "registry.example.com:5000/local-cloud-test/tools:1.0"
ROOTED = "local-cloud-test/rooted@sha256:" + "0" * 64
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z ")


ENGINE = find_engine()
NEEDS_ENGINE = pytest.mark.skipif(ENGINE is None, reason="no container engine (podman or docker)")


def _with_namespace(core: kubernetes.client.CoreV1Api) -> kubernetes.client.CoreV1Api:
    """The tests' namespace, created as on a cluster before any pod is sent to it."""
    try:
        core.create_namespace({"metadata": {"name": NS}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    return core


@pytest.fixture(scope="module")
def core(emulator):
    api = kubernetes.config.new_client_from_config_dict(kubeconfig(emulator, NS))
    return _with_namespace(kubernetes.client.CoreV1Api(api))


@pytest.fixture(scope="module")
def process_core(tmp_path_factory, test_images):
    """An emulator whose pods run as host processes: the fallback when no engine is found."""
    from local_cloud.server import serve

    folder = tmp_path_factory.mktemp("process-pods")
    emulator = serve(0, None, folder / "lambda", images=test_images, pods_dir=folder, pod_runtime="process")
    try:
        api = kubernetes.config.new_client_from_config_dict(kubeconfig(emulator.endpoint, NS))
        yield _with_namespace(kubernetes.client.CoreV1Api(api)), folder
    finally:
        emulator.shutdown()


def _alive(container_id: str) -> bool:
    """Whether a container (or, for the fallback, its host process) still exists."""
    kind, _, ident = container_id.partition("://")
    if kind == "local":
        return psutil.pid_exists(int(ident))
    assert ENGINE is not None and kind == ENGINE.name, container_id
    return bool(ENGINE("ps", "--all", "--quiet", "--no-trunc", "--filter", f"id={ident}").strip())


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _pod(
    name: str, script: str | None = None, image: str = TOOLS, labels=None, container=None, **spec
) -> dict:
    base = {"name": "base", "image": image, **({"args": [script]} if script else {}), **(container or {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"restartPolicy": "Never", "containers": [base], **spec},
    }


def _create(core, body: dict) -> str:
    return core.create_namespaced_pod(NS, body).metadata.name


def _wait(core, name: str, predicate, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        pod = core.read_namespaced_pod(name, NS)
        if predicate(pod):
            return pod
        assert time.monotonic() < deadline, f"pod {name} never got there: {pod.status}"
        time.sleep(0.1)


def _done(pod) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


def _waiting(reason: str):
    def check(pod) -> bool:
        statuses = pod.status.container_statuses or []
        return (
            bool(statuses)
            and statuses[0].state.waiting is not None
            and statuses[0].state.waiting.reason == reason
        )

    return check


def _events(core, name: str) -> list[tuple[str, str, str]]:
    items = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}").items
    return [(e.type, e.reason, e.message) for e in items]


def _log(core, name: str, **params) -> str:
    # Not preloaded: client 36 turns a preloaded text/plain body into "b'...'" (a real API server's too).
    return core.read_namespaced_pod_log(name, NS, _preload_content=False, **params).data.decode()


def _status(exc: pytest.ExceptionInfo) -> dict:
    return json.loads(exc.value.body)


# --- without the emulator -------------------------------------------------------------------


def test_the_job_image_dockerfile_is_read_as_docker_would_build_it():
    image = parse_dockerfile(ROOT / "docker" / "jobs.Dockerfile")
    assert image.entrypoint == ("python", "-m", "spark_jobs")
    assert image.cmd == ("--help",)
    assert image.workdir == "/app"
    assert image.uid == 10001
    env = dict(image.env)
    assert env["HOME"] == env["TMPDIR"] == "/scratch"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_the_last_stage_decides_with_args_env_and_continuations_as_docker_reads_them(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM python:3.11 AS build\n"
        "ENV STAGE=build\n"
        'CMD ["build"]\n'
        "FROM python:3.11-slim\n"
        'ARG HOME_DIR="/srv/app"\n'
        "ENV LEGACY a value with spaces\n"
        "ENV APP_HOME=${HOME_DIR} \\\n"
        "# a comment inside the continuation\n"
        "    MODE=$HOME_DIR/mode\n"
        "WORKDIR $HOME_DIR\n"
        "WORKDIR sub\n"
        "USER 10001:0\n"
        "CMD echo hi\n"
        'ENTRYPOINT ["python", "-m", "job"]\n'
    )
    image = parse_dockerfile(dockerfile)
    env = dict(image.env)
    assert "STAGE" not in env  # the first stage's ENV is not the image's
    assert env == {"LEGACY": "a value with spaces", "APP_HOME": "/srv/app", "MODE": "/srv/app/mode"}
    assert (image.workdir, image.uid) == ("/srv/app/sub", 10001)
    # CMD set in this stage survives a later ENTRYPOINT; the shell form runs under /bin/sh -c.
    assert image.entrypoint == ("python", "-m", "job") and image.cmd == ("/bin/sh", "-c", "echo hi")


def test_quantities_and_image_references_parse_as_kubernetes_does():
    assert parse_quantity("64Mi") == 64 * 2**20
    assert parse_quantity("1G") == 10**9
    assert parse_quantity("500m") == Decimal("0.5")
    assert parse_quantity(2) == 2
    assert parse_quantity("1e3") == 1000
    with pytest.raises(ValueError, match="must match the regular expression"):
        parse_quantity("lots")
    assert repository("123.dkr.ecr.us-east-1.amazonaws.com/ml-scaling-jobs:2026.1") == "ml-scaling-jobs"
    assert repository("localhost:5000/team/tools@sha256:abc") == "team/tools"
    assert repository("team/tools:1") == "team/tools"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=a", {"a"}),
        ("app==a", {"a"}),
        ("app!=a", {"b", "c"}),
        ("tier", {"a", "b"}),
        ("!tier", {"c"}),
        ("app in (a, b)", {"a", "b"}),
        ("app notin (a,b)", {"c"}),
        ("app in (a,b),tier!=y", {"a"}),
    ],
)
def test_label_selectors(selector, expected):
    labels = {"a": {"app": "a", "tier": "x"}, "b": {"app": "b", "tier": "y"}, "c": {"app": "c"}}
    assert {k for k, v in labels.items() if parse_label_selector(selector)(v)} == expected


# --- through the kubernetes client ----------------------------------------------------------


def test_create_read_list_delete_journalled_once_each(core, kubernetes_journal):
    name = _create(core, _pod(_name("crud"), "import time; time.sleep(30)", labels={"suite": "crud"}))
    assert core.read_namespaced_pod(name, NS).metadata.uid
    listed = core.list_namespaced_pod(NS, field_selector=f"metadata.name={name}").items
    assert [p.metadata.name for p in listed] == [name]
    assert name in [
        p.metadata.name for p in core.list_pod_for_all_namespaces(label_selector="suite=crud").items
    ]
    core.delete_namespaced_pod(name, NS, body=kubernetes.client.V1DeleteOptions(grace_period_seconds=1))
    with pytest.raises(ApiException) as info:
        core.read_namespaced_pod(name, NS)
    assert info.value.status == 404 and _status(info)["reason"] == "NotFound"
    mine = [e for e in read_journal(kubernetes_journal) if e["pod"] == name]
    assert [e["status"] for e in mine if e["method"] == "POST"] == [201]
    assert [e["status"] for e in mine if e["method"] == "DELETE"] == [200]
    assert mine[-1] == {
        "method": "GET",
        "path": f"/api/v1/namespaces/{NS}/pods/{name}",
        "namespace": NS,
        "pod": name,
        "status": 404,
    }


def test_routes_answer_as_the_api_server_a_slash_optional_a_wrong_method_405_an_unknown_path_404(core):
    client = core.api_client

    def call(method: str, path: str) -> int:
        try:
            return int(client.call_api(path, method, _preload_content=False).status)
        except ApiException as exc:
            assert json.loads(exc.body)["kind"] == "Status"
            return int(exc.status)

    assert call("GET", f"/api/v1/namespaces/{NS}/pods/") == 200
    assert call("GET", "/version/") == 200
    assert call("PUT", f"/api/v1/namespaces/{NS}/pods/some-pod") == 405
    assert call("POST", "/version") == 405
    assert call("GET", "/api/v1/nodes") == 404
    assert call("GET", f"/api/v1/namespaces/{NS}/pods/some-pod/exec") == 404


def test_generate_name_and_a_duplicate_name(core):
    body = _pod("", "pass")
    body["metadata"] = {"generateName": "gen-"}
    name = _create(core, body)
    assert re.fullmatch(r"gen-[a-z0-9]{5}", name)
    with pytest.raises(ApiException) as info:
        _create(core, _pod(name, "pass"))
    assert info.value.status == 409 and _status(info)["reason"] == "AlreadyExists"


def test_a_pod_that_prints_and_exits_0_succeeds_and_its_log_streams_with_timestamps(core):
    script = "import time\nfor i in range(3):\n    print(f'line {i}')\n    time.sleep(0.4)"
    name = _create(core, _pod(_name("ok"), script))
    _wait(core, name, lambda p: p.status.phase != "Pending")
    response = core.read_namespaced_pod_log(
        name, NS, container="base", follow=True, timestamps=True, _preload_content=False
    )
    chunks = list(response.stream())
    assert len(chunks) >= 2, "the log came in one piece: it was not streamed"
    lines = b"".join(chunks).decode().splitlines()
    assert [STAMP.sub("", line) for line in lines] == ["line 0", "line 1", "line 2"]
    assert all(STAMP.match(line) for line in lines)
    pod = _wait(core, name, _done)
    assert pod.status.phase == "Succeeded"
    state = pod.status.container_statuses[0].state.terminated
    assert (state.exit_code, state.reason) == (0, "Completed")
    assert state.started_at and state.finished_at and pod.status.start_time and pod.status.pod_ip
    assert {c.type: c.status for c in pod.status.conditions}["PodScheduled"] == "True"
    normal = [reason for kind, reason, _ in _events(core, name) if kind == "Normal"]
    assert normal == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]
    # Not followed: the whole log at once, and the tail of it.
    assert _log(core, name) == "line 0\nline 1\nline 2\n"
    assert _log(core, name, tail_lines=1) == "line 2\n"
    assert _log(core, name, since_seconds=3600).count("line") == 3


def test_the_image_cmd_runs_when_the_pod_gives_no_args_and_a_wrong_container_is_refused(core):
    name = _create(core, _pod(_name("cmd")))
    _wait(core, name, _done)
    assert _log(core, name) == "the image CMD ran\n"
    with pytest.raises(ApiException) as info:
        _log(core, name, container="nope")
    assert info.value.status == 400 and "container nope is not valid" in _status(info)["message"]


def test_a_pod_that_exits_3_fails_with_its_exit_code(core):
    name = _create(core, _pod(_name("fail"), "import sys; print('bad'); sys.exit(3)"))
    pod = _wait(core, name, _done)
    assert pod.status.phase == "Failed"
    state = pod.status.container_statuses[0].state.terminated
    assert (state.exit_code, state.reason) == (3, "Error")
    assert pod.status.container_statuses[0].restart_count == 0


def test_a_container_over_its_memory_limit_is_oom_killed(core):
    _assert_oom_killed(core)


def test_without_an_engine_a_process_tree_over_the_memory_limit_is_oom_killed(process_core):
    _assert_oom_killed(process_core[0])


def _assert_oom_killed(core):
    hog = (
        "import time\nblocks = []\n"
        "for _ in range(100):\n    blocks.append(b'x' * (8 << 20))\n    time.sleep(0.02)"  # up to 800 MB
    )
    limits = {"resources": {"limits": {"memory": "64Mi", "cpu": "500m"}}}
    name = _create(core, _pod(_name("oom"), hog, container=limits))
    pod = _wait(core, name, _done)
    assert pod.status.phase == "Failed"
    state = pod.status.container_statuses[0].state.terminated
    assert (state.exit_code, state.reason) == (137, "OOMKilled")
    assert any(kind == "Warning" and reason == "OOMKilling" for kind, reason, _ in _events(core, name))


def test_active_deadline_seconds_fails_the_pod(core):
    name = _create(core, _pod(_name("deadline"), "import time; time.sleep(60)", activeDeadlineSeconds=1))
    pod = _wait(core, name, _done)
    assert (pod.status.phase, pod.status.reason) == ("Failed", "DeadlineExceeded")
    assert "deadline" in pod.status.message
    assert any(reason == "DeadlineExceeded" for _, reason, _ in _events(core, name))


def test_an_unknown_image_cannot_be_pulled_and_the_pod_stays_pending(core):
    image = "docker.io/library/no-such-image:1"
    name = _create(core, _pod(_name("pull"), image=image))
    pod = _wait(core, name, _waiting("ImagePullBackOff"))
    assert pod.status.phase == "Pending"
    warnings = [message for kind, reason, message in _events(core, name) if kind == "Warning"]
    assert any(m.startswith(f'Failed to pull image "{image}"') for m in warnings)
    assert "Error: ErrImagePull" in warnings and "Error: ImagePullBackOff" in warnings
    with pytest.raises(ApiException) as info:
        core.read_namespaced_pod_log(name, NS)
    assert (
        info.value.status == 400 and "is waiting to start: image can't be pulled" in _status(info)["message"]
    )
    core.delete_namespaced_pod(name, NS)


def test_run_as_non_root_refuses_an_image_that_runs_as_root(core):
    non_root = {"securityContext": {"runAsNonRoot": True}}
    rooted = _create(
        core, _pod(_name("root"), "print('ran')", image=ROOTED, securityContext=non_root["securityContext"])
    )
    pod = _wait(core, rooted, _waiting("CreateContainerConfigError"))
    assert pod.status.phase == "Pending"
    waiting = pod.status.container_statuses[0].state.waiting
    assert waiting.message.startswith("container has runAsNonRoot and image will run as root")
    # The same policy on the image with a numeric non-root USER, or with runAsUser, runs.
    tools = _create(core, _pod(_name("nonroot"), "print('ran')", container=non_root))
    as_user = {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000}}
    rooted_as_user = _create(core, _pod(_name("asuser"), "print('ran')", image=ROOTED, container=as_user))
    for name in (tools, rooted_as_user):
        assert _wait(core, name, _done).status.phase == "Succeeded"
    core.delete_namespaced_pod(rooted, NS)


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (
            {"resources": {"limits": {"memory": "lots"}}},
            "spec.containers[0].resources.limits.memory",
            "quantities must match",
        ),
        ({"name": None}, "spec.containers[0].name", "'name' is a required property"),
        ({"bogus": 1}, "spec.containers[0]", "('bogus' was unexpected)"),
        ({"name": "Not_A_Label"}, "spec.containers[0].name", "RFC 1123 label"),
        (
            {"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            "spec.containers[0].volumeMounts[0].name",
            "Not found",
        ),
    ],
)
def test_an_invalid_pod_is_refused_with_422_and_not_created(core, kubernetes_journal, change, field, problem):
    body = _pod(_name("invalid"), "print('should not run')")
    container = body["spec"]["containers"][0]
    container.update(change)
    if container["name"] is None:
        del container["name"]
    name = body["metadata"]["name"]
    with pytest.raises(ApiException) as info:
        _create(core, body)
    status = _status(info)
    assert info.value.status == 422 and (status["kind"], status["reason"]) == ("Status", "Invalid")
    assert status["message"].startswith(f'Pod "{name}" is invalid: {field}') and problem in status["message"]
    assert core.list_namespaced_pod(NS, field_selector=f"metadata.name={name}").items == []
    assert [e["status"] for e in read_journal(kubernetes_journal) if e["pod"] == name] == [422]


def test_an_invalid_name_and_an_unsupported_volume_are_refused(core):
    with pytest.raises(ApiException) as info:
        _create(core, _pod("Bad_Name", "pass"))
    assert info.value.status == 422 and "metadata.name" in _status(info)["message"]
    body = _pod(_name("hostpath"), "pass", volumes=[{"name": "host", "hostPath": {"path": "/etc"}}])
    with pytest.raises(ApiException) as info:
        _create(core, body)
    assert info.value.status == 422 and "emptyDir volumes only" in _status(info)["message"]


def test_label_and_field_selectors_and_label_patches(core):
    suite = uuid.uuid4().hex[:8]
    names = {}
    for app, tier in (("a", "x"), ("b", "y"), ("c", None)):
        labels = {"suite": suite, "app": app, **({"tier": tier} if tier else {})}
        names[app] = _create(core, _pod(_name(f"sel-{app}"), "pass", labels=labels))

    def found(selector: str, field: str = "") -> set[str]:
        pods = core.list_namespaced_pod(NS, label_selector=f"suite={suite},{selector}", field_selector=field)
        return {next(k for k, v in names.items() if v == p.metadata.name) for p in pods.items}

    assert found("app in (a,b),tier!=y") == {"a"}
    assert found("!tier") == {"c"}
    assert found("app notin (a)", field=f"metadata.name={names['b']}") == {"b"}
    for name in names.values():
        _wait(core, name, _done)
    assert found("tier", field="status.phase=Succeeded") == {"a", "b"}
    # The operator's patch (a strategic merge patch) and selector: a checked pod is not found again.
    core.patch_namespaced_pod(names["a"], NS, {"metadata": {"labels": {"already_checked": "True"}}})
    assert found("already_checked!=True,!airflow-worker") == {"b", "c"}
    core.patch_namespaced_pod(
        names["a"],
        NS,
        {"metadata": {"labels": {"already_checked": None}}},
        _content_type="application/merge-patch+json",
    )
    assert "already_checked" not in core.read_namespaced_pod(names["a"], NS).metadata.labels
    # A JSON patch (RFC 6902; the client sends a list as one), its failed test refused whole.
    core.patch_namespaced_pod(names["a"], NS, [{"op": "add", "path": "/metadata/labels/seen", "value": "1"}])
    assert core.read_namespaced_pod(names["a"], NS).metadata.labels["seen"] == "1"
    refused = [
        {"op": "replace", "path": "/metadata/labels/seen", "value": "2"},
        {"op": "test", "path": "/metadata/labels/app", "value": "z"},
    ]
    with pytest.raises(ApiException) as info:
        core.patch_namespaced_pod(names["a"], NS, refused)
    assert info.value.status == 422 and "test" in json.loads(info.value.body)["message"]
    assert core.read_namespaced_pod(names["a"], NS).metadata.labels["seen"] == "1"
    with pytest.raises(ApiException) as info:
        core.list_namespaced_pod(NS, label_selector="app in a")
    assert info.value.status == 400


def test_events_are_selected_by_involved_object(core, kubernetes_journal):
    first = _create(core, _pod(_name("ev1"), "pass"))
    second = _create(core, _pod(_name("ev2"), "pass"))
    for name in (first, second):
        _wait(core, name, _done)
    events = core.list_namespaced_event(
        NS, field_selector=f"involvedObject.name={first},involvedObject.kind=Pod"
    )
    assert events.items and {e.involved_object.name for e in events.items} == {first}
    started = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={second},reason=Started")
    assert [e.message for e in started.items] == ["Started container base"]
    assert started.items[0].involved_object.field_path == "spec.containers{base}"
    asked = [e for e in read_journal(kubernetes_journal) if e["path"].endswith("/events")]
    assert {first, second} <= {e["pod"] for e in asked}


def test_delete_stops_a_running_container_even_one_that_ignores_sigterm(core):
    script = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up')\ntime.sleep(60)"
    name = _create(core, _pod(_name("del"), script))
    pod = _wait(core, name, lambda p: p.status.phase == "Running")
    container_id = pod.status.container_statuses[0].container_id
    assert _alive(container_id)
    started = time.monotonic()
    core.delete_namespaced_pod(name, NS, grace_period_seconds=1)
    assert not _alive(container_id)
    assert time.monotonic() - started < 8
    with pytest.raises(ApiException) as info:
        core.read_namespaced_pod(name, NS)
    assert info.value.status == 404


def test_without_an_engine_the_pods_env_reaches_a_process_and_mount_paths_are_rewritten(process_core):
    core, pods = process_core
    script = (
        "import json, os, sys\n"
        "open(os.path.join(os.environ['TMPDIR'], 'proof.txt'), 'w').write('written')\n"
        "print(json.dumps({'env': dict(os.environ), 'argv': sys.argv[1:], 'cwd': os.getcwd()}))"
    )
    env = [
        {"name": "OUTPUT", "value": "/scratch/out"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "WHERE", "value": "$(POD_NAME) in $(NAMESPACE_UNSET)"},
    ]
    container = {
        "args": [script, "/scratch/arg.txt", "--flag"],
        "env": env,
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
    }
    name = _create(
        core, _pod(_name("env"), container=container, volumes=[{"name": "scratch", "emptyDir": {}}])
    )
    assert _wait(core, name, _done).status.phase == "Succeeded"
    seen = json.loads(_log(core, name))
    scratch = pods / NS / name / "volumes" / "scratch"
    env_seen = seen["env"]
    assert env_seen["HOME"] == env_seen["TMPDIR"] == str(scratch)  # the image's ENV, rewritten
    assert env_seen["OUTPUT"] == f"{scratch}/out"
    assert env_seen["GREETING"] == "hello from the image"
    assert env_seen["POD_NAME"] == env_seen["HOSTNAME"] == name
    assert env_seen["WHERE"] == f"{name} in $(NAMESPACE_UNSET)"
    assert seen["argv"] == [f"{scratch}/arg.txt", "--flag"]
    assert Path(seen["cwd"]) == ROOT and env_seen["PYTHONPATH"] == str(ROOT)
    assert (scratch / "proof.txt").read_text() == "written"
    image_and_pod = {"PYTHONUNBUFFERED", "HOME", "TMPDIR", "GREETING", "OUTPUT", "POD_NAME", "WHERE"}
    runtime = {"PATH", "JAVA_HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "HOSTNAME", "PYTHONPATH"}
    # What the node gives every pod, as EKS does (the region, the role's credentials): the emulator.
    node = {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
    assert env_seen["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert set(env_seen) <= image_and_pod | runtime | node, "the host's environment leaked into the pod"
    pulled = [m for _, reason, m in _events(core, name) if reason == "Pulled"]
    assert pulled and "pods run as host processes: no container engine" in pulled[0]


SNOOP = (
    "import json, os, socket, sys\n"
    "status = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
    "try:\n    open('/etc/written', 'w')\n    root = 'writable'\n"
    "except OSError as exc:\n    root = exc.strerror\n"
    "open('/scratch/proof.txt', 'w').write('written')\n"
    "print(json.dumps({'env': dict(os.environ), 'argv': sys.argv[1:], 'cwd': os.getcwd(), 'uid': os.getuid(),"
    " 'caps': status['CapEff'].strip(), 'nnp': status['NoNewPrivs'].strip(), 'root': root,"
    " 'ip': socket.gethostbyname(socket.gethostname())}))"
)


@pytest.mark.containers
@NEEDS_ENGINE
def test_a_pod_runs_in_a_container_with_its_security_context_env_and_volumes(core, emulator_dir):
    env = [
        {"name": "OUTPUT", "value": "/scratch/out"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "WHERE", "value": "$(POD_NAME) in $(NAMESPACE_UNSET)"},
    ]
    restricted = {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
    }
    container = {
        "args": [SNOOP, "/scratch/arg.txt", "--flag"],
        "env": env,
        "securityContext": restricted,
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
    }
    name = _create(
        core, _pod(_name("ctr"), container=container, volumes=[{"name": "scratch", "emptyDir": {}}])
    )
    pod = _wait(core, name, _done, timeout=60)
    assert pod.status.phase == "Succeeded", _log(core, name)
    assert pod.status.container_statuses[0].container_id.startswith(f"{ENGINE.name}://")
    seen = json.loads(_log(core, name))
    env_seen = seen["env"]
    # The image's ENV, WORKDIR and USER; the pod's env, not rewritten: the paths are the container's.
    assert env_seen["HOME"] == env_seen["TMPDIR"] == "/scratch" and seen["cwd"] == "/app"
    assert env_seen["GREETING"] == "hello from the image" and env_seen["OUTPUT"] == "/scratch/out"
    assert env_seen["POD_NAME"] == env_seen["HOSTNAME"] == name
    assert env_seen["WHERE"] == f"{name} in $(NAMESPACE_UNSET)"
    assert env_seen["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert seen["argv"] == ["/scratch/arg.txt", "--flag"]
    assert (seen["uid"], seen["caps"], seen["nnp"]) == (10001, "0000000000000000", "1")
    assert seen["root"] == "Read-only file system" and seen["ip"] == "127.0.0.1"  # the pod's IP
    scratch = emulator_dir / "pods" / NS / name / "volumes" / "scratch"
    assert (scratch / "proof.txt").read_text() == "written"
    assert not any(k.startswith(("PYTEST", "VIRTUAL_ENV", "UV_")) for k in env_seen), "the host's env leaked"
    pulled = [m for _, reason, m in _events(core, name) if reason == "Pulled"]
    assert pulled and f"pods run as containers ({ENGINE.name})" in pulled[0]


@pytest.mark.containers
@NEEDS_ENGINE
def test_an_image_that_does_not_build_cannot_be_pulled(tmp_path):
    from local_cloud.server import serve

    broken = tmp_path / "broken.Dockerfile"
    broken.write_text("FROM python:3.11-slim\nRUN exit 7\n")
    emulator = serve(0, None, tmp_path / "lambda", images={"broken": broken}, pods_dir=tmp_path / "pods")
    try:
        core = _with_namespace(
            kubernetes.client.CoreV1Api(
                kubernetes.config.new_client_from_config_dict(kubeconfig(emulator.endpoint, NS))
            )
        )
        name = _create(core, _pod(_name("broken"), image="broken:1"))
        pod = _wait(core, name, _waiting("ImagePullBackOff"), timeout=60)
        assert "building broken.Dockerfile failed" in pod.status.container_statuses[0].state.waiting.message
    finally:
        emulator.shutdown()


@pytest.mark.containers
@NEEDS_ENGINE
def test_containers_a_killed_emulator_left_are_removed_by_the_next(tmp_path, test_images):
    from local_cloud.server import serve

    pods = tmp_path / "pods"
    pods.mkdir()
    label = f"{LABEL}={pods.resolve()}"
    # What a SIGKILLed emulator leaves: a running container carrying its label.
    ENGINE(
        "run",
        "-d",
        "--rm",
        "--network",
        "host",
        "--label",
        label,
        "--name",
        f"left-{uuid.uuid4().hex[:6]}",
        "--entrypoint",
        "sleep",
        "python:3.11-slim",
        "300",
    )
    assert ENGINE("ps", "--quiet", "--filter", f"label={label}").strip()
    emulator = serve(0, None, tmp_path / "lambda", images=test_images, pods_dir=pods)
    emulator.shutdown()
    assert not ENGINE("ps", "--all", "--quiet", "--filter", f"label={label}").strip()


def test_the_providers_pod_manager_follows_logs_and_awaits_completion(core):
    from airflow.providers.cncf.kubernetes.utils.pod_manager import PodManager
    from kubernetes.client import models as k8s

    script = "import time\nfor i in range(3):\n    print(f'step {i}', flush=True)\n    time.sleep(0.3)"
    pod = k8s.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=k8s.V1ObjectMeta(
            name=_name("manager"), namespace=NS, labels={"airflow_kpo_in_cluster": "False"}
        ),
        spec=k8s.V1PodSpec(
            restart_policy="Never",
            containers=[k8s.V1Container(name="base", image=TOOLS, args=[script])],
        ),
    )
    manager = PodManager(kube_client=core)
    logged: list[str] = []
    manager._log_message = lambda message, *args, **kwargs: logged.append(message)  # type: ignore[method-assign]
    manager.create_pod(pod)
    asyncio.run(manager.await_pod_start(pod, startup_timeout=30, check_interval=0.2))
    statuses = manager.fetch_requested_container_logs(pod, containers="base", follow_logs=True)
    # (The provider's consumer leaves the stream's final newline on the last message.)
    assert [m.rstrip("\n") for m in logged] == ["step 0", "step 1", "step 2"]
    assert statuses[0].running is False and statuses[0].last_log_time is not None
    remote = manager.await_pod_completion(pod)
    assert remote.status.phase == "Succeeded"
    assert [e.reason for e in manager.read_pod_events(pod).items][:2] == ["Scheduled", "Pulling"]
    manager.delete_pod(pod)
    manager.delete_pod(pod)  # already gone: the provider's 404 is not an error


def test_a_kubernetes_connection_from_the_kubeconfig_works_with_the_providers_hook(emulator, monkeypatch):
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    connection = {
        "conn_type": "kubernetes",
        "extra": {"kube_config": json.dumps(kubeconfig(emulator, NS)), "namespace": NS},
    }
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_EMULATOR", json.dumps(connection))
    hook = KubernetesHook(conn_id="kubernetes_emulator")
    assert hook.get_namespace() == NS
    ok, message = hook.test_connection()
    assert ok, message
    v1 = hook.core_v1_client
    name = _name("hook")
    v1.create_namespaced_pod(
        hook.get_namespace(), _pod(name, "import time; time.sleep(30)", labels={"via": "hook"})
    )
    assert hook.get_pod(name, NS).metadata.labels == {"via": "hook"}
    listed = json.loads(hook.get_namespaced_pod_list("via=hook", namespace=NS).data)  # not preloaded
    assert [p["metadata"]["name"] for p in listed["items"]] == [name]
    v1.delete_namespaced_pod(name, NS, grace_period_seconds=0)
    with pytest.raises(ApiException):
        hook.get_pod(name, NS)


def test_shutdown_stops_every_pod_process(tmp_path, test_images):
    from local_cloud.server import serve

    emulator = serve(0, None, tmp_path / "lambda", images=test_images, pods_dir=tmp_path / "pods")
    try:
        core = kubernetes.client.CoreV1Api(
            kubernetes.config.new_client_from_config_dict(kubeconfig(emulator.endpoint))
        )
        core.create_namespaced_pod("default", _pod("sleeper", "import time; time.sleep(60)"))
        pod = _wait_in(core, "sleeper", "default")
        container_id = pod.status.container_statuses[0].container_id
        assert _alive(container_id)
    finally:
        emulator.shutdown()
    assert not _alive(container_id)


def _wait_in(core, name: str, namespace: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while (pod := core.read_namespaced_pod(name, namespace)).status.phase != "Running":
        assert time.monotonic() < deadline, pod.status
        time.sleep(0.1)
    return pod
