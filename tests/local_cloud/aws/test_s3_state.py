"""The emulator's S3 outlives it (local_cloud.aws.s3): what one run wrote, the next run reads,
whatever the keys, and what was deleted stays deleted."""

from __future__ import annotations

import pytest

from local_cloud.airflow.offline import stack_parameters
from local_cloud.process import running_emulator
from local_cloud.server import client

pytestmark = pytest.mark.emulator

KEYS = {
    "a": b"file a",
    "a/b": b"a file below a key of the same name",
    "dir/": b"",
    "odd//name with spaces/%2F.txt": "ünïcode".encode(),
}


def _objects(s3, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_objects_written_in_one_emulator_are_there_in_the_next(tmp_path):
    state = tmp_path / "state"
    with running_emulator(tmp_path, ["kept-bucket"], state_dir=state) as endpoint:
        s3 = client(endpoint, "s3")
        for key, body in KEYS.items():
            s3.put_object(Bucket="kept-bucket", Key=key, Body=body, ContentType="text/plain")
        s3.put_object(Bucket="kept-bucket", Key="gone", Body=b"deleted before the end")
        s3.delete_object(Bucket="kept-bucket", Key="gone")
        s3.create_bucket(Bucket="made-by-a-run")
        s3.copy_object(Bucket="made-by-a-run", Key="copy", CopySource={"Bucket": "kept-bucket", "Key": "a"})

    with running_emulator(tmp_path, ["kept-bucket"], state_dir=state) as endpoint:
        s3 = client(endpoint, "s3")
        assert _objects(s3, "kept-bucket") == KEYS
        assert _objects(s3, "made-by-a-run") == {"copy": b"file a"}
        assert s3.head_object(Bucket="kept-bucket", Key="a")["ContentType"] == "text/plain"
        s3.delete_objects(Bucket="kept-bucket", Delete={"Objects": [{"Key": "a"}, {"Key": "a/b"}]})

    with running_emulator(tmp_path, [], state_dir=state) as endpoint:
        left = set(_objects(client(endpoint, "s3"), "kept-bucket"))
    assert left == {"dir/", "odd//name with spaces/%2F.txt"}
    # Bodies no object uses any more are not kept.
    assert len(list((state / "s3" / "objects").iterdir())) == 3


def test_the_stack_each_emulator_deploys_keeps_the_objects_of_the_last(tmp_path):
    # The template's buckets are made again at each start (and their settings applied by S3
    # requests) before the kept objects come back into them: nothing kept is lost on the way.
    state, stack = tmp_path / "state", stack_parameters("kept-storage")
    with running_emulator(tmp_path, [], state_dir=state, stack=stack) as endpoint:
        client(endpoint, "s3").put_object(Bucket="kept-storage", Key="model/v1.json", Body=b"{}")
    for _ in range(2):
        with running_emulator(tmp_path, [], state_dir=state, stack=stack) as endpoint:
            s3 = client(endpoint, "s3")
            assert _objects(s3, "kept-storage") == {"model/v1.json": b"{}"}
            assert s3.get_public_access_block(Bucket="kept-storage")["PublicAccessBlockConfiguration"]


def test_without_a_state_folder_nothing_is_kept(tmp_path):
    with running_emulator(tmp_path, ["scratch-bucket"]) as endpoint:
        client(endpoint, "s3").put_object(Bucket="scratch-bucket", Key="k", Body=b"x")
    with running_emulator(tmp_path, ["scratch-bucket"]) as endpoint:
        assert _objects(client(endpoint, "s3"), "scratch-bucket") == {}
    assert not (tmp_path / "s3").exists()
