"""Where the jobs may read and write, and which names they take: checked before any work.

A location is a local path (offline) or `s3://bucket/key` (`s3a://` too, as Spark spells it).
Refused, each with the rule named:

- any other scheme (`http://`, `https://`, `ftp://`, `hdfs://`, ...): jobs read storage, they do not
  fetch from the network;
- `s3://` without a bucket, or with a bucket name S3 would not accept;
- a `..` segment, or a character that is not printable;
- a local path in a system folder (/proc, /sys, /dev, /etc, /boot, /run, /root, /var/run): the
  worker's own environment and secrets live there;
- when the deployment names allowed prefixes (environment ML_ALLOWED_PREFIXES, comma-separated;
  the DAGs pass the Variable ml_allowed_prefixes), any location not under one of them.

Model names are plain names (`bank-marketing`) and version ids plain ids (`nightly-20261120`):
neither can step out of the registry's folders.

Standard library only: the DAGs' tasks import it too.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Sequence

from spark_jobs.errors import JobError

ALLOWED_ENV = "ML_ALLOWED_PREFIXES"
SCHEMES = ("s3", "s3a")
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev", "/etc", "/boot", "/run", "/root", "/var/run")
MODEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
VERSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# S3's bucket naming rules (general purpose buckets).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SHOWN = 120


class LocationError(JobError):
    """A location or a name breaks one of the rules above; nothing was read or written."""

    exit_code = 2


def check_location(uri: str, what: str = "location", allowed: Sequence[str] | None = None) -> str:
    """`uri` if it is a location the jobs may use; else LocationError naming the rule.

    `allowed`: the prefixes it must be under (default: from ML_ALLOWED_PREFIXES; none: no limit).
    """
    shown = _show(uri)
    if not uri or not uri.isprintable():
        raise LocationError(f"{what} {shown}: must be a non-empty path or URI of printable characters")
    scheme, rest = uri.split("://", 1) if "://" in uri else ("", uri)
    if scheme in ("", "file"):
        path = rest if scheme else uri
        if scheme and not path.startswith("/"):
            raise LocationError(f"{what} {shown}: a file:// URI must name an absolute path")
        _no_parent_steps(path, what, shown)
        resolved = os.path.realpath(os.path.abspath(path))
        for folder in SYSTEM_FOLDERS:
            if resolved == folder or resolved.startswith(folder + "/"):
                raise LocationError(f"{what} {shown}: {folder} is a system folder, not storage")
        return _under(uri, resolved, what, shown, allowed)
    if scheme not in SCHEMES:
        raise LocationError(
            f"{what} {shown}: the jobs read and write storage (a folder, or s3://bucket/...), "
            f"they do not fetch {scheme}:// URIs; copy the data into storage first"
        )
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise LocationError(f"{what} {shown}: s3:// needs a bucket (s3://bucket/prefix)")
    if not _BUCKET.match(bucket):
        raise LocationError(f"{what} {shown}: {bucket!r} is not a valid S3 bucket name")
    _no_parent_steps(key, what, shown)
    return _under(uri, f"s3://{bucket}/{key}".rstrip("/"), what, shown, allowed)


def check_name(name: str, what: str = "model name") -> str:
    """A model name: lower-case letters, digits, '-' and '_'; no '/' and no '..'."""
    if not MODEL_NAME.match(name or ""):
        raise LocationError(
            f"{what} {_show(name)}: use lower-case letters, digits, '-' and '_' (at most 64), "
            "starting with a letter or digit"
        )
    return name


def check_version(version: str) -> str:
    """A version id: letters, digits, '.', '-' and '_'; no '/' and no '..'."""
    if not VERSION_ID.match(version or "") or ".." in version:
        raise LocationError(
            f"version id {_show(version)}: use letters, digits, '.', '-' and '_' (at most 128), "
            "starting with a letter or digit"
        )
    return version


def allowed_prefixes(text: str | None = None) -> list[str]:
    """The allowed prefixes from `text` (comma- or newline-separated) or ML_ALLOWED_PREFIXES."""
    raw = os.environ.get(ALLOWED_ENV, "") if text is None else text
    return [p.strip() for p in re.split(r"[,\n]", raw) if p.strip()]


def argument(what: str) -> Callable[[str], str]:
    """An argparse `type=` for a location: the CLI refuses a bad one before doing anything."""

    def parse(text: str) -> str:
        try:
            return check_location(text, what)
        except LocationError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def storage_root_option(parser: argparse.ArgumentParser) -> None:
    """The `--storage-root` option of the job CLIs that default to ./storage."""
    parser.add_argument(
        "--storage-root",
        default="storage",
        type=argument("storage root"),
        help="storage root URI (default: ./storage)",
    )


def name_argument(text: str) -> str:
    """An argparse `type=` for a model name."""
    try:
        return check_name(text)
    except LocationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def version_argument(text: str) -> str:
    """An argparse `type=` for a version id."""
    try:
        return check_version(text)
    except LocationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def optional_version(text: str) -> str | None:
    """An argparse `type=` for a version id that may be empty (empty: the champion)."""
    return version_argument(text) if text else None


def _no_parent_steps(path: str, what: str, shown: str) -> None:
    if ".." in path.split("/"):
        raise LocationError(f"{what} {shown}: '..' may not appear in a location")


def _under(uri: str, normal: str, what: str, shown: str, allowed: Sequence[str] | None) -> str:
    prefixes = allowed_prefixes() if allowed is None else list(allowed)
    if not prefixes:
        return uri
    for prefix in prefixes:
        base = _normal(prefix)
        if normal == base or normal.startswith(base.rstrip("/") + "/"):
            return uri
    raise LocationError(
        f"{what} {shown}: not under an allowed prefix ({', '.join(map(_show, prefixes))}); "
        f"the deployment allows only those ({ALLOWED_ENV} / Variable ml_allowed_prefixes)"
    )


def _normal(prefix: str) -> str:
    if "://" not in prefix or prefix.startswith("file://"):
        return os.path.realpath(os.path.abspath(prefix.removeprefix("file://")))
    scheme, rest = prefix.split("://", 1)
    return f"s3://{rest.rstrip('/')}" if scheme in SCHEMES else prefix


def _show(text: str) -> str:
    """A location as a message shows it: quoted, at most _SHOWN characters."""
    text = text or ""
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")
