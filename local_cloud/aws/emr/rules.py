"""What EMR checks about a RunJobFlow request beyond its shape, against the emulator's own state.

botocore's model says a request is well formed; EMR then refuses a cluster that names a security
configuration that does not exist, or that uses the managed service role `EMR_DefaultRole_V2`
without the tag its policy requires on the cluster, its subnet and its security groups
(docs: "Service role for Amazon EMR (EMR role)", managed policy AmazonEMRServicePolicy_v2),
including the default VPC's subnet that a request without a subnet would use. Moto accepts all;
these checks run before moto sees the request.
"""

from __future__ import annotations

from typing import Any

MANAGED_POLICY_TAG = "for-use-with-amazon-emr-managed-policies"
MANAGED_ROLE = "EMR_DefaultRole_V2"
_GROUPS = ("EmrManagedMasterSecurityGroup", "EmrManagedSlaveSecurityGroup", "ServiceAccessSecurityGroup")


def run_job_flow_error(params: dict[str, Any], account: str, region: str) -> str | None:
    """What EMR would refuse in a RunJobFlow request, or None."""
    from moto.ec2.models import ec2_backends
    from moto.emr.models import emr_backends

    name = params.get("SecurityConfiguration")
    if name and name not in emr_backends[account][region].security_configurations:
        return f"Security configuration '{name}' does not exist."
    if str(params.get("ServiceRole", "")).rsplit("/", 1)[-1] != MANAGED_ROLE:
        return None
    if not _tagged(params.get("Tags", [])):
        return (
            f"The service role {MANAGED_ROLE} requires the cluster tag {MANAGED_POLICY_TAG}=true "
            "(AmazonEMRServicePolicy_v2 acts only on resources that carry it)."
        )
    ec2 = ec2_backends[account][region]
    instances = params.get("Instances", {})
    subnets = (
        [instances["Ec2SubnetId"]] if instances.get("Ec2SubnetId") else instances.get("Ec2SubnetIds", [])
    )
    if not subnets:
        # EMR then launches into the default VPC's subnet, which the role may use only if tagged.
        if not any(_tagged(_ec2_tags(ec2, s.id)) for s in ec2.describe_subnets() if s.default_for_az):
            return (
                f"The service role {MANAGED_ROLE} needs a subnet tagged {MANAGED_POLICY_TAG}=true "
                "(Instances.Ec2SubnetId): without one EMR uses the default VPC's subnet, which lacks the tag."
            )
    for subnet in subnets:
        try:
            ec2.get_subnet(subnet)
        except Exception:  # moto's InvalidSubnetIdError
            return f"The subnet ID '{subnet}' does not exist."
        if not _tagged(_ec2_tags(ec2, subnet)):
            return f"Subnet {subnet} lacks the tag {MANAGED_POLICY_TAG}=true ({MANAGED_ROLE})."
    vpcs = {ec2.get_subnet(s).vpc_id for s in subnets}
    for key in _GROUPS:
        group = instances.get(key)
        if not group:
            continue
        found = ec2.get_security_group_from_id(group)
        if found is None:
            return f"The security group '{group}' does not exist."
        if vpcs and found.vpc_id not in vpcs:
            return f"The security group {group} is not in the VPC of the cluster's subnet."
        if not _tagged(_ec2_tags(ec2, group)):
            return f"Security group {group} lacks the tag {MANAGED_POLICY_TAG}=true ({MANAGED_ROLE})."
    return None


def _ec2_tags(ec2: Any, resource: str) -> list[dict[str, str]]:
    return [
        {"Key": t["key"], "Value": t["value"]} for t in ec2.describe_tags(filters={"resource-id": [resource]})
    ]


def _tagged(tags: list[dict[str, Any]]) -> bool:
    return any(t.get("Key") == MANAGED_POLICY_TAG and str(t.get("Value")).lower() == "true" for t in tags)
