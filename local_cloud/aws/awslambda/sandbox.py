"""Lambda invocations offline: the function's own code, run by the real runtime interface client.

Each sandbox is one "container": a process running `awslambdaric` with the function's handler,
its unpacked code as the task root and its environment, talking to a small Runtime API served
here over HTTP/1.1 (the client hangs on HTTP/1.0). It runs on the interpreter of the function's
runtime (local_cloud.aws.awslambda.runtimes), and its import path is what Lambda's is: the task root,
then the runtime (awslambdaric and the boto3 that Lambda provides) and the standard library, not
this project's virtualenv; a handler that imports something its zip lacks, or a zip built for
another Python, fails as it would on AWS. A sandbox serves one invocation at a time and is kept
warm for the next, so what a handler loads once per container is loaded once here too.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from local_cloud.aws.awslambda.runtimes import RUNTIMES, Runtime, RuntimeMissing, prepare, runtime

API = "/2018-06-01/runtime"
LOG_TAIL_BYTES = 4096
INIT_TIMEOUT = 10.0


@dataclass
class FunctionVersion:
    """What a sandbox needs to know about the version it runs."""

    arn: str
    version: str
    runtime: str
    handler: str
    code: bytes
    code_sha256: str
    environment: dict[str, str]
    timeout: int
    memory_size: int

    @property
    def key(self) -> str:
        config: list[Any] = [self.arn, self.version, self.runtime, self.handler, self.code_sha256]
        config += [self.environment, self.timeout]
        return json.dumps(config, sort_keys=True)


@dataclass
class Outcome:
    payload: bytes
    error_type: str | None
    log: str
    duration_ms: float

    @property
    def log_tail(self) -> str:
        """The last 4 KB of the invocation's log, base64, as in X-Amz-Log-Result."""
        return base64.b64encode(self.log.encode()[-LOG_TAIL_BYTES:]).decode()


@dataclass
class _Invocation:
    request_id: str
    event: bytes
    deadline_ms: int
    done: threading.Event = field(default_factory=threading.Event)
    payload: bytes = b""
    error_type: str | None = None


