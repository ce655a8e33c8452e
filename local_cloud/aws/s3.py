"""The emulator's S3 on disk: what one run wrote, the next run, `make airflow` and `make show` read.

moto keeps objects in memory. Here every bucket and object is written through to a folder after
each request that may change S3 (a PUT, POST or DELETE signed for s3), and put back into a new
emulator before it serves. Object bodies are stored once by checksum under `objects/`; `index.json`
maps bucket -> key -> body and content type. Keys are never turned into file names, so any key
S3 allows (`a` beside `a/b`, `a//b`, a trailing `/`) survives.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from local_cloud.aws.state import store_blob
from local_cloud.aws.validation import credential_service

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_CHANGES = {"PUT", "POST", "DELETE"}


class S3State:
    def __init__(self, folder: Path, account: str):
        self._folder = folder
        self._objects = folder / "objects"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._index_file = folder / "index.json"
        self._account = account
        self._lock = threading.Lock()
        self._restoring = False
        self._index: dict[str, dict[str, dict[str, str]]] = (
            json.loads(self._index_file.read_text()) if self._index_file.exists() else {}
        )

    def restore(self, s3: S3Client) -> int:
        """Create the kept buckets and objects through `s3` (a client of the new emulator, before
        anyone else knows its endpoint); return how many objects."""
        count = 0
        existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        self._restoring = True  # the objects are on disk already: no save per object
        try:
            for bucket, keys in self._index.items():
                if bucket not in existing:
                    s3.create_bucket(Bucket=bucket)
                for key, entry in keys.items():
                    body = (self._objects / entry["sha256"]).read_bytes()
                    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=entry["content_type"])
                    count += 1
        finally:
            self._restoring = False
        self.save()
        self._drop_unreferenced()
        return count

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Requests that change S3 are not saved meanwhile: before `restore`, moto holds none of
        the kept objects, and a save would write that emptiness over them."""
        self._restoring = True
        try:
            yield
        finally:
            self._restoring = False

    def middleware(self, app: Callable[..., Any]) -> Callable[..., Any]:
        """`app` (moto), saving S3 after each successful request that may have changed it."""

        def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if (
                self._restoring
                or environ.get("REQUEST_METHOD") not in _CHANGES
                or credential_service(environ) != "s3"
            ):
                return cast(Iterable[bytes], app(environ, start_response))
            status: list[str] = []

            def capture(code: str, headers: list[Any], exc_info: Any = None) -> Any:
                status.append(code)
                return start_response(code, headers, exc_info) if exc_info else start_response(code, headers)

            result = list(app(environ, capture))  # the response is complete before it is saved
            if status and status[0].startswith("2"):
                self.save()
            return result

        return wrapped

    def save(self) -> None:
        """Write what moto holds now: new and changed objects, and drop removed ones."""
        from moto.s3.models import s3_backends

        with self._lock:
            index: dict[str, dict[str, dict[str, str]]] = {}
            for name, bucket in list(s3_backends[self._account]["aws"].buckets.items()):
                index[name] = {}
                for key, obj in _latest(bucket):
                    old = self._index.get(name, {}).get(key)
                    if old is not None and old["etag"] == obj.etag:
                        index[name][key] = old
                        continue
                    digest = store_blob(self._objects, obj.value)
                    content_type = obj.metadata.get("Content-Type") or "binary/octet-stream"
                    index[name][key] = {"sha256": digest, "etag": obj.etag, "content_type": content_type}
            if index != self._index:
                tmp = self._index_file.with_suffix(".tmp")
                tmp.write_text(json.dumps(index))
                tmp.replace(self._index_file)
                self._index = index

    def _drop_unreferenced(self) -> None:
        used = {entry["sha256"] for keys in self._index.values() for entry in keys.values()}
        for path in self._objects.iterdir():
            if path.name not in used:
                path.unlink(missing_ok=True)


def _latest(bucket: Any) -> list[tuple[str, Any]]:
    """The bucket's current objects (moto's key store may change while it is read: read again)."""
    for _ in range(10):
        with contextlib.suppress(RuntimeError):
            return [(key, obj) for key, obj in list(bucket.keys.items()) if hasattr(obj, "etag")]
    raise RuntimeError(f"could not read bucket {bucket.name}: it kept changing")
