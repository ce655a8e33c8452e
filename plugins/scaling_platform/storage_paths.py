"""Storage URIs as Airflow ObjectStoragePaths: s3:// through the task's AWS connection, local paths
as file://, so tasks read and write the storage root the jobs use, offline or on AWS."""

from __future__ import annotations

import os

from airflow.sdk import ObjectStoragePath


def storage_path(uri: str, conn_id: str | None = "aws_default") -> ObjectStoragePath:
    if "://" in uri:
        return ObjectStoragePath(uri, conn_id=conn_id)
    # Relative roots are relative to where the task runs, as for the jobs.
    return ObjectStoragePath(f"file://{os.path.abspath(uri)}")


def write_whole(path: ObjectStoragePath, data: bytes) -> None:
    """Write through a partial object renamed into place: a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial")
    partial.write_bytes(data)
    partial.rename(path)
