"""golden-fleet's CrossGuard policy pack: the pattern's invariants, enforced by the engine.

Run with ``pulumi preview --policy-pack policy --policy-pack-config policy/<stack>.json``. The
rules are plain functions in ``rules.py``; ``policies.py`` wraps them. Prod's config makes every
policy mandatory; staging's keeps them advisory and allows its HTTP-only listener.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # rules.py and policies.py beside this

from policies import all_policies
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name="golden-fleet",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=all_policies(),
)
