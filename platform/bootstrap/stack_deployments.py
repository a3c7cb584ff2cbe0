"""``StackDeployments``: one stack's Pulumi Deployments settings and its drift check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_pulumiservice as ps

from bootstrap.iam_documents import MAIN_PROJECT

_TOP = {"sourceContext", "gitHub", "operationContext"}


@dataclass(frozen=True)
class StackDeploymentsArgs:
    organization: str  # Pulumi Cloud organization
    stack: str  # the main project's stack
    settings: Mapping[str, Any]  # deploy/<stack>.deploy.yaml's `settings:`, placeholders filled
    drift_schedule: str  # cron of the drift check


def settings_inputs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The provider's inputs for the settings file: every key mapped, an unknown one refused
    (the resource is the whole truth, so nothing in the file may be dropped on the way)."""
    git = dict(settings["sourceContext"]["git"])
    github = dict(settings["gitHub"])
    op = dict(settings["operationContext"])
    options = dict(op.get("options") or {})
    aws = dict(op["oidc"]["aws"])
    for what, value, known in (
        ("", settings, _TOP),
        ("sourceContext.git.", git, {"branch", "repoDir"}),
        ("gitHub.", github, {"repository", "deployCommits", "previewPullRequests",
                             "pullRequestTemplate", "paths"}),
        ("operationContext.", op, {"environmentVariables", "preRunCommands", "options", "oidc"}),
        ("operationContext.options.", options, {"skipInstallDependencies",
                                                "skipIntermediateDeployments", "shell"}),
        ("operationContext.oidc.aws.", aws, {"roleArn", "sessionName", "duration",
                                             "policyArns"}),
    ):  # fmt: skip
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"settings key {what}{unknown[0]} is not mapped to the provider")
    return {
        "source_context": ps.DeploymentSettingsSourceContextArgs(
            git=ps.DeploymentSettingsGitSourceArgs(
                branch=git.get("branch"), repo_dir=git.get("repoDir")
            )
        ),
        "vcs": ps.DeploymentSettingsVcsArgs(
            provider="github",
            repository=github.get("repository"),
            deploy_commits=github.get("deployCommits"),
            preview_pull_requests=github.get("previewPullRequests"),
            pull_request_template=github.get("pullRequestTemplate"),
            paths=github.get("paths"),
        ),
        "operation_context": ps.DeploymentSettingsOperationContextArgs(
            environment_variables=op.get("environmentVariables"),
            pre_run_commands=op.get("preRunCommands"),
            options=ps.OperationContextOptionsArgs(
                skip_install_dependencies=options.get("skipInstallDependencies"),
                skip_intermediate_deployments=options.get("skipIntermediateDeployments"),
                shell=options.get("shell"),
            ),
            oidc=ps.OperationContextOIDCArgs(
                aws=ps.AWSOIDCConfigurationArgs(
                    role_arn=aws["roleArn"],
                    session_name=aws["sessionName"],
                    duration=aws.get("duration"),
                    policy_arns=aws.get("policyArns"),
                )
            ),
        ),
    }


class StackDeployments(pulumi.ComponentResource):
    def __init__(self, name: str, args: StackDeploymentsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:  # fmt: skip
        super().__init__("golden-fleet-platform:index:StackDeployments", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.settings = ps.DeploymentSettings(
            f"{name}-settings",
            organization=args.organization,
            project=MAIN_PROJECT,
            stack=args.stack,
            **settings_inputs(args.settings),
            opts=child,
        )
        # Reports drift (an out-of-band listener change, e.g. after `rollback --now`) and never
        # remediates: a remediation would put the file's weights back on the live listener.
        self.drift = ps.DriftSchedule(
            f"{name}-drift",
            organization=args.organization,
            project=MAIN_PROJECT,
            stack=args.stack,
            schedule_cron=args.drift_schedule,
            auto_remediate=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.settings]),
        )
        self.register_outputs({})
