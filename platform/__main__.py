"""golden-fleet's platform: wiring only. Config is read once into ``PlatformConfig``; the
components are in bootstrap/, one per module."""

import json
import sys
from pathlib import Path

import pulumi
import pulumi_aws as aws

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # deploy.settings_file: the settings files' one reader

from bootstrap import config as platform_config  # noqa: E402
from bootstrap import pack_source  # noqa: E402
from bootstrap.account_access import AccountAccess, AccountAccessArgs, role_names  # noqa: E402
from bootstrap.ci_login import CiLogin, CiLoginArgs  # noqa: E402
from bootstrap.guardrails import Guardrails, GuardrailsArgs  # noqa: E402
from bootstrap.iam_documents import duration_seconds  # noqa: E402
from bootstrap.release_lock_table import ReleaseLockTable, ReleaseLockTableArgs  # noqa: E402
from bootstrap.stack_deployments import StackDeployments, StackDeploymentsArgs  # noqa: E402

from deploy.settings_file import fill_placeholders, load_settings, settings_path  # noqa: E402

cfg = platform_config.read()
PACK_DIR = ROOT / "policy"
# Before anything is registered: policy/ must be what the repository holds, or the published
# content hash would differ from a clean clone's (bootstrap/pack_source.py).
pack_source.check_pack_source(PACK_DIR)

# Each stack's service, whose roles the stack's deploy roles may change (<service>-*): checked
# for every stack before anything is registered.
services = {stack: platform_config.main_service(stack, ROOT) for stack in cfg.stacks}
for stack, target in cfg.stacks.items():
    role_arn = load_settings(settings_path(stack))["operationContext"]["oidc"]["aws"]["roleArn"]
    platform_config.check_outside_service_roles(
        services[stack],
        stack,
        [
            *role_names(stack, platform_config.deploy_role(role_arn, stack, target)[1]).values(),
            target.admin_role().rsplit("/", 1)[1],
        ],
    )

access: dict[str, AccountAccess] = {}
for stack, target in cfg.stacks.items():
    settings = fill_placeholders(
        load_settings(settings_path(stack)), {"GITHUB_REPOSITORY": cfg.repository}
    )
    StackDeployments(
        f"{stack}-deployments",
        StackDeploymentsArgs(cfg.organization, stack, settings, cfg.drift_schedule),
    )
    oidc = settings["operationContext"]["oidc"]["aws"]
    account, role_name = platform_config.deploy_role(oidc["roleArn"], stack, target)
    # Each account through its own admin role, assumed from the platform's credentials (the
    # organization's management or a delegated account): ambient credentials are one account,
    # and allowed_account_ids refuses any other before a call is made.
    provider = aws.Provider(
        f"{stack}-aws",
        region=target.region,
        allowed_account_ids=[target.account_id],
        assume_roles=[
            aws.ProviderAssumeRoleArgs(
                role_arn=target.admin_role(), session_name=f"golden-fleet-platform-{stack}"
            )
        ],
    )
    access[stack] = AccountAccess(
        f"{stack}-access",
        AccountAccessArgs(
            stack=stack,
            service=services[stack],
            account_id=target.account_id,
            organization=cfg.organization,
            repository=cfg.repository,
            environment=target.environment,
            deploy_role_name=role_name,
            deploy_session_s=duration_seconds(oidc.get("duration", "1h0m0s")),
            bakes=target.bakes,
            prunes=stack == "staging",
            image_usage_trusted=(
                tuple(
                    f"arn:aws:iam::{cfg.stacks['staging'].account_id}:role/golden-fleet-staging-{k}"
                    for k in ("prune", "prune-read")
                )
                if stack == "prod"
                else ()
            ),
        ),
        opts=pulumi.ResourceOptions(providers={"aws": provider}),
    )
    # The release lock's table in the stack's account and region; the rollout runner's role
    # (rollout, rollback --now) is the one that takes and halts the lock.
    ReleaseLockTable(
        f"{stack}-release-lock",
        ReleaseLockTableArgs(role_names={"rollout": access[stack].roles["rollout"].name}),
        opts=pulumi.ResourceOptions(providers={"aws": provider}),
    )

CiLogin(
    "ci-login",
    CiLoginArgs(
        organization=cfg.organization,
        repository=cfg.repository,
        environments=[target.environment for target in cfg.stacks.values()],
    ),
)

Guardrails(
    "guardrails",
    GuardrailsArgs(
        organization=cfg.organization,
        pack_dir=str(PACK_DIR),
        pack_version=cfg.policy_pack_version,
        pack_policies=pack_source.pack_policies(PACK_DIR, "mandatory"),
        pack_configs={
            stack: json.loads((PACK_DIR / f"{stack}.json").read_text(encoding="utf-8"))
            for stack in cfg.stacks
        },
    ),
)

# The repository variables the workflows read (docs/guides/new-organization.md).
pulumi.export(
    "repositoryVariables",
    {
        "PULUMI_ORG": cfg.organization,
        "AWS_REGION": cfg.stacks["prod"].region,
        "STAGING_PREVIEW_ROLE_ARN": access["staging"].roles["preview"].arn,
        "PROD_PREVIEW_ROLE_ARN": access["prod"].roles["preview"].arn,
        "STAGING_ROLLOUT_ROLE_ARN": access["staging"].roles["rollout"].arn,
        "PROD_ROLLOUT_ROLE_ARN": access["prod"].roles["rollout"].arn,
        "STAGING_PRUNE_ROLE_ARN": access["staging"].roles["prune"].arn,
        "STAGING_PRUNE_READ_ROLE_ARN": access["staging"].roles["prune-read"].arn,
        "PROD_IMAGE_USAGE_ROLE_ARN": access["prod"].roles["image-usage"].arn,
    },
)
