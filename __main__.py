"""golden-fleet: wiring only. Read the stack config once, validate it, build, export."""

import pulumi
import pulumi_aws as aws

from components import (
    BlueGreenService,
    BlueGreenServiceArgs,
    ColorArgs,
    GoldenImage,
    GoldenImageArgs,
)
from components.config import COLORS, BakeImage
from components.golden_image import distributing_colors
from components.image_grant import ImageGrant, ImageGrantArgs
from components.image_key import ImageKey, ImageKeyArgs
from components.runtime_config import read_stack_config
from components.tags import stack_tags

# Validated as a whole before the first resource is registered: a bad value stops here.
config = read_stack_config()

tags = stack_tags(pulumi.get_project(), pulumi.get_stack(), config.service.name)
provider = aws.Provider("aws", region=config.region, default_tags={"tags": tags})
with_provider = pulumi.ResourceOptions(providers=[provider])

# Image encryption and sharing: the baking stack owns one image key per region its images live
# in; a promoting stack grants its Auto Scaling service-linked role the use of the baker's key.
image_keys: dict[str, ImageKey] = {}
image_grant: ImageGrant | None = None
if isinstance(config.image, BakeImage):
    image_keys = {
        region: ImageKey(
            f"{config.service.name}-image-key-{region}",
            ImageKeyArgs(
                service=config.service.name,
                region=region,
                share_with_accounts=list(config.image.share_with_accounts),
            ),
            opts=with_provider,
        )
        for region in (config.region, *config.image.copy_to_regions)
    }
else:
    image_grant = ImageGrant(
        f"{config.service.name}-image-grant",
        ImageGrantArgs(kms_key_arn=config.image.kms_key_arn),
        opts=with_provider,
    )

distributors = distributing_colors({c.value: config.fleets[c].version for c in COLORS})
images = {
    color: GoldenImage(
        f"{config.service.name}-{color.value}-image",
        GoldenImageArgs(
            service=config.service.name,
            version=config.fleets[color].version,
            region=config.region,
            source=config.image,
            kms_key_arn=image_keys[config.region].key_arn if image_keys else "",
            copy_keys={r: k.key_arn for r, k in image_keys.items() if r != config.region},
            distribute=color.value in distributors,
            launchable_after=image_grant.grant_id if image_grant else None,
            health_check_path=config.service.health_check_path,
            stack=pulumi.get_stack(),
            color=color.value,
            port=config.service.port,
        ),
        opts=with_provider,
    )
    for color in COLORS
}

service = BlueGreenService(
    config.service.name,
    BlueGreenServiceArgs(
        service=config.service.name,
        port=config.service.port,
        health_check_path=config.service.health_check_path,
        instance_types=config.service.instance_types,
        vpc_id=config.network.vpc_id,
        public_subnet_ids=config.network.public_subnet_ids,
        private_subnet_ids=config.network.private_subnet_ids,
        certificate_arn=config.network.certificate_arn,
        ingress_cidrs=config.network.ingress_cidrs,
        colors={
            color.value: ColorArgs(
                version=config.fleets[color].version,
                image_id=images[color].image_id,
                capacity=config.fleets[color].capacity,
                weight=config.traffic[color],
            )
            for color in COLORS
        },
        instance_refresh=config.instance_refresh,
        load_balancer=config.load_balancer,
        stack=pulumi.get_stack(),
        region=config.region,
        health=config.health,
        stack_tags=tags,
        logs=config.logs,
        waf=config.waf,
        scaling=config.scaling,
        app_environment=dict(config.app.environment),
        app_secrets=config.app_secrets,
    ),
    opts=with_provider,
)

pulumi.export("url", service.url)
pulumi.export("liveColor", config.live_color.value)
pulumi.export("stableColor", config.stable_color.value)
pulumi.export("traffic", {color.value: config.traffic[color] for color in COLORS})
pulumi.export("listenerArn", service.listener_arn)
# Alarms on the load balancer itself, which judge both colors (beside each color's alarmNames).
pulumi.export("loadBalancerAlarmNames", service.load_balancer_alarm_names)
if image_keys:
    # What a promoting stack names as image.kmsKeyArn: the key of the region it runs in.
    pulumi.export("imageKeyArns", {region: key.key_arn for region, key in image_keys.items()})
for color in COLORS:
    pulumi.export(
        color.value,
        {
            "version": config.fleets[color].version,
            "amiId": images[color].image_id,
            "asgName": service.fleets[color.value].asg_name,
            # What the group saves after the last successful refresh resource run: the version
            # it really launches (launchTemplateVersion is what the program asked for).
            "launchTemplateVersion": service.fleets[color.value].launch_template_version,
            "liveLaunchTemplateVersion": service.fleets[color.value].live_launch_template_version,
            "alarmNames": service.fleets[color.value].alarm_names,
        },
    )
