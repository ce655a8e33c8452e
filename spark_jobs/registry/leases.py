"""One writer at a time: a claim on what a run is about to write, taken before any work.

A lease is a small JSON object next to what it guards (a model version id, a day's scoring
partition), created only if none exists: an exclusive create locally, a conditional PUT
(`If-None-Match: *`) on S3, so of two runs starting at once exactly one gets it and the other
fails at once, naming the holder. The holder renews it while it works (a compare-and-swap on its
tag, every quarter of its lifetime) and removes it at the end; a run that crashed stops renewing,
so its claim expires within one lifetime and the next run takes it over. The same run (its
Airflow run id) may take over its own claim at once: that is what a retry after a killed attempt
needs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import socket
import threading
from types import TracebackType
from typing import Any

from spark_jobs import storage
from spark_jobs.errors import RegistryError

log = logging.getLogger("spark_jobs.registry.leases")
LIFETIME = 10 * 60  # seconds without a renewal after which a claim may be taken over


class ClaimedError(RegistryError):
    """Another run holds the claim: it is writing the same version or partition right now."""


def holder_id(run_id: str | None) -> str:
    """Who claims: the orchestrator's run id, or for a run without one, a one-off id (two manual
    runs are never the same holder)."""
    return run_id if run_id and run_id != "manual" else f"manual-{secrets.token_hex(6)}"


class Lease:
    """`with Lease(uri, holder, what):` holds the claim at `uri` for the block."""

    def __init__(self, uri: str, holder: str, what: str, lifetime: float = LIFETIME):
        self.uri, self.holder, self.what, self.lifetime = uri, holder, what, lifetime
        self.token = secrets.token_hex(8)
        self._tag: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost = False

    def __enter__(self) -> Lease:
        data = self._document()
        if storage.create_exclusive(self.uri, data):
            self._tag = _tag_of(self.uri, self.token)
        else:
            self._take_over(data)
        self._renewer = threading.Thread(target=self._renew_until_stopped, daemon=True)
        self._renewer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        current = storage.read_tagged(self.uri)
        if current is not None and json.loads(current[0]).get("token") == self.token:
            storage.remove_tree(self.uri)
        if self.lost and kind is None:
            raise ClaimedError(f"{self.what}: this run's claim was taken over while it worked")

    def _document(self) -> bytes:
        now = dt.datetime.now(dt.UTC)
        return storage.dump_json(
            {
                "holder": self.holder,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "token": self.token,
                "renewed_at": now.isoformat(timespec="milliseconds"),
                "expires_at": (now + dt.timedelta(seconds=self.lifetime)).isoformat(timespec="milliseconds"),
            }
        )

    def _take_over(self, data: bytes) -> None:
        current = storage.read_tagged(self.uri)
        if current is None and storage.create_exclusive(self.uri, data):  # released in between
            self._tag = _tag_of(self.uri, self.token)
            return
        current = current or storage.read_tagged(self.uri)
        lease: dict[str, Any] = json.loads(current[0]) if current else {}
        if current and (_expired(lease) or lease.get("holder") == self.holder):
            if storage.replace_if(self.uri, data, current[1]):
                log.info("took over the claim on %s from %s", self.what, lease.get("holder"))
                self._tag = _tag_of(self.uri, self.token)
                return
            lease = json.loads((storage.read_tagged(self.uri) or (b"{}", ""))[0])
        raise ClaimedError(
            f"{self.what} is being written by {lease.get('holder', 'another run')} (host "
            f"{lease.get('host')}, pid {lease.get('pid')}; its claim runs until {lease.get('expires_at')} "
            "unless renewed): refusing to write it at the same time"
        )

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.lifetime / 4):
            data = self._document()
            if not storage.replace_if(self.uri, data, self._tag):
                self.lost = True
                log.error("lost the claim on %s: another run took it over", self.what)
                return
            self._tag = _tag_of(self.uri, self.token)


def _tag_of(uri: str, token: str) -> str | None:
    current = storage.read_tagged(uri)
    return current[1] if current and json.loads(current[0]).get("token") == token else None


def _expired(lease: dict[str, Any]) -> bool:
    expires = lease.get("expires_at")
    return not expires or dt.datetime.fromisoformat(expires) <= dt.datetime.now(dt.UTC)


def is_free(uri: str) -> bool:
    """Whether nobody holds the lease at `uri` now (none there, or expired)."""
    current = storage.read_tagged(uri)
    return current is None or _expired(json.loads(current[0]))