class Sandbox:
    """One warm process running one function version."""

    def __init__(self, fn: FunctionVersion, workdir: Path, runtime: Runtime, extra_env: dict[str, str]):
        self.fn = fn
        self._events: queue.Queue[_Invocation] = queue.Queue()
        self._current: _Invocation | None = None
        self._init_error: bytes | None = None
        self._invoked = False  # the first invocation is the cold one
        self._ready_at: float | None = None  # when the runtime first asked for an event: init done
        self._api = _RuntimeApi(self)
        threading.Thread(target=self._api.serve_forever, name="lambda-runtime-api", daemon=True).start()
        task_root = _unpack(fn.code, fn.code_sha256, workdir / "code")
        self._log_path = workdir / "logs" / f"{uuid.uuid4().hex}.log"
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        env = extra_env | fn.environment | _reserved_env(fn, task_root, self._api.address)
        boot = (
            f"import sys; sys.path[:0] = [{str(task_root)!r}, {str(runtime.modules)!r}]; "
            "from awslambdaric.__main__ import main; main(sys.argv)"
        )
        with self._log_path.open("wb") as log:
            # -I -S: none of this project's paths or site-packages, only what Lambda would have.
            self._proc = subprocess.Popen(
                [runtime.interpreter, "-I", "-S", "-c", boot, fn.handler],
                cwd=task_root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._started = time.monotonic()

    def invoke(self, event: bytes) -> Outcome:
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        offset = self._log_path.stat().st_size
        cold, self._invoked = not self._invoked, True
        inv = _Invocation(request_id, event, int(time.time() * 1000) + self.fn.timeout * 1000)
        self._current = inv
        self._events.put(inv)
        while not inv.done.wait(0.02):
            # Lambda allows 10 s for init, then the function's timeout from when the handler starts.
            ready = self._ready_at
            deadline = started + INIT_TIMEOUT if ready is None else max(ready, started) + self.fn.timeout
            if self._init_error is not None:
                inv.payload, inv.error_type = self._init_error, "Unhandled"
                break
            if self._proc.poll() is not None:
                inv.payload = _error_payload(
                    "Runtime.ExitError", f"exited with status {self._proc.returncode}"
                )
                inv.error_type = "Unhandled"
                break
            if time.monotonic() > deadline:
                self.stop()
                message = f"Task timed out after {self.fn.timeout:.2f} seconds"
                inv.payload, inv.error_type = _error_payload("Sandbox.Timedout", message), "Unhandled"
                break
        self._current = None
        finished, ready = time.monotonic(), self._ready_at or started
        init_ms = (ready - self._started) * 1000 if cold else None
        duration = (finished - max(ready, started)) * 1000
        with self._log_path.open("rb") as fh:
            fh.seek(offset)
            text = fh.read().decode("utf-8", "replace")
        report = f"REPORT RequestId: {request_id}\tDuration: {max(duration, 0):.2f} ms"
        report += f"\tMemory Size: {self.fn.memory_size} MB"
        if init_ms is not None:
            report += f"\tInit Duration: {init_ms:.2f} ms"
        log = f"START RequestId: {request_id} Version: {self.fn.version}\n{text}END RequestId: {request_id}\n"
        return Outcome(inv.payload, inv.error_type, log + report + "\n", duration)

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None and self._init_error is None

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._api.shutdown()
        self._api.server_close()

    # -- called by the Runtime API -------------------------------------------------------------

    def next_event(self) -> _Invocation:
        if self._ready_at is None:
            self._ready_at = time.monotonic()
        return self._events.get()

    def finish(self, request_id: str, payload: bytes, error_type: str | None) -> bool:
        inv = self._current
        if inv is None or inv.request_id != request_id:
            return False
        inv.payload, inv.error_type = payload, error_type
        inv.done.set()
        return True

    def init_failed(self, payload: bytes) -> None:
        self._init_error = payload


class _RuntimeApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sandbox: Sandbox):
        super().__init__(("127.0.0.1", 0), _RuntimeHandler)
        self.sandbox = sandbox

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A sandbox killed (timeout, shutdown) drops its connection: expected, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _RuntimeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # awslambdaric keeps its connection open and hangs on 1.0
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms ACK wait
    server: _RuntimeApi

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path != f"{API}/invocation/next":
            return self._reply(404, {"errorMessage": f"unknown path {self.path}"})
        inv = self.server.sandbox.next_event()
        headers = {
            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
            "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.server.sandbox.fn.arn,
            "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0",
        }
        self._send(200, inv.event, headers)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = self.path.removeprefix(API).strip("/").split("/")
        sandbox = self.server.sandbox
        if parts == ["init", "error"]:
            sandbox.init_failed(body)
            return self._reply(202, {"status": "OK"})
        if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            error = None if parts[2] == "response" else "Unhandled"
            if sandbox.finish(parts[1], body, error):
                return self._reply(202, {"status": "OK"})
            return self._reply(400, {"errorMessage": f"unknown request id {parts[1]}"})
        self._reply(404, {"errorMessage": f"unknown path {self.path}"})

    def _reply(self, status: int, doc: dict[str, Any]) -> None:
        self._send(status, json.dumps(doc).encode(), {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in (headers | {"Content-Type": "application/json"}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class SandboxPool:
    """Warm sandboxes by function version; a new one when all of a version's are busy."""

    def __init__(self, workdir: Path, extra_env: dict[str, str], runtimes: Path = RUNTIMES):
        self._workdir = workdir
        self._extra_env = extra_env
        self._idle: dict[str, list[Sandbox]] = {}
        self._all: list[Sandbox] = []
        self._lock = threading.Lock()
        self._runtimes = runtimes
        self._preparing = threading.Lock()

    def invoke(self, fn: FunctionVersion, event: bytes) -> Outcome:
        with self._lock:
            idle = self._idle.setdefault(fn.key, [])
            sandbox = idle.pop() if idle else None
        if sandbox is None:
            sandbox = Sandbox(fn, self._workdir, self._runtime(fn.runtime), self._extra_env)
            with self._lock:
                self._all.append(sandbox)
        outcome = sandbox.invoke(event)
        if sandbox.alive:
            with self._lock:
                self._idle[fn.key].append(sandbox)
        else:
            sandbox.stop()
        return outcome

    def _runtime(self, name: str) -> Runtime:
        with self._preparing:
            try:
                return runtime(name, self._runtimes)
            except RuntimeMissing:
                return prepare(name, self._runtimes)

    def stop(self) -> None:
        with self._lock:
            sandboxes, self._all, self._idle = self._all, [], {}
        for sandbox in sandboxes:
            with contextlib.suppress(OSError):
                sandbox.stop()


def _unpack(code: bytes, sha: str, root: Path) -> Path:
    """The code zip unpacked once per checksum (written aside, then renamed into place)."""
    folder = root / sha.replace("/", "_").replace("+", "-").rstrip("=")
    if folder.exists():
        return folder
    partial = root / f".{folder.name}.{uuid.uuid4().hex}"
    with zipfile.ZipFile(io.BytesIO(code)) as zf:
        zf.extractall(partial)
    try:
        partial.rename(folder)
    except OSError:  # another sandbox unpacked it first
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def _reserved_env(fn: FunctionVersion, task_root: Path, api: str) -> dict[str, str]:
    name = fn.arn.split(":")[6]
    return {
        "AWS_LAMBDA_RUNTIME_API": api,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": fn.version,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{uuid.uuid4().hex}",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime}",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(task_root),
        "_HANDLER": fn.handler,
        "PYTHONUNBUFFERED": "1",
        "PATH": os.defpath,
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
    }


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()
