"""The Pulumi program: read config, build each enabled cloud, expose the gateway.

Reads as the deployment does: the stack config is validated first (a bad value
stops here, before any resource exists), the tag transform is registered so
every later resource is tagged. Then:

1. the global DNS zone on the configured DNS cloud, first, because every
   cluster's cert-manager needs it (and an identity that may answer DNS-01
   challenges in it) before its certificate;
2. per enabled cloud, through the same small contract: the footprint (network,
   cluster, Redis, PostgreSQL); every footprint first, because with the
   governance plane (``ai-gateway:governance``, on with 2+ clouds) each cloud's
   gateway trusts the others' OIDC issuers and admits their NAT addresses;
   then per cloud the gateway's workload identity, the image (published, or
   built and pushed to the cloud's registry), and the gateway on the cluster
   through the cloud's kube provider (with its governance channel);
3. the global records and health checks in front of every cloud's endpoint;
4. the stack outputs.
"""

import pulumi

from infra import clouds, config, global_lb, tags
from infra.global_lb import CloudEndpoint
from infra.k8s.gateway import (
    GatewayDeployment,
    GatewayDeploymentArgs,
    GatewaySecrets,
    service_account_subject,
)
from infra.k8s.governance import GovernanceChannelArgs
from infra.outputs import export_stack_outputs

stack_config = config.load()
tags.register(stack_config)
for warning in stack_config.gateway_warnings():
    pulumi.log.warn(warning)
secrets = config.secret_settings(stack_config)
shared_secrets = GatewaySecrets(f"{stack_config.name_prefix}-gateway-secrets", secrets)
zone = global_lb.build_global_zone(stack_config)

footprints: dict[config.Cloud, clouds.CloudFootprint] = {
    cloud: clouds.build(cloud, stack_config) for cloud in stack_config.enabled_clouds
}
plane_on = stack_config.governance.active(stack_config.enabled_clouds)
gateways: dict[config.Cloud, GatewayDeployment] = {}
for cloud, footprint in footprints.items():
    governance = (
        GovernanceChannelArgs.from_config(
            stack_config,
            cloud,
            egress_ips={c: f.egress_ips for c, f in footprints.items()},
            issuers={c: f.oidc_issuer_url for c, f in footprints.items()},
            subject=service_account_subject(),
            load_balancer_annotations=(
                footprint.channel_load_balancer_annotations
                if footprint.channel_load_balancer_annotations is not None
                else footprint.load_balancer_annotations
            ),
        )
        if plane_on
        else None
    )
    identity = clouds.gateway_identity(cloud, stack_config, footprint)
    image = clouds.gateway_image(cloud, stack_config, footprint)
    solver = zone.certificate_solver(footprint)
    gateways[cloud] = GatewayDeployment(
        f"gateway-{cloud.value}",
        GatewayDeploymentArgs.from_config(
            stack_config,
            cloud,
            redis_url=footprint.redis_url,
            postgres_dsn=footprint.postgres_dsn,
            migration=identity.migration,
            redis_ca_cert=footprint.redis_ca_cert,
            admin_key=shared_secrets.admin_key,
            key_hash_secret=shared_secrets.key_hash_secret,
            secrets=secrets,
            dns01_solver=solver,
            data_store_cidrs=footprint.data_store_cidrs,
            redis_port=footprint.redis_port,
            workload_identity=identity.workload_identity,
            load_balancer_annotations=footprint.load_balancer_annotations,
            edge_prerequisites=footprint.edge_prerequisites,
            image=image,
            governance=governance,
        ),
        # Under the cloud's footprint: the cloud owns its gateway (and `aigw plan`
        # shows it there); the kube provider deploys it into that cloud's cluster.
        opts=pulumi.ResourceOptions(parent=footprint.component, provider=footprint.kube_provider),
    )
    pulumi.export(f"{cloud.value}Endpoint", gateways[cloud].endpoint)

channels = {c: g.governance for c, g in gateways.items() if g.governance is not None}
if channels:
    pulumi.export(
        "governanceUrls", {c.value: f"https://{ch.hostname}" for c, ch in channels.items()}
    )
    pulumi.export("governanceEndpoints", {c.value: ch.endpoint for c, ch in channels.items()})
    for cloud, channel in channels.items():
        # Each channel's own name in the global zone: the URL its peers call.
        zone.direct_record(
            f"governance-{cloud.value}",
            channel.hostname,
            channel.endpoint,
            stack_config.dns.ttl_seconds,
        )

global_endpoint = global_lb.build_global_endpoint(
    stack_config,
    [CloudEndpoint(c, gateways[c].endpoint, footprints[c].region) for c in footprints],
    zone=zone,
)

pulumi.export("environment", stack_config.environment.value)
pulumi.export("enabledClouds", [cloud.value for cloud in footprints])
export_stack_outputs(footprints, global_endpoint)
