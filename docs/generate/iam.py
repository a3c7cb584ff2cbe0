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
[Set up a new organization](../guides/new-organization.md). Every role's policy allows its
actions on `"Resource": "*"`.

"""


def render() -> str:
    with from_directory("platform", "bootstrap.iam_documents") as (documents,):
        accounts = {stack: documents.role_actions(**kinds) for stack, kinds in ACCOUNTS.items()}
        purposes = documents.role_actions.__doc__ or ""
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
        rows = []
        for service, actions in groupby(every, key=lambda a: a.split(":", 1)[0]):
            for action in actions:
                rows.append((code(service), code(action.split(":", 1)[1]),
                             *("yes" if action in a.get(role, ()) else "-"
                               for a in accounts.values())))  # fmt: skip
        parts.append(table(("service", "action", *ACCOUNTS), rows))
    return "".join(parts)
