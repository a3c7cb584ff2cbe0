"""docs/reference/policies.md: every policy of the pack (policy/), as the pack declares it
(name, description, configuration), where it applies, its enforcement per stack
(policy/<stack>.json) and, from its rule's docstring, what it fires on and what to change."""

from __future__ import annotations

import inspect
import json
import re

from docs.generate.importing import ROOT, from_directory
from docs.generate.markdown import code, header, table

STACKS = ("prod", "staging")

INTRO = """\
# Policy pack

The CrossGuard policies in `policy/` (explained in
[Guardrails the engine enforces](../explanation/policy-pack.md)). Run them with a preview:

```sh
pulumi preview --stack prod --policy-pack policy --policy-pack-config policy/prod.json
```

"""


def _paragraph(doc: str, label: str) -> str:
    match = re.search(rf"^{label}:\s*(.*?)(?:\n\s*\n|\Z)", doc, re.MULTILINE | re.DOTALL)
    return " ".join(match[1].split()) if match else ""


def _enforcement(policy: str) -> dict[str, str]:
    levels = {}
    for stack in STACKS:
        settings = json.loads((ROOT / "policy" / f"{stack}.json").read_text())
        own = settings.get(policy)
        level = own.get("enforcementLevel") if isinstance(own, dict) else own
        levels[stack] = level or settings.get("all", "advisory")
        if isinstance(own, dict):
            extra = {k: v for k, v in own.items() if k != "enforcementLevel"}
            if extra:
                levels[stack] += " " + ", ".join(f"{code(k)}: {code(json.dumps(v))}"
                                                 for k, v in extra.items())  # fmt: skip
    return levels


def render() -> str:
    with from_directory("policy", "rules", "policies") as (rules, policies):
        declared = policies.all_policies()
        functions = {name: rule for name, (_, rule) in rules.RESOURCE_RULES.items()}
        functions |= dict(rules.STACK_RULES)
        functions[policies.LISTENER_POLICY] = rules.listener_tls13_or_redirect
        applies = {name: type_ for name, (type_, _) in rules.RESOURCE_RULES.items()}
        applies[policies.LISTENER_POLICY] = rules.LISTENER
        rows = []
        for policy in declared:
            doc = inspect.getdoc(functions[policy.name]) or ""
            where = (
                code(applies[policy.name]) if policy.name in applies
                else "the whole stack (stack policy)"
            )  # fmt: skip
            levels = _enforcement(policy.name)
            schema = getattr(policy, "config_schema", None)
            config = ""
            if schema is not None:
                config = ", ".join(
                    f"{code(k)} ({v.get('type')}, default {code(json.dumps(v.get('default')))})"
                    for k, v in schema.properties.items()
                )
            rows.append((
                code(policy.name), policy.description, where, _paragraph(doc, "Fires on"),
                _paragraph(doc, "Fix"), config, levels["prod"], levels["staging"],
            ))  # fmt: skip
    head = ("policy", "requires", "applies to", "fires on", "says what to change", "config",
            "prod", "staging")  # fmt: skip
    return "".join([header("policy/ (the pack's own policies and rules)"), INTRO,
                    table(head, rows)])  # fmt: skip
