"""``AccountAccess``: in one stack's AWS account, the GitHub and Pulumi OIDC providers, the
roles CI, Pulumi Deployments, the rollout job and the prune job assume, each least-privilege
(bootstrap/iam_documents.py) with the session length its longest wait needs, and the service's
permissions boundary, which every role the main program creates must carry."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from bootstrap import iam_documents as docs
from components import policies

ROLLOUT_SESSION_S = 4 * 3600  # rollout.yml: timeout-minutes 240, role-duration-seconds 14400
PREVIEW_SESSION_S = 3600  # pull-request.yml: timeout-minutes 30
PRUNE_SESSION_S = 3600  # prune-images.yml: role-duration-seconds 3600
TAG_SCOPED_ROLES = ("deploy", "rollout")


def role_names(stack: str, deploy_role_name: str) -> dict[str, str]:
    """Kind -> name of every role the platform makes in a stack's account."""
    prefix = f"golden-fleet-{stack}"
    kinds = ("preview", "rollout", "prune-read", "prune", "image-usage")
    return {"deploy": deploy_role_name, **{kind: f"{prefix}-{kind}" for kind in kinds}}


@dataclass(frozen=True)
class AccountAccessArgs:
    stack: str  # the main project's stack this account runs
    organization: str  # Pulumi Cloud organization (the Pulumi OIDC audience)
    repository: str  # owner/name on GitHub
    environment: str  # the GitHub environment the stack's jobs run in
    deploy_role_name: str  # as deploy/<stack>.deploy.yaml names it
    deploy_session_s: int  # deploy/<stack>.deploy.yaml's oidc.aws.duration, in seconds
    bakes: bool  # the stack's deployment bakes the image
    prunes: bool  # the image-retention job runs against this account
    service: str  # the main project's service (its roles are named <service>-*)
    account_id: str  # this account
    image_usage_trusted: tuple[str, ...] = ()  # role ARNs allowed to read this account's usage


class AccountAccess(pulumi.ComponentResource):
    def __init__(self, name: str, args: AccountAccessArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:  # fmt: skip
        super().__init__("golden-fleet-platform:index:AccountAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.github = aws.iam.OpenIdConnectProvider(
            f"{name}-github-oidc",
            url=f"https://{docs.GITHUB_ISSUER}",
            client_id_lists=[docs.GITHUB_AUDIENCE],
            opts=child,
        )
        self.pulumi = aws.iam.OpenIdConnectProvider(
            f"{name}-pulumi-oidc",
            url=f"https://{docs.PULUMI_ISSUER}",
            client_id_lists=[args.organization],
            opts=child,
        )
        self.scope = docs.ServiceScope(args.service, args.account_id)
        self._bakes = args.bakes
        # Made here, by the platform's admin role: no role of the account may change it (the
        # deploy roles hold no action on policies; the roles under it are denied them).
        self.boundary = aws.iam.Policy(
            f"{name}-boundary",
            name=policies.boundary_policy_name(args.service),
            path=policies.BOUNDARY_PATH,
            description=f"The most any role of {args.service} may do; see "
            "docs/explanation/least-privilege.md",
            policy=json.dumps(
                policies.instance_boundary_policy(
                    self.scope.partition, args.account_id, args.service
                ),
                sort_keys=True,
            ),
            opts=child,
        )
        names = role_names(args.stack, args.deploy_role_name)
        env = docs.github_subjects(args.repository, environment=args.environment)
        self.roles: dict[str, aws.iam.Role] = {}
        actions = docs.role_actions(bakes=args.bakes, prunes=args.prunes,
                                    image_usage=bool(args.image_usage_trusted))  # fmt: skip
        self._role(name, "preview", names["preview"], self.github, docs.GITHUB_ISSUER,
                   docs.GITHUB_AUDIENCE,
                   # pull-request previews, and the deployment job's live-weights check
                   docs.github_subjects(args.repository, pull_requests=True) + env,
                   actions["preview"], PREVIEW_SESSION_S)  # fmt: skip
        self._role(name, "deploy", args.deploy_role_name, self.pulumi, docs.PULUMI_ISSUER,
                   args.organization, [docs.pulumi_deploy_subject(args.organization, args.stack)],
                   actions["deploy"],
                   max(args.deploy_session_s, docs.DEFAULT_SESSION_S))  # fmt: skip
        self._role(name, "rollout", names["rollout"], self.github, docs.GITHUB_ISSUER,
                   docs.GITHUB_AUDIENCE, env, actions["rollout"], ROLLOUT_SESSION_S)  # fmt: skip
        if args.prunes:
            self._role(name, "prune-read", names["prune-read"], self.github,
                       docs.GITHUB_ISSUER, docs.GITHUB_AUDIENCE, env, actions["prune-read"],
                       PRUNE_SESSION_S)  # fmt: skip
            self._role(name, "prune", names["prune"], self.github, docs.GITHUB_ISSUER,
                       docs.GITHUB_AUDIENCE, env, actions["prune"], PRUNE_SESSION_S)  # fmt: skip
        if args.image_usage_trusted:
            usage = aws.iam.Role(
                f"{name}-image-usage",
                name=names["image-usage"],
                assume_role_policy=docs.role_trust(args.image_usage_trusted),
                max_session_duration=PRUNE_SESSION_S,
                opts=child,
            )
            aws.iam.RolePolicy(
                f"{name}-image-usage-policy",
                role=usage.name,
                policy=docs.permission_policy(actions["image-usage"], self.scope),
                opts=child,
            )
            self.roles["image-usage"] = usage
        self.register_outputs({k: v.arn for k, v in self.roles.items()})

    def _role(self, name, kind, role_name, provider, issuer, audience, subjects, actions,
              session_s) -> None:  # fmt: skip
        # The boundary exists before any role that may create roles under it.
        child = pulumi.ResourceOptions(parent=self, depends_on=[self.boundary])
        role = aws.iam.Role(
            f"{name}-{kind}",
            name=role_name,
            assume_role_policy=provider.arn.apply(
                lambda arn: docs.web_identity_trust(arn, issuer, audience, subjects)
            ),
            max_session_duration=session_s,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-{kind}-policy", role=role.name,
            # The roles that run `pulumi up` change resources only where tagged for the
            # service (iam_documents.TAG_SCOPED); the others read, or prune images.
            policy=docs.permission_policy(actions, self.scope,
                                          by_tags=kind in TAG_SCOPED_ROLES, bakes=self._bakes),
            opts=child,
        )  # fmt: skip
        if kind in TAG_SCOPED_ROLES:
            # Too long for the role's inline quota: one managed policy per AWS service, made
            # and attached here (no role of the account may change a policy).
            scoped = docs.tag_scoped_policies(actions, self.scope, bakes=self._bakes)
            for service, document in scoped.items():
                managed = aws.iam.Policy(
                    f"{name}-{kind}-{service}",
                    name=f"{role_name}-{service}",
                    path=policies.BOUNDARY_PATH,
                    description=f"What {role_name} may change in {service}: only resources "
                    "tagged for the service; see docs/explanation/least-privilege.md",
                    policy=document,
                    opts=child,
                )
                aws.iam.RolePolicyAttachment(
                    f"{name}-{kind}-{service}-attachment", role=role.name,
                    policy_arn=managed.arn, opts=child)  # fmt: skip
        self.roles[kind] = role
