"""Container logs in the CRI format the container runtime writes (the kubelet writes them, the
API serves them: follow, timestamps, since, tail)."""

from __future__ import annotations

import calendar
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from local_cloud.kubernetes.status import ApiError
from local_cloud.kubernetes.units import rfc3339_nano

LOG_POLL = 0.1  # seconds between two looks at a followed log


class LogWriter:
    """A container's log in the CRI format: `<RFC3339Nano> <stream> <F|P> <content>` per record."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._fh = path.open("ab")

    def write(self, stream: str, chunk: bytes) -> None:
        tag, content = (b"F", chunk[:-1]) if chunk.endswith(b"\n") else (b"P", chunk)
        stamp = rfc3339_nano(time.time_ns()).encode()
        with self._lock:
            self._fh.write(b"%s %s %s %s\n" % (stamp, stream.encode(), tag, content))
            self._fh.flush()

    def pump(self, stream: str, pipe: IO[bytes]) -> None:
        """Copy a pipe line by line until the process closes it."""
        with pipe:
            for line in iter(pipe.readline, b""):
                self.write(stream, line)

    def close(self) -> None:
        with self._lock:
            self._fh.close()


@dataclass(frozen=True)
class LogRecord:
    ns: int
    stamp: str
    content: bytes
    complete: bool

    def render(self, timestamps: bool) -> bytes:
        line = self.content + (b"\n" if self.complete else b"")
        return self.stamp.encode() + b" " + line if timestamps else line


def parse_records(data: bytes) -> list[LogRecord]:
    """Log records from complete lines of a CRI log file."""
    records = []
    for line in data.splitlines():
        stamp, _, rest = line.partition(b" ")
        _stream, _, rest = rest.partition(b" ")
        tag, _, content = rest.partition(b" ")
        records.append(LogRecord(_stamp_ns(stamp.decode()), stamp.decode(), content, tag == b"F"))
    return records


def _stamp_ns(stamp: str) -> int:
    base, _, fraction = stamp.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])


WAITING_TEXT = {
    "ErrImagePull": "trying and failing to pull image",
    "ImagePullBackOff": "image can't be pulled",
}


def follow(
    path: Path, done: Callable[[], bool], *, follow: bool, since_ns: int | None, tail: int | None
) -> Iterator[list[LogRecord]]:
    """Batches of a container's log records; with `follow`, until the container has terminated."""
    offset, first = 0, True
    while True:
        finished = done()  # looked at before reading, so the last read sees everything
        data = b""
        if path.exists():
            with path.open("rb") as fh:
                fh.seek(offset)
                data = fh.read()
        complete = data[: data.rfind(b"\n") + 1]  # a record half-written stays for the next read
        offset += len(complete)
        records = [r for r in parse_records(complete) if since_ns is None or r.ns >= since_ns]
        if first and tail is not None:
            records = records[-tail:] if tail > 0 else []
        first = False
        if records:
            yield records
        if not follow or finished:
            return
        time.sleep(LOG_POLL)


def render(batches: Iterator[list[LogRecord]], timestamps: bool, limit: int | None) -> Iterator[bytes]:
    sent = 0
    for records in batches:
        chunk = b"".join(r.render(timestamps) for r in records)
        if limit is not None:
            chunk = chunk[: max(0, limit - sent)]
        sent += len(chunk)
        if chunk:
            yield chunk
        if limit is not None and sent >= limit:
            return


def since(query: Mapping[str, str]) -> int | None:
    if "sinceSeconds" in query and "sinceTime" in query:
        raise ApiError(422, "Invalid", "at most one of sinceTime or sinceSeconds may be specified")
    if "sinceSeconds" in query:
        seconds = int(query["sinceSeconds"])
        if seconds < 1:
            raise ApiError(422, "Invalid", "sinceSeconds: Invalid value: must be greater than 0")
        return time.time_ns() - seconds * 1_000_000_000
    if "sinceTime" in query:
        from datetime import datetime

        try:
            moment = datetime.fromisoformat(query["sinceTime"].replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(400, "BadRequest", f"invalid sinceTime {query['sinceTime']!r}") from None
        return int(moment.timestamp()) * 1_000_000_000  # metav1.Time: second precision
    return None
