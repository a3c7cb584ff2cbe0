"""``CiLogin``: GitHub Actions registered with Pulumi Cloud as an OIDC issuer, so the workflows'
``pulumi/auth-actions`` step can exchange the job's GitHub token for an organization token.

Without it the exchange is refused and no workflow can reach Pulumi Cloud. The authorization
policy allows exactly the jobs that log in: a pull request's preview job (GitHub's ``sub``
``repo:<owner>/<name>:pull_request``) and the jobs in each stack's GitHub environment
(``repo:<owner>/<name>:environment:<env>``: the deployment and rollout jobs), each with the
audience auth-actions asks for, ``urn:pulumi:org:<organization>`` (Pulumi's "Configuring OpenID
Connect for GitHub" guide). Other repositories, branches and environments are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_pulumiservice as pulumiservice

from bootstrap import iam_documents as docs

GITHUB_ISSUER_URL = f"https://{docs.GITHUB_ISSUER}"
# The longest job that holds the exchanged token: the rollout (rollout.yml, timeout-minutes 240).
MAX_TOKEN_S = 4 * 3600


def pulumi_audience(organization: str) -> str:
    """The ``aud`` of the GitHub token auth-actions requests for ``organization``."""
    return f"urn:pulumi:org:{organization}"


def login_subjects(repository: str, environments: list[str]) -> list[str]:
    """GitHub ``sub`` claims of the jobs that log in: pull requests, then each environment."""
    subjects = docs.github_subjects(repository, pull_requests=True)
    for environment in sorted(set(environments)):
        subjects += docs.github_subjects(repository, environment=environment)
    return subjects


def login_policies(organization: str, repository: str, environments: list[str]) -> list[dict]:
    """One allow rule per subject, for organization tokens, each bound to the audience."""
    return [
        {
            "decision": "allow",
            "token_type": "organization",
            "rules": {"aud": pulumi_audience(organization), "sub": subject},
        }
        for subject in login_subjects(repository, environments)
    ]


@dataclass(frozen=True)
class CiLoginArgs:
    organization: str  # the Pulumi Cloud organization the workflows log in to
    repository: str  # owner/name on GitHub
    environments: list[str]  # the GitHub environments the stacks' jobs run in


class CiLogin(pulumi.ComponentResource):
    def __init__(self, name: str, args: CiLoginArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:  # fmt: skip
        super().__init__("golden-fleet-platform:index:CiLogin", name, None, opts)
        self.issuer = pulumiservice.OidcIssuer(
            f"{name}-github",
            organization=args.organization,
            name="github-actions",
            url=GITHUB_ISSUER_URL,
            max_expiration_seconds=MAX_TOKEN_S,
            policies=[
                pulumiservice.AuthPolicyDefinitionArgs(
                    decision=pulumiservice.AuthPolicyDecision(policy["decision"]),
                    token_type=pulumiservice.AuthPolicyTokenType(policy["token_type"]),
                    rules=policy["rules"],
                )
                for policy in login_policies(args.organization, args.repository, args.environments)
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"issuer": self.issuer.id})
