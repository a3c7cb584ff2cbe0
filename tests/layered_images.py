"""Foundation and application images as the layered bake registers them (contract A of issue 18),
on the local AWS API (moto's server on 127.0.0.1), for the revocation and freshness tests.

moto 5 answers RegisterImage, CreateTags and DescribeImages but not the three calls revocation
makes beyond tags: EnableImageDeprecation, ModifyImageAttribute's Description, and
DescribeImages' DeprecationTime. :func:`teach_image_lifecycle` adds them to the server of this
process as the EC2 API reference documents them: ``DeprecateAt`` rounded to the nearest minute
and refused in the past (EnableImageDeprecation), a description of at most 255 characters
(ModifyImageAttribute / RegisterImage), and the deprecation time in every DescribeImages answer.

moto answers DisableImage by setting the image's State to ``disabled`` and nothing else: its
DescribeImages still lists the image, ignores ``IncludeDisabled``, and RunInstances (an Auto
Scaling group's launches too) starts it. :func:`teach_image_lifecycle` models the DisableImage
API reference: a disabled image "can't be used for instance launches" (refused with
``InvalidAMIID.Unavailable``, the code EC2 gives an image in an unavailable state), DisableImage
"removes all launch permissions", "a disabled AMI does not appear in DescribeImages API calls by
default" (``IncludeDisabled=true`` shows it, and only to its owner: a disabled image "can't be
shared"), and its deprecation time is untouched (it stays deprecated).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from botocore import xform_name
from botocore.exceptions import ClientError
from local_aws import use_test_credentials

BAKER = "111111111111"  # staging's account: the one that bakes (prod's ownerAccountId)
REGION = "eu-west-1"
SERVICE = "checkout"


def teach_image_lifecycle(monkeypatch: Any) -> None:
    """Add EnableImageDeprecation, DisableImageDeprecation, a description edit and
    DeprecationTime to moto's EC2 (undone with ``monkeypatch``)."""
    from moto.core.responses import ActionResult, EmptyResult
    from moto.ec2.exceptions import EC2ClientError, InvalidParameterValueError
    from moto.ec2.models.amis import Ami
    from moto.ec2.responses.amis import AmisResponse

    monkeypatch.setattr(Ami, "deprecation_time", None, raising=False)

    def enable_image_deprecation(self: Any) -> Any:
        ami = self.ec2_backend.describe_images(ami_ids=[self._get_param("ImageId")])[0]
        raw = self._get_param("DeprecateAt")
        at = (
            raw
            if isinstance(raw, dt.datetime)
            else dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        )
        at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
        rounded = at.replace(second=0, microsecond=0) + dt.timedelta(
            minutes=1 if at.second >= 30 else 0
        )
        if rounded < dt.datetime.now(dt.UTC).replace(second=0, microsecond=0):
            raise InvalidParameterValueError(f"DeprecateAt {raw} (a date in the past)")
        ami.deprecation_time = f"{rounded:%Y-%m-%dT%H:%M:%S}.000Z"
        return ActionResult({"Return": True})

    def disable_image_deprecation(self: Any) -> Any:
        ami = self.ec2_backend.describe_images(ami_ids=[self._get_param("ImageId")])[0]
        ami.deprecation_time = None
        return ActionResult({"Return": True})

    original = AmisResponse.modify_image_attribute

    def modify_image_attribute(self: Any) -> Any:
        description = self._get_param("Description")
        if isinstance(description, dict):
            description = description.get("Value")
        if description is None:
            description = self._get_param("Description.Value")
        if description is None:
            return original(self)
        if len(description) > 255:
            raise EC2ClientError("InvalidParameterValue", "description longer than 255")
        ami = self.ec2_backend.describe_images(ami_ids=[self._get_param("ImageId")])[0]
        ami.description = description
        return EmptyResult()

    teach_disabled_images(monkeypatch)
    monkeypatch.setattr(
        AmisResponse, "enable_image_deprecation", enable_image_deprecation, raising=False
    )
    monkeypatch.setattr(
        AmisResponse, "disable_image_deprecation", disable_image_deprecation, raising=False
    )
    monkeypatch.setattr(AmisResponse, "modify_image_attribute", modify_image_attribute)


def teach_disabled_images(monkeypatch: Any) -> None:
    """DisableImage, DescribeImages and RunInstances as the EC2 API reference documents a
    disabled image (module docstring)."""
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.models.instances import InstanceBackend
    from moto.ec2.responses.amis import AmisResponse

    def describe_images(self: Any) -> Any:
        self.error_on_dryrun()
        include = str(self._get_param("IncludeDisabled", False)).lower() == "true"
        images = self.ec2_backend.describe_images(
            ami_ids=self._get_param("ImageIds", []),
            filters=self._filters_from_querystring(),
            exec_users=self._get_param("ExecutableUsers", []),
            owners=self._get_param("Owners", []),
        )
        shown = [
            i
            for i in images
            if i.state != "disabled" or (include and i.owner_id == self.current_account)
        ]
        return ActionResult({"Images": shown})

    original_disable = AmiBackend.disable_image

    def disable_image(self: Any, ami_id: str) -> None:
        original_disable(self, ami_id)
        self.amis[ami_id].launch_permissions.clear()

    original_run = InstanceBackend.run_instances

    def run_instances(self: Any, image_id: str, *args: Any, **kwargs: Any) -> Any:
        launched = image_id
        if kwargs.get("launch_template"):
            launched = self._get_template_from_args(kwargs["launch_template"]).image_id
        ami = self.amis.get(launched) if launched else None
        if ami is not None and ami.state == "disabled":
            raise EC2ClientError("InvalidAMIID.Unavailable", f"The image {launched} is disabled")
        return original_run(self, image_id, *args, **kwargs)

    monkeypatch.setattr(AmisResponse, "describe_images", describe_images)
    monkeypatch.setattr(AmiBackend, "disable_image", disable_image)
    monkeypatch.setattr(InstanceBackend, "run_instances", run_instances)


