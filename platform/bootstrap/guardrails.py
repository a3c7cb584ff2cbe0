"""``Guardrails``: the policy pack in policy/ published to the organization, and one policy
group per stack that Pulumi Cloud enforces on every update of it (CLI, Deployments, Automation
API alike)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_pulumiservice as ps

from bootstrap.iam_documents import MAIN_PROJECT

PACK_NAME = "golden-fleet"  # policy/__main__.py's PolicyPack(name=...)


@dataclass(frozen=True)
class GuardrailsArgs:
    organization: str
    pack_dir: str  # policy/, tarballed and uploaded
    pack_version: str  # semver; versions are immutable: bump it to publish a change
    pack_configs: Mapping[str, Mapping[str, Any]]  # stack -> policy/<stack>.json
    # Each policy's metadata (bootstrap/pack_source.py): given, the provider never runs the pack
    # to read it, so publishing needs no virtual environment of the pack.
    pack_policies: Sequence[Mapping[str, Any]] = ()


class Guardrails(pulumi.ComponentResource):
    def __init__(self, name: str, args: GuardrailsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:  # fmt: skip
        super().__init__("golden-fleet-platform:index:Guardrails", name, None, opts)
        self.pack = ps.PolicyPack(
            f"{name}-pack",
            name=PACK_NAME,
            organization=args.organization,
            source_path=args.pack_dir,
            version_tag=args.pack_version,
            policies=[
                ps.PolicyPackPolicyInputArgs(
                    name=policy["name"],
                    description=policy["description"],
                    enforcement_level=policy["enforcement_level"],
                    config_schema=policy.get("config_schema"),
                )
                for policy in args.pack_policies
            ]
            or None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # `preventative` groups run during operations; each stack's enforcement comes from its
        # config (`all: mandatory` for prod, `all: advisory` for staging), as in the PR previews.
        self.groups = {
            stack: ps.PolicyGroup(
                f"{name}-{stack}",
                name=f"{MAIN_PROJECT}-{stack}",
                organization_name=args.organization,
                entity_type="stacks",
                mode="preventative",
                stacks=[ps.PolicyGroupStackReferenceArgs(name=stack, routing_project=MAIN_PROJECT)],
                policy_packs=[
                    ps.PolicyGroupPolicyPackReferenceInputArgs(
                        name=PACK_NAME, version_tag=self.pack.version_tag, config=dict(config)
                    )
                ],
                opts=pulumi.ResourceOptions(parent=self),
            )
            for stack, config in sorted(args.pack_configs.items())
        }
        self.register_outputs({})
