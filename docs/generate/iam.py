"""docs/reference/iam.md: the AWS permissions each role of a stack's account gets, read from
platform/bootstrap/iam_documents.py (role_actions: the function AccountAccess builds the
roles' policies from)."""

from __future__ import annotations

from itertools import groupby

from docs.generate.importing import from_directory
from docs.generate.markdown import code, header, table

# The two kinds of account the platform sets up (platform/__main__.py): staging's bakes the
# images and is where image retention runs; prod's promotes them and lets prune read its usage.
ACCOUNTS = {
    "staging": {"bakes": True, "prunes": True, "image_usage": False},
    "prod": {"bakes": False, "prunes": False, "image_usage": True},
}

INTRO = """\
# IAM permissions

`platform/` creates these roles in each stack's account (`golden-fleet-<stack>-<role>`; the
deploy role under the name `deploy/<stack>.deploy.yaml` gives it), each trusting one OIDC issuer
and the subjects that need it, with every action written out (no `*` action): see
[Set up a new organization](../guides/new-organization.md). The preview, prune and image-usage
roles read (prune also marks and deletes images). The deploy and rollout roles change resources
only where they are tagged `Service=<service>` or named for it: the column "scope" says how
each of their actions is granted, and
[Least privilege](../explanation/least-privilege.md) explains the kinds.

"""

# How each grant kind reads in the table (iam_documents.ServiceScope._condition).
KINDS = {
    "create": "new, tagged",
    "create-on-owned": "new, tagged, on the service's",
    "create-or-own": "new tagged, or the service's",
    "owned": "the service's",
    "owned-or-untagged": "the service's or untagged",
    "retag": "tags: the service's or untagged",
    "retag-owned": "tags: the service's",
    "untag": "untag, never Service",
    "ec2-create-action": "tags in the creating call",
    "elb-create-action": "tags in the creating call",
    "": "by name, or used",
}


def _scopes(documents, bakes: bool) -> dict[str, list[str]]:
    """Action -> how the deploy and rollout roles hold it."""
    found: dict[str, list[str]] = {}
    grants = {**documents.TAG_SCOPED, **(documents.BAKE_GRANTS if bakes else {})}
    for sid, grant in grants.items():
        for action in grant.actions:
            kind = KINDS[grant.condition]
            if sid in documents.BAKE_GRANTS:
                kind = f"{kind} (staging's bake)"
            if kind not in found.setdefault(action, []):
                found[action].append(kind)
    for sid, actions in documents.SCOPED_STATEMENTS.items():
        for action in actions:
            found.setdefault(action, []).append(f"`{sid}`")
    for action in documents.AWS_UNSCOPABLE:
        found.setdefault(action, []).append("`*`: AWS cannot scope it")
    return found


def render() -> str:
    with from_directory("platform", "bootstrap.iam_documents") as (documents,):
        accounts = {stack: documents.role_actions(**kinds) for stack, kinds in ACCOUNTS.items()}
        purposes = documents.role_actions.__doc__ or ""
        scopes = _scopes(documents, bakes=True)
    roles = list(dict.fromkeys(role for actions in accounts.values() for role in actions))
    summary = table(
        ("role", *ACCOUNTS),
        [(code(role), *(str(len(a[role])) + " actions" if role in a else "-"
                        for a in accounts.values())) for role in roles],
    )  # fmt: skip
    parts = [header("platform/bootstrap/iam_documents.py (role_actions)"), INTRO,
             "What each role is for (from `role_actions`):\n\n```text\n",
             purposes.split("\n\n", 1)[1].strip().replace("\n    ", "\n") + "\n```\n\n",
             summary]  # fmt: skip
    for role in roles:
        parts.append(f"\n## {role}\n\n")
        every = sorted({a for actions in accounts.values() for a in actions.get(role, ())})
        by_tags = role in ("deploy", "rollout")
        rows = []
        for service, actions in groupby(every, key=lambda a: a.split(":", 1)[0]):
            for action in actions:
                scope = []
                if by_tags:
                    scope = ["; ".join(scopes.get(action) or ["`*`: read"])]
                rows.append((code(service), code(action.split(":", 1)[1]),
                             *("yes" if action in a.get(role, ()) else "-"
                               for a in accounts.values()), *scope))  # fmt: skip
        head = ("service", "action", *ACCOUNTS, *(("scope",) if by_tags else ()))
        parts.append(table(head, rows))
    return "".join(parts)
