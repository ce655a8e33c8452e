"""The network EMR clusters start in, offline: what the platform team creates once on AWS.

EMR's managed service role (EMR_DefaultRole_V2) acts only on a subnet and security groups that
carry the tag `for-use-with-amazon-emr-managed-policies=true` (docs/aws.md), so a deployment
names them in Variables `ml_emr_subnet_id` and `ml_emr_security_groups`. Every emulator creates
this VPC, private subnet and EMR-managed security groups (primary, core and task, service access)
at start, tagged so; their ids are fixed, so the offline Variables can name them before any
emulator runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from unittest import mock

from local_cloud.aws.emr.rules import MANAGED_POLICY_TAG

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import TagTypeDef

SUBNET = "subnet-0e3a000000000c0de"
# EmrManagedMasterSecurityGroup, EmrManagedSlaveSecurityGroup, ServiceAccessSecurityGroup.
SECURITY_GROUPS = ("sg-0e3a000000000c0d1", "sg-0e3a000000000c0d2", "sg-0e3a000000000c0d3")
_VPC = "vpc-0e3a000000000c0de"
_NAMES = ("emr-primary", "emr-core-and-task", "emr-service-access")


def variables() -> dict[str, str]:
    """The Airflow Variables that name this network (as environment variables)."""
    return {
        "AIRFLOW_VAR_ML_EMR_SUBNET_ID": SUBNET,
        "AIRFLOW_VAR_ML_EMR_SECURITY_GROUPS": ",".join(SECURITY_GROUPS),
    }


def create(ec2: EC2Client) -> None:
    """Create the network through the EC2 API; moto draws ids at random, so for these few
    resources its id functions answer the fixed ones."""
    tags: list[TagTypeDef] = [
        {"Key": MANAGED_POLICY_TAG, "Value": "true"},
        {"Key": "Name", "Value": "ml-scaling-emr"},
    ]
    # The region's first EC2 request makes its default VPC: before any id is fixed.
    ec2.describe_vpcs()
    with mock.patch("moto.ec2.models.vpcs.random_vpc_id", return_value=_VPC):
        ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}])
    with mock.patch("moto.ec2.models.subnets.random_subnet_id", return_value=SUBNET):
        ec2.create_subnet(
            VpcId=_VPC, CidrBlock="10.20.1.0/24", TagSpecifications=[{"ResourceType": "subnet", "Tags": tags}]
        )
    for group, name in zip(SECURITY_GROUPS, _NAMES, strict=True):
        with mock.patch("moto.ec2.models.security_groups.random_security_group_id", return_value=group):
            ec2.create_security_group(
                GroupName=name,
                Description=f"EMR-managed {name}",
                VpcId=_VPC,
                TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}],
            )
