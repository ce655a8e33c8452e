"""Storage URIs through fsspec: a local folder offline, s3:// on AWS, the same calls for both."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any, cast

import fsspec
from fsspec.implementations.local import LocalFileSystem

_CHUNK = 1 << 20


def normalize(uri: str) -> str:
    """Make local paths absolute (Spark and fsspec then agree on them); leave other URIs alone."""
    if "://" not in uri:
        return os.path.abspath(uri)
    if uri.startswith("file://"):
        return os.path.abspath(uri[len("file://") :])
    return uri.rstrip("/")


def spark_uri(uri: str) -> str:
    """The URI to hand Spark: local paths get file:// so a cluster never resolves them on HDFS."""
    uri = normalize(uri)
    return uri if "://" in uri else "file://" + uri


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem and the path within it for a URI."""
    return cast(tuple[Any, str], fsspec.core.url_to_fs(normalize(uri)))


def is_local(uri: str) -> bool:
    return isinstance(filesystem(uri)[0], LocalFileSystem)


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return bool(fs.exists(path))


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    return bytes(fs.cat_file(path))


def write_bytes(uri: str, data: bytes) -> None:
    """Write a file whole: readers see the old content or the new one, never a torn write.

    Locally through a temporary file and rename; object stores (S3) replace objects
    atomically on PUT.
    """
    fs, path = filesystem(uri)
    if isinstance(fs, LocalFileSystem):
        _replace_local(path, lambda fh: fh.write(data))
    else:
        fs.pipe_file(path, data)


def put_file(local_path: str, uri: str) -> None:
    """Upload a (large) local file whole, as write_bytes does, without reading it into memory."""
    fs, path = filesystem(uri)
    if isinstance(fs, LocalFileSystem):

        def copy(fh: Any) -> None:
            with open(local_path, "rb") as src:
                shutil.copyfileobj(src, fh, _CHUNK)

        _replace_local(path, copy)
    else:
        fs.put_file(local_path, path)


def _replace_local(path: str, fill: Callable[[Any], object]) -> None:
    """Fill a temporary file next to `path`, then rename it over `path`."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        # mkstemp makes the file owner-only; registry files are read by other users
        # (Airflow workers, pods), so give them the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def create_exclusive(uri: str, data: bytes) -> bool:
    """Write `uri` only if nothing is there yet; False if something is. Atomic: locally a hard
    link of the whole file (which fails if the name exists), on S3 a conditional PUT
    (If-None-Match: *)."""
    fs, path = filesystem(uri)
    if isinstance(fs, LocalFileSystem):
        # Written whole under a temporary name, then hard-linked into place: link() fails if the
        # name exists, so a reader never sees the file half-written.
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True
    return _conditional_put(fs, path, data, IfNoneMatch="*")


def read_tagged(uri: str) -> tuple[bytes, str] | None:
    """An object's content and its version tag (S3's ETag; locally the content's sha256), or None
    if there is none: what `replace_if` compares against."""
    fs, path = filesystem(uri)
    try:
        if isinstance(fs, LocalFileSystem):
            with open(path, "rb") as fh:
                data = fh.read()
            return data, hashlib.sha256(data).hexdigest()
        from fsspec.asyn import sync

        return cast(tuple[bytes, str] | None, sync(fs.loop, _get_tagged, fs, *path.split("/", 1)))
    except FileNotFoundError:
        return None


async def _get_tagged(fs: Any, bucket: str, key: str) -> tuple[bytes, str]:
    """One GET: the content and the ETag of the same object version."""
    response = await fs._call_s3("get_object", Bucket=bucket, Key=key)
    async with response["Body"] as body:
        return bytes(await body.read()), str(response["ETag"])


def replace_if(uri: str, data: bytes, expected: str | None) -> bool:
    """Compare-and-swap: write `data` only if the object still has the tag `expected` (None: only if
    it still does not exist); False if another writer got there first. On S3 a conditional PUT
    (If-Match / If-None-Match); locally under an exclusive lock on a sibling lock file."""
    fs, path = filesystem(uri)
    if not isinstance(fs, LocalFileSystem):
        condition = {"IfMatch": expected} if expected is not None else {"IfNoneMatch": "*"}
        return _conditional_put(fs, path, data, **condition)
    import fcntl

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = read_tagged(uri)
        if (current[1] if current else None) != expected:
            return False
        _replace_local(path, lambda fh: fh.write(data))
        return True


def _conditional_put(fs: Any, path: str, data: bytes, **condition: str) -> bool:
    from botocore.exceptions import ClientError

    bucket, _, key = path.partition("/")
    try:
        fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **condition)
    except (ClientError, OSError) as exc:
        # 412 PreconditionFailed: the condition did not hold; 409: a concurrent conditional write.
        code = _error_code(exc)
        if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
            return False
        if "If-Match" in condition and code in ("NoSuchKey", "404"):
            return False
        raise
    fs.invalidate_cache(path)
    return True


def _error_code(exc: BaseException) -> str:
    """The S3 error code of a ClientError, or of the one s3fs translated into an OSError."""
    for error in (exc, exc.__cause__, exc.__context__):
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
    return ""


def sha256_of(fs: Any, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(uri: str) -> dict[str, str]:
    """Every file below a folder URI, keyed by its path relative to the folder, sorted."""
    fs, root = filesystem(uri)
    root = root.rstrip("/")
    found = fs.find(root)
    return {p[len(root) + 1 :]: p for p in sorted(found)}


def move_tree(src_uri: str, dst_uri: str, last: str) -> None:
    """Move a staged folder into place; the file named `last` arrives last.

    Locally this is one rename, which is atomic. On object stores each object is copied, so
    `last` (the manifest) is copied after everything else: a reader that trusts only folders
    with a manifest never sees a half-copied one.
    """
    fs, src = filesystem(src_uri)
    _, dst = filesystem(dst_uri)
    if isinstance(fs, LocalFileSystem):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.rename(src, dst)
        return
    files = list_files(src_uri)
    for rel in sorted(files, key=lambda r: r == last):
        fs.copy(files[rel], f"{dst}/{rel}")
    fs.rm(src, recursive=True)


def replace_tree(src_uri: str, dst_uri: str, last: str) -> None:
    """Move a staged folder into place, replacing what is there; never leaves a mix of the two.

    Locally the old folder is renamed aside (into a `_replaced` folder next to it, hidden from
    Spark readers) and the new one renamed in: each step is atomic, and between them the folder
    is briefly absent, never half-written. On object stores the old objects are deleted and the
    new ones copied with `last` (a completion marker) last.
    """
    fs, dst = filesystem(dst_uri)
    if not isinstance(fs, LocalFileSystem):
        remove_tree(dst_uri)
        move_tree(src_uri, dst_uri, last)
        return
    _, src = filesystem(src_uri)
    parent, name = os.path.split(dst)
    aside = None
    if os.path.exists(dst):
        aside = os.path.join(parent, "_replaced", f"{name}-{os.getpid()}-{os.urandom(4).hex()}")
        os.makedirs(os.path.dirname(aside), exist_ok=True)
        os.rename(dst, aside)
    os.makedirs(parent, exist_ok=True)
    os.rename(src, dst)
    if aside:
        shutil.rmtree(aside)


def remove_tree(uri: str) -> None:
    fs, path = filesystem(uri)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def dump_json(doc: Any) -> bytes:
    """Stable JSON for stored documents: sorted keys, so equal content gives equal checksums."""
    return json.dumps(doc, indent=1, sort_keys=True).encode()
