"""Apply manifest files to a cluster as `kubectl create -f` does, through the official client
(kubernetes.utils.create_from_yaml): each document is sent to the API the way a cluster gets it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from local_cloud.kubernetes.api import kubeconfig


class ManifestError(RuntimeError):
    """A document the API server refused; says which file and why."""


def apply(endpoint: str, paths: Iterable[Path]) -> list[str]:
    """Create every object in `paths`, in order; return them as `kind/namespace/name`."""
    from kubernetes import config, utils

    api = config.new_client_from_config_dict(kubeconfig(endpoint))
    created = []
    for path in paths:
        try:
            objects = utils.create_from_yaml(api, str(path))
        except utils.FailToCreateError as exc:
            reasons = "; ".join(f"{e.status} {e.reason}: {e.body}" for e in exc.api_exceptions)
            raise ManifestError(f"{path.name}: {reasons}") from None
        for group in objects:
            for obj in group if isinstance(group, list) else [group]:
                where = "/".join(filter(None, [obj.metadata.namespace, obj.metadata.name]))
                created.append(f"{obj.kind}/{where}")
    return created
