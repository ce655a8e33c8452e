"""One writer at a time: a claim is exclusive, renewed while held, taken over once expired or by
the same run's retry, and refused to anyone else with the holder named; locally and on S3."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from spark_jobs import storage
from spark_jobs.registry.leases import ClaimedError, Lease, is_free


@pytest.fixture(params=["local", "s3"])
def lease_uri(request, tmp_path):
    if request.param == "s3":
        request.getfixturevalue("s3_env")
        return f"s3://registry/{uuid.uuid4().hex}/_leases/v1.json"
    return str(tmp_path / "_leases" / "v1.json")


def test_a_second_writer_is_refused_with_the_holder_named_and_the_claim_goes_with_the_first(lease_uri):
    with Lease(lease_uri, "scheduled__2026-11-20", "version v1"):
        with pytest.raises(ClaimedError, match="version v1 is being written by scheduled__2026-11-20"):
            Lease(lease_uri, "manual__2026-11-20", "version v1").__enter__()
        assert not is_free(lease_uri)
    assert is_free(lease_uri) and not storage.exists(lease_uri)


def test_the_same_run_takes_its_claim_over_and_an_expired_claim_is_anyones(lease_uri):
    crashed = Lease(lease_uri, "run-a", "v1")
    crashed.__enter__()
    crashed._stop.set()  # it crashed: no more renewals, no release
    with Lease(lease_uri, "run-a", "v1"):  # its retry
        pass
    doc = {"holder": "run-b", "token": "t", "expires_at": "2026-01-01T00:00:00+00:00"}
    storage.write_bytes(lease_uri, json.dumps(doc).encode())
    assert is_free(lease_uri)
    with Lease(lease_uri, "run-c", "v1"):
        assert json.loads(storage.read_bytes(lease_uri))["holder"] == "run-c"


def test_a_held_claim_is_renewed_and_a_claim_taken_over_fails_its_holder(lease_uri):
    with Lease(lease_uri, "run-a", "v1", lifetime=0.8):
        first = json.loads(storage.read_bytes(lease_uri))["expires_at"]
        time.sleep(1.6)
        assert json.loads(storage.read_bytes(lease_uri))["expires_at"] > first
        with pytest.raises(ClaimedError):
            Lease(lease_uri, "run-b", "v1").__enter__()
    held = Lease(lease_uri, "run-a", "v1", lifetime=0.8)
    with pytest.raises(ClaimedError, match="taken over while it worked"), held:
        storage.write_bytes(lease_uri, json.dumps({"holder": "run-z", "token": "z"}).encode())
        time.sleep(0.6)


def test_of_many_writers_starting_at_once_exactly_one_gets_the_claim(lease_uri):
    won, refused, start = [], [], threading.Barrier(6)

    def claim(i: int) -> None:
        start.wait()
        try:
            lease = Lease(lease_uri, f"run-{i}", "v1").__enter__()
            won.append(lease)
        except ClaimedError:
            refused.append(i)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == 5
    won[0].__exit__(None, None, None)
