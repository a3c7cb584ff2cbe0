"""The release lock's DynamoDB table: its name and key, the one copy the release commands (which
read and write it) and platform/ (which declares it in each stack's account and region) share.

Imports nothing: platform/bootstrap/release_lock_table.py imports it without the release
package's dependencies.
"""

TABLE_NAME = "golden-fleet-release-locks"
PARTITION_KEY = "lock_key"  # a string: "<service>/<stack>" (release.lock.lock_key)


def lock_key(service: str, stack: str) -> str:
    """The item of one stack's lock: the service and the short stack name (the table is one
    per account and region, shared by every service deployed there)."""
    return f"{service}/{stack.split('/')[-1]}"
