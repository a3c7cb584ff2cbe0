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
from components.config import COLORS
from components.runtime_config import read_stack_config
from components.tags import stack_tags

# Validated as a whole before the first resource is registered: a bad value stops here.
config = read_stack_config()

tags = stack_tags(pulumi.get_project(), pulumi.get_stack(), config.service.name)
provider = aws.Provider("aws", region=config.region, default_tags={"tags": tags})
with_provider = pulumi.ResourceOptions(providers=[provider])

images = {
    color: GoldenImage(
        f"{config.service.name}-{color.value}-image",
        GoldenImageArgs(
            service=config.service.name,
            version=config.fleets[color].version,
            region=config.region,
            source=config.image,
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
    ),
    opts=with_provider,
)

pulumi.export("url", service.url)
pulumi.export("liveColor", config.live_color.value)
pulumi.export("stableColor", config.stable_color.value)
pulumi.export("traffic", {color.value: config.traffic[color] for color in COLORS})
pulumi.export("listenerArn", service.listener_arn)
for color in COLORS:
    pulumi.export(
        color.value,
        {
            "version": config.fleets[color].version,
            "amiId": images[color].image_id,
            "asgName": service.fleets[color.value].asg_name,
            "alarmNames": service.fleets[color.value].alarm_names,
        },
    )
