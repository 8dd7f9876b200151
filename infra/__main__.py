"""The Pulumi program: read config, build each enabled cloud, expose the gateway.

Reads as the deployment does: the stack config is validated first (a bad value
stops here, before any resource exists), the tag transform is registered so
every later resource is tagged, then each enabled cloud's footprint is built
through the same small contract.
"""

import pulumi

from infra import clouds, config, tags

stack_config = config.load()
tags.register(stack_config)

footprints = {
    cloud: footprint
    for cloud in stack_config.enabled_clouds
    if (footprint := clouds.build(cloud, stack_config)) is not None
}

pulumi.export("environment", stack_config.environment.value)
pulumi.export("enabledClouds", [cloud.value for cloud in footprints])