class RefusedOnce:
    """``ec2`` with the first ``operation`` on ``image_id`` refused as a missing permission
    (UnauthorizedOperation, what EC2 answers); every other call goes through."""

    def __init__(self, ec2: Any, operation: str, image_id: str) -> None:
        self._ec2, self._operation, self._image_id = ec2, operation, image_id
        self.refused = False

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._ec2, name)
        if name != xform_name(self._operation):
            return call

        def refused_first(**kwargs: Any) -> Any:
            if kwargs["ImageId"] == self._image_id and not self.refused:
                self.refused = True
                raise ClientError({"Error": {"Code": "UnauthorizedOperation"}}, self._operation)
            return call(**kwargs)

        return refused_first


def use_local_aws(monkeypatch: Any, url: str, account: str = BAKER) -> None:
    """This test's boto3 clients talk to ``url`` with test credentials only, its state reset."""
    use_test_credentials(monkeypatch, url, account)
    teach_image_lifecycle(monkeypatch)


def stamp(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"


class Images:
    """Registers images the way the bake tags them, in one region of the local API."""

    def __init__(self, region: str = REGION) -> None:
        import boto3

        self.region = region
        self.ec2 = boto3.client("ec2", region_name=region)

    def _register(self, name: str, description: str, tags: dict[str, str]) -> str:
        image_id = self.ec2.register_image(
            Name=name,
            Description=description,
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
        )["ImageId"]
        if tags:
            self.ec2.create_tags(
                Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            )
        return image_id

    def foundation(self, built: dt.datetime, runtime: str = "python") -> tuple[str, str]:
        """A foundation built at ``built``: (its id, its name)."""
        name = f"golden-foundation-{runtime}-{stamp(built)}"
        image_id = self._register(
            name,
            f"{name}: Debian 12 foundation, {runtime}",
            {
                "ManagedBy": "golden-fleet",
                "Layer": "foundation",
                "Runtime": runtime,
                "TemplateDigest": "f" * 64,
                "BuildTime": stamp(built),
                "BakeRun": "run-f",
                "SourceAmi": "ami-0deb1a2b3c4d5e6f7",
            },
        )
        return image_id, name

    def application(
        self,
        version: str,
        built: dt.datetime,
        foundation: tuple[str, str] | None = None,
        service: str = SERVICE,
        description: str | None = None,
    ) -> str:
        """An application image on ``foundation`` (none: a full bake from before the layers,
        without lineage tags)."""
        name = f"{service}-{version}-{stamp(built)}"
        tags = {
            "ManagedBy": "golden-fleet",
            "Service": service,
            "Version": version,
            "TemplateDigest": "a" * 64,
            "BuildTime": stamp(built),
            "BakeRun": "run-a",
            "SourceAmi": "ami-0deb1a2b3c4d5e6f7",
        }
        text = f"{service} {version}: CIS-hardened Debian 12"
        if foundation is not None:
            foundation_id, foundation_name = foundation
            tags |= {
                "Layer": "application",
                "Foundation": foundation_id,
                "FoundationName": foundation_name,
                "FoundationBuildTime": foundation_name[-16:],
                "AppPackage": f"{service}_{version}",
                "AppSha256": "b" * 64,
            }
            text = f"{service} {version} package sha256 {'b' * 64} on foundation {foundation_name}"
        return self._register(name, description if description is not None else text, tags)

    def get(self, image_id: str) -> dict:
        """The image as its owner sees it, disabled or not."""
        return self.ec2.describe_images(ImageIds=[image_id], IncludeDisabled=True)["Images"][0]


class Fleet:
    """A color the way the program builds it: a launch template and a group tagged
    Stack/Service/Color (components/tags.py), launching ``image_id``."""

    def __init__(self) -> None:
        import boto3

        self.ec2 = boto3.client("ec2", region_name=REGION)
        self.autoscaling = boto3.client("autoscaling", region_name=REGION)
        vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnet = self.ec2.create_subnet(
            VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{REGION}a"
        )["Subnet"]["SubnetId"]

    def color(self, color: str, image_id: str, stack: str = "staging", desired: int = 1) -> str:
        template = self.ec2.create_launch_template(
            LaunchTemplateName=f"{SERVICE}-{color}-lt-{image_id}",
            LaunchTemplateData={"ImageId": image_id, "InstanceType": "t3.micro"},
        )["LaunchTemplate"]["LaunchTemplateId"]
        group = f"{SERVICE}-{color}-asg-{image_id[-6:]}"
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=group,
            MinSize=desired,
            MaxSize=2,
            DesiredCapacity=desired,
            LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
            VPCZoneIdentifier=self.subnet,
            Tags=[
                {
                    "Key": k,
                    "Value": v,
                    "PropagateAtLaunch": True,
                    "ResourceId": group,
                    "ResourceType": "auto-scaling-group",
                }
                for k, v in {"Stack": stack, "Service": SERVICE, "Color": color}.items()
            ],
        )
        return group
