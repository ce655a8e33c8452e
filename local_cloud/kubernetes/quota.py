"""ResourceQuota admission: a new pod is refused, as the API server's quota plugin refuses it,
when a quota in its namespace tracks a resource the pod does not ask for, or when the pod would
take the namespace's use over the quota's hard limit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from local_cloud.kubernetes.status import ApiError
from local_cloud.kubernetes.units import parse_quantity

# The pod resources a quota may track here, and the other names the API accepts for them.
TRACKED = ("pods", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
_ALIASES = {"cpu": "requests.cpu", "memory": "requests.memory", "count/pods": "pods"}


def pod_usage(spec: Mapping[str, Any]) -> dict[str, Decimal | None]:
    """What a pod charges to each tracked resource; None where a container does not say (a
    request left out defaults to the limit, as the API server defaults it)."""
    usage: dict[str, Decimal | None] = {"pods": Decimal(1)}
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            main = [_asked(c, kind, resource) for c in spec.get("containers", [])]
            init = [_asked(c, kind, resource) for c in spec.get("initContainers", [])]
            if None in main or None in init:
                usage[f"{kind}.{resource}"] = None
            else:  # init containers run one at a time, before the others
                usage[f"{kind}.{resource}"] = max([sum(main, Decimal(0)), *init])  # type: ignore[type-var]
    return usage


def missing(spec: Mapping[str, Any], resource: str) -> list[str]:
    """The containers that do not ask for a tracked `resource`."""
    kind, _, name = resource.partition(".")
    containers = spec.get("initContainers", []) + spec.get("containers", [])
    return [c["name"] for c in containers if _asked(c, kind, name) is None]


def admit(
    pod: str,
    spec: Mapping[str, Any],
    quotas: Iterable[Mapping[str, Any]],
    running: Iterable[Mapping[str, Any]],
) -> None:
    """Raise the API server's 403 if a quota refuses the pod `pod`; `running` are the specs of the
    namespace's pods that still count (not Succeeded or Failed)."""
    usage = pod_usage(spec)
    used = total_usage(running)
    for quota in quotas:
        name = quota["metadata"]["name"]
        hard = dict(sorted(hard_limits(quota).items()))  # named in order, as the API server does
        unspecified = [f"{r} for: {','.join(sorted(missing(spec, r)))}" for r in hard if usage[r] is None]
        if unspecified:
            raise _forbidden(pod, f"failed quota: {name}: must specify {'; '.join(unspecified)}")
        over = [r for r, limit in hard.items() if used[r] + (usage[r] or 0) > limit]
        if over:
            raise _forbidden(
                pod,
                f"exceeded quota: {name}, requested: {_list(over, usage)}, used: {_list(over, used)}, "
                f"limited: {_list(over, hard)}",
            )


def hard_limits(quota: Mapping[str, Any]) -> dict[str, Decimal]:
    hard = quota.get("spec", {}).get("hard", {})
    limits = {_ALIASES.get(k, k): parse_quantity(v) for k, v in hard.items()}
    return {k: Decimal(v) for k, v in limits.items() if k in TRACKED}


def total_usage(specs: Iterable[Mapping[str, Any]]) -> dict[str, Decimal]:
    total = dict.fromkeys(TRACKED, Decimal(0))
    for spec in specs:
        for resource, value in pod_usage(spec).items():
            total[resource] += value or 0
    return total


def quantity(resource: str, value: Decimal) -> str:
    """A quantity as the API server prints it: whole CPUs or millicores; memory in binary units
    where it divides evenly."""
    if resource.endswith("cpu"):
        return str(int(value)) if value == int(value) else f"{int(value * 1000)}m"
    if resource.endswith("memory"):
        for suffix, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
            if value and value % size == 0:
                return f"{int(value // size)}{suffix}"
    return str(int(value))


def _asked(container: Mapping[str, Any], kind: str, resource: str) -> Decimal | None:
    resources = container.get("resources") or {}
    value = (resources.get(kind) or {}).get(resource)
    if value is None and kind == "requests":
        value = (resources.get("limits") or {}).get(resource)
    return None if value is None else Decimal(parse_quantity(value))


def _list(resources: list[str], values: Mapping[str, Decimal | None]) -> str:
    return ",".join(f"{r}={quantity(r, values[r] or Decimal(0))}" for r in resources)


def _forbidden(pod: str, why: str) -> ApiError:
    return ApiError(403, "Forbidden", f'pods "{pod}" is forbidden: {why}', {"name": pod, "kind": "pods"})
