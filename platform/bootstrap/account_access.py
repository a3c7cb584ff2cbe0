"""``AccountAccess``: in one stack's AWS account, the GitHub and Pulumi OIDC providers and the
roles CI, Pulumi Deployments, the rollout job and the prune job assume, each least-privilege
(bootstrap/iam_documents.py) with the session length its longest wait needs."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from bootstrap import iam_documents as docs

ROLLOUT_SESSION_S = 4 * 3600  # rollout.yml: timeout-minutes 240, role-duration-seconds 14400
PREVIEW_SESSION_S = 3600  # pull-request.yml: timeout-minutes 30
PRUNE_SESSION_S = 3600  # prune-images.yml: role-duration-seconds 3600


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
        prefix = f"golden-fleet-{args.stack}"
        env = docs.github_subjects(args.repository, environment=args.environment)
        self.roles: dict[str, aws.iam.Role] = {}
        actions = docs.role_actions(bakes=args.bakes, prunes=args.prunes,
                                    image_usage=bool(args.image_usage_trusted))  # fmt: skip
        self._role(name, "preview", f"{prefix}-preview", self.github, docs.GITHUB_ISSUER,
                   docs.GITHUB_AUDIENCE,
                   # pull-request previews, and the deployment job's live-weights check
                   docs.github_subjects(args.repository, pull_requests=True) + env,
                   actions["preview"], PREVIEW_SESSION_S)  # fmt: skip
        self._role(name, "deploy", args.deploy_role_name, self.pulumi, docs.PULUMI_ISSUER,
                   args.organization, [docs.pulumi_deploy_subject(args.organization, args.stack)],
                   actions["deploy"],
                   max(args.deploy_session_s, docs.DEFAULT_SESSION_S))  # fmt: skip
        self._role(name, "rollout", f"{prefix}-rollout", self.github, docs.GITHUB_ISSUER,
                   docs.GITHUB_AUDIENCE, env, actions["rollout"], ROLLOUT_SESSION_S)  # fmt: skip
        if args.prunes:
            self._role(name, "prune-read", f"{prefix}-prune-read", self.github,
                       docs.GITHUB_ISSUER, docs.GITHUB_AUDIENCE, env, actions["prune-read"],
                       PRUNE_SESSION_S)  # fmt: skip
            self._role(name, "prune", f"{prefix}-prune", self.github, docs.GITHUB_ISSUER,
                       docs.GITHUB_AUDIENCE, env, actions["prune"], PRUNE_SESSION_S)  # fmt: skip
        if args.image_usage_trusted:
            usage = aws.iam.Role(
                f"{name}-image-usage",
                name=f"{prefix}-image-usage",
                assume_role_policy=docs.role_trust(args.image_usage_trusted),
                max_session_duration=PRUNE_SESSION_S,
                opts=child,
            )
            aws.iam.RolePolicy(
                f"{name}-image-usage-policy",
                role=usage.name,
                policy=docs.permission_policy(actions["image-usage"]),
                opts=child,
            )
            self.roles["image-usage"] = usage
        self.register_outputs({k: v.arn for k, v in self.roles.items()})

    def _role(self, name, kind, role_name, provider, issuer, audience, subjects, actions,
              session_s) -> None:  # fmt: skip
        child = pulumi.ResourceOptions(parent=self)
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
            f"{name}-{kind}-policy", role=role.name, policy=docs.permission_policy(actions),
            opts=child,
        )  # fmt: skip
        self.roles[kind] = role
