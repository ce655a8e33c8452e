"""What the emulator keeps between runs: the Lambda functions, versions and aliases.

moto keeps everything in memory, but `make run` deploys the spot-predictions function in one
emulator and `local_cloud.run spot_predictions` invokes it in the next. Each successful request
that changes a function is appended to a log (code blobs stored once by checksum) and replayed,
in order, into a new emulator before it serves, so versions and aliases come back as they were.
S3 objects are kept by local_cloud.aws.s3.

Not moto's own recorder (moto_api's `recorder`): it records every request, reads and failures
included, so a replay would invoke the functions again; it writes each code zip whole into every
line that carries it; and it replays over HTTP to a server that is already serving, without
checking the answers. Here only what changed a function is kept, and a replay that fails stops
the emulator from starting.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Response

from local_cloud.aws.validation import Checked

DURABLE = {
    "lambda": {
        "CreateFunction",
        "UpdateFunctionCode",
        "UpdateFunctionConfiguration",
        "PublishVersion",
        "CreateAlias",
        "UpdateAlias",
        "DeleteAlias",
        "DeleteFunction",
    }
}
_KEPT_HEADERS = ("HTTP_AUTHORIZATION", "HTTP_X_AMZ_DATE", "CONTENT_TYPE", "HTTP_HOST")


def store_blob(folder: Path, data: bytes) -> str:
    """Keep `data` once in `folder`, named by its sha256 (written whole or not at all); the name."""
    name = hashlib.sha256(data).hexdigest()
    path = folder / name
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return name


class DurableState:
    def __init__(self, folder: Path):
        self._log = folder / "requests.jsonl"
        self._blobs = folder / "blobs"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, checked: Checked, environ: dict[str, Any], body: bytes) -> None:
        """Called after a request succeeded: keep it if it changed durable state."""
        if checked.operation not in DURABLE.get(checked.service, ()):
            return
        entry = {
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("PATH_INFO", ""),
            "query": environ.get("QUERY_STRING", ""),
            "headers": {k: environ[k] for k in _KEPT_HEADERS if k in environ},
            "body": self._externalise(body),
        }
        with self._lock, self._log.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")

    def replay(self, app: Callable[..., Any]) -> int:
        """Send every recorded request to `app` (moto), oldest first; return how many."""
        count = 0
        for entry in self._entries():
            environ = EnvironBuilder(
                path=entry["path"],
                method=entry["method"],
                query_string=entry["query"],
                data=self._internalise(entry["body"]),
            ).get_environ()
            environ.update(entry["headers"])
            response = Response.from_app(app, environ)
            if response.status_code >= 300:
                raise RuntimeError(
                    f"replaying {entry['method']} {entry['path']} failed: {response.get_data(as_text=True)}"
                )
            count += 1
        return count

    def _entries(self) -> Iterator[dict[str, Any]]:
        if self._log.exists():
            for line in self._log.read_text().splitlines():
                if line:
                    yield json.loads(line)

    def _externalise(self, body: bytes) -> str:
        """The body with any inline ZipFile replaced by a reference to a blob stored once."""
        doc = json.loads(body) if body else {}
        code = doc.get("Code", doc)
        if isinstance(code, dict) and isinstance(code.get("ZipFile"), str):
            code["ZipFile"] = {"blob": store_blob(self._blobs, base64.b64decode(code["ZipFile"]))}
        return json.dumps(doc)

    def _internalise(self, text: str) -> bytes:
        doc = json.loads(text)
        code = doc.get("Code", doc)
        if isinstance(code, dict) and isinstance(code.get("ZipFile"), dict):
            code["ZipFile"] = base64.b64encode((self._blobs / code["ZipFile"]["blob"]).read_bytes()).decode()
        return json.dumps(doc).encode() if doc else b""
