"""The findings of cloudsplaining's policy scan that are accepted, each with its reason.

tests/test_iam_analysis.py scans every IAM policy document the program and platform/ register
and fails on a finding that no entry here covers, and on an entry that covers no finding.
Privilege escalation is never accepted. docs/explanation/least-privilege.md explains them.

``documents`` are patterns of document names: ``<stack>:<resource>`` for the program's,
``platform:<resource>`` for the platform's, ``aws:<name>`` for an AWS managed policy attached.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

# The scan's risks besides privilege escalation, as ``scan_policy`` names them.
RISKS = (
    "ResourceExposure",
    "DataExfiltration",
    "CredentialsExposure",
    "ServiceWildcard",
    "InfrastructureModification",
)


@dataclass(frozen=True)
class Accepted:
    documents: tuple[str, ...]  # fnmatch patterns of document names
    risk: str  # one of RISKS
    actions: tuple[str, ...]  # the actions (fnmatch patterns) this reason covers
    reason: str

    def covers(self, document: str, risk: str, action: str) -> bool:
        return (
            risk == self.risk
            and any(fnmatchcase(document, pattern) for pattern in self.documents)
            and any(fnmatchcase(action, pattern) for pattern in self.actions)
        )


BOUNDARIES = ("platform:*-access-boundary",)
SSM_CORE = ("aws:AmazonSSMManagedInstanceCore",)
# The deploy and rollout roles (pulumi up, the release command) have no accepted finding: every
# action of theirs that changes a resource is granted only on resources tagged Service=<service>
# or named for it (platform/bootstrap/iam_documents.py: TAG_SCOPED, SCOPED_STATEMENTS). What they
# hold on "*" besides reads is AWS_UNSCOPABLE there, each with its reason: actions that take no
# resource constraint, which the scan leaves out by design (cloudsplaining flags only actions
# that could be constrained); tests/test_iam_tags.py checks that list against the Service
# Authorization Reference.

ACCEPTED: tuple[Accepted, ...] = (
    Accepted(
        BOUNDARIES,
        "DataExfiltration",
        ("secretsmanager:GetSecretValue", "ssm:GetParameter", "ssm:GetParameters"),
        "A boundary grants nothing, it caps: the instance role's own policy names the secrets "
        "its stack configures, and the parameter fence denies every other parameter. Secrets "
        "may live in other accounts under any name, so the cap cannot name them.",
    ),
    Accepted(
        BOUNDARIES,
        "InfrastructureModification",
        ("ssm:*", "secretsmanager:GetSecretValue"),
        "What AmazonSSMManagedInstanceCore lets the SSM agent do, and the secret read above, "
        "let through by the cap; a role under it gets only what its own policies also grant.",
    ),
    Accepted(
        SSM_CORE,
        "DataExfiltration",
        ("ssm:GetParameter", "ssm:GetParameters"),
        "AWS's policy for Session Manager. Every instance role also carries the parameter "
        "fence (components/policies.py: parameter_fence_policy), an explicit deny of every "
        "parameter but the configured ones, which wins over this allow.",
    ),
    Accepted(
        SSM_CORE,
        "InfrastructureModification",
        ("ssm:*",),
        "The SSM agent reporting its own instance (inventory, association status, compliance, "
        "instance information): AWS's managed policy, which the instances need for Session "
        "Manager instead of SSH.",
    ),
    Accepted(
        ("platform:staging-access-prune-policy",),
        "InfrastructureModification",
        ("ec2:CreateTags", "ec2:DeleteTags", "ec2:DeregisterImage", "ec2:DeleteSnapshot"),
        "Image retention with --apply (release/prune.py): marks, deregisters and deletes the "
        "images no stack file, group, launch template or instance uses, and their snapshots; "
        "image and snapshot ids are unknown beforehand.",
    ),
)


@dataclass(frozen=True)
class ClosedEscalation:
    """An escalation method whose actions a document holds only under constraints, which
    cloudsplaining's default scan trusts and its "flag everything" mode ignores: the statements
    (by Sid) that hold them, and why those close the path."""

    method: str  # cloudsplaining's name of the method
    statements: tuple[str, ...]  # the Sids granting its constrained actions
    reason: str


_BOUNDARY = (
    "only on roles named <service>-* that carry the service's boundary, which caps whatever "
    "the role is given to the instances' work and denies every IAM change and sts:AssumeRole"
)
# What the deploy and rollout roles hold, scanned with every constraint ignored.
CLOSED_ESCALATIONS: tuple[ClosedEscalation, ...] = (
    ClosedEscalation("PutRolePolicy", ("ServiceRolesCarryTheBoundary",), _BOUNDARY + "."),
    ClosedEscalation(
        "AttachRolePolicy",
        ("AttachOnlyTheInstancePolicies",),
        _BOUNDARY + ", and only AmazonSSMManagedInstanceCore (iam:PolicyARN).",
    ),
    ClosedEscalation(
        "UpdateRolePolicyToAssumeIt",
        ("ServiceRolesCarryTheBoundary",),
        "A new trust " + _BOUNDARY + ": assuming such a role gives no more than the boundary.",
    ),
    ClosedEscalation(
        "AttachRolePolicyThenUpdateAssumeRolePolicy",
        ("AttachOnlyTheInstancePolicies", "ServiceRolesCarryTheBoundary"),
        "Both halves " + _BOUNDARY + ".",
    ),
    ClosedEscalation(
        "PutRolePolicyThenUpdateAssumeRolePolicy",
        ("ServiceRolesCarryTheBoundary",),
        "Both halves " + _BOUNDARY + ".",
    ),
    ClosedEscalation(
        "CreateEC2WithExistingIP",
        ("PassServiceRolesToEc2",),
        "PassRole only of roles named <service>-* (the boundary's roles; the platform refuses a "
        "service name covering its own) and only to ec2.amazonaws.com.",
    ),
    ClosedEscalation(
        "ModifyExistingEC2LaunchTemplate",
        ("ServiceLaunchTemplates",),
        "New versions and default changes only of launch templates tagged Service=<service>, "
        "whose instances get only the service's roles.",
    ),
)
