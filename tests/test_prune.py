"""``python -m release prune``: exactly the images nothing uses go, with their snapshots, in
every region; a dry run, a second run and a denied call change nothing.

The fixture runs against moto (in process, and once as a server on 127.0.0.1 reached through
``AWS_ENDPOINT_URL``): images of several versions baked in eu-west-1 and copied to
eu-central-1, a launch template whose old version still names an old image, running and
terminated instances, images of another service and a hand-made one, and the project's stack
files. moto gives every image one snapshot of its own; a snapshot shared by two images is
covered by the pure tests at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from harness import stack_file
from local_aws import moto_server, use_test_credentials
from moto import mock_aws

from release import prune
from release.cli import main
from release.prune import Decision, Image, RegionView, freed_snapshots, semver_key

HOME, COPY = "eu-west-1", "eu-central-1"
VERSIONS = ["1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0", "1.9.0", "1.10.0", "2.0.0-rc.1"]
# staging: blue 1.4.0, green 1.5.0; prod: 1.4.0 on both colors.
# newest 3 in semver order: 2.0.0-rc.1, 1.10.0, 1.9.0 (string order would drop 1.10.0).
# eu-west-1: launch template v1 names 1.2.0; eu-central-1: a running instance on 1.3.0.
GOES = {(HOME, "1.1.0"), (HOME, "1.3.0"), (COPY, "1.1.0"), (COPY, "1.2.0")}
# The account the images are shared with, and its read-only role for --usage-role.
PROD_ACCOUNT = "222222222222"
USAGE_ROLE = f"arn:aws:iam::{PROD_ACCOUNT}:role/golden-fleet-image-usage"


def image_name(version: str) -> str:
    return f"checkout-{version}-20260{VERSIONS.index(version) + 1}01T120000Z"


@pytest.fixture
def project(tmp_path) -> Path:
    """A project root: Pulumi.yaml and both stack files, staging copying to eu-central-1."""
    (tmp_path / "Pulumi.yaml").write_text("name: golden-fleet\nruntime: python\n")
    shutil.copyfile(stack_file("prod"), tmp_path / "Pulumi.prod.yaml")
    staging = Path(stack_file("staging")).read_text()
    staging, count = re.subn(r"(?m)^(\s*)copyToRegions:.*$", rf"\1copyToRegions: [{COPY}]", staging)
    assert count == 1
    (tmp_path / "Pulumi.staging.yaml").write_text(staging)
    return tmp_path


def credentials(monkeypatch):
    use_test_credentials(monkeypatch)
    # moto otherwise loads thousands of public images per region: slow, and not this account's.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


def build_fixture() -> None:
    """The account's images, launch templates and instances (see the module docstring)."""
    ids: dict[tuple[str, str], str] = {}
    for region in (HOME, COPY):
        ec2 = boto3.client("ec2", region_name=region)
        for version in VERSIONS:
            ids[(region, version)] = ec2.register_image(
                Name=image_name(version), RootDeviceName="/dev/xvda", VirtualizationType="hvm"
            )["ImageId"]
        for other in ("checkout-api-1.1.0-20260101T120000Z", "checkout-manual"):
            ec2.register_image(Name=other, RootDeviceName="/dev/xvda")
    home = boto3.client("ec2", region_name=HOME)
    template = home.create_launch_template(
        LaunchTemplateName="checkout-blue",
        LaunchTemplateData={"ImageId": ids[(HOME, "1.2.0")]},
    )["LaunchTemplate"]["LaunchTemplateId"]
    home.create_launch_template_version(
        LaunchTemplateId=template, LaunchTemplateData={"ImageId": ids[(HOME, "1.4.0")]}
    )
    # A terminated instance protects nothing.
    gone = home.run_instances(ImageId=ids[(HOME, "1.1.0")], MinCount=1, MaxCount=1)
    home.terminate_instances(InstanceIds=[gone["Instances"][0]["InstanceId"]])
    boto3.client("ec2", region_name=COPY).run_instances(
        ImageId=ids[(COPY, "1.3.0")], MinCount=1, MaxCount=1
    )


def inventory() -> dict[str, set]:
    """Every image name and snapshot id this account has, per region."""
    state = {}
    for region in (HOME, COPY):
        ec2 = boto3.client("ec2", region_name=region)
        images = ec2.describe_images(Owners=["self"])["Images"]
        snapshots = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        state[region] = {i["Name"] for i in images} | {s["SnapshotId"] for s in snapshots}
    return state


def image_snapshots(region: str) -> dict[str, set[str]]:
    ec2 = boto3.client("ec2", region_name=region)
    return {
        i["Name"]: {m["Ebs"]["SnapshotId"] for m in i["BlockDeviceMappings"] if "Ebs" in m}
        for i in ec2.describe_images(Owners=["self"])["Images"]
    }


def arguments(**overrides) -> argparse.Namespace:
    values = {
        "stack": "staging",
        "region": None,
        "all_regions": False,
        "keep": 3,
        "apply": False,
        "usage_role": None,
    }
    return argparse.Namespace(**{**values, **overrides})


@pytest.fixture
def account(monkeypatch):
    credentials(monkeypatch)
    with mock_aws():
        build_fixture()
        yield


def run(project: Path, clients=None, **overrides) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = prune.run(
        arguments(**overrides), project / "Pulumi.staging.yaml", project, lines.append, clients
    )
    return code, "\n".join(lines).splitlines()


def test_exactly_the_unused_images_and_their_snapshots_go_in_every_region(account, project):
    """--apply deletes the images nothing keeps, in both regions, and exactly their snapshots;
    every other image (kept, another service's, hand-made) and its snapshot stays."""
    before = {region: image_snapshots(region) for region in (HOME, COPY)}
    code, lines = run(project, apply=True)
    assert code == 0
    for region in (HOME, COPY):
        after = image_snapshots(region)
        expected_gone = {image_name(v) for r, v in GOES if r == region}
        assert set(before[region]) - set(after) == expected_gone, region
        remaining = {s for snaps in after.values() for s in snaps}
        ec2 = boto3.client("ec2", region_name=region)
        snapshots = {
            s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        }
        for name in expected_gone:
            assert not before[region][name] & snapshots, f"{name} left its snapshot in {region}"
        assert remaining <= snapshots, f"a kept image lost its snapshot in {region}"
    table = "\n".join(lines)
    assert "deleted 4 images and 4 snapshots" in table
    assert re.search(rf"{HOME}\s+1\.2\.0\s+\S+\s+kept: launch template checkout-blue v1", table)
    assert re.search(rf"{COPY}\s+1\.3\.0\s+\S+\s+kept: instance i-", table)
    assert re.search(rf"{HOME}\s+1\.10\.0\s+\S+\s+kept: newest 3", table)
    assert re.search(
        rf"{HOME}\s+1\.4\.0\s+\S+\s+kept: Pulumi\.prod\.yaml blue, Pulumi\.prod\.yaml green, "
        r"Pulumi\.staging\.yaml blue, launch template checkout-blue v2",
        table,
    ), table


def test_a_dry_run_changes_nothing_and_says_what_would_go(account, project):
    before = inventory()
    code, lines = run(project)
    assert code == 0
    assert inventory() == before
    assert sum("would delete" in line for line in lines) == len(GOES)
    assert lines[-1].startswith("dry run: 4 images and 4 snapshots would be deleted")


def test_a_second_run_is_a_no_op(account, project):
    run(project, apply=True)
    after_first = inventory()
    code, lines = run(project, apply=True)
    assert code == 0 and inventory() == after_first
    assert lines[-1] == "deleted 0 images and 0 snapshots"
    assert not [line for line in lines if "would delete" in line or "deleted," in line]


def denying(method: str, region: str):
    """A client factory whose ``method`` is refused in ``region``, as IAM would."""

    def clients(service: str, where: str):
        client = boto3.client(service, region_name=where)
        if where == region and hasattr(client, method):

            def refuse(**_):
                raise ClientError(
                    {"Error": {"Code": "UnauthorizedOperation", "Message": "denied"}},
                    method,
                )

            setattr(client, method, refuse)
        return client

    return clients


@pytest.mark.parametrize(
    ("method", "region"),
    [
        ("describe_launch_template_versions", HOME),
        ("describe_instances", COPY),  # the last region read: the first is complete by then
        ("describe_launch_configurations", COPY),
        ("describe_snapshots", HOME),
    ],
)
def test_a_denied_call_stops_before_any_deletion(account, project, method, region):
    """Any read refused in any region: one error naming the call and region, nothing deleted."""
    before = inventory()
    with pytest.raises(prune.PruneError, match=r"was refused \(UnauthorizedOperation\)"):
        run(project, denying(method, region), apply=True)
    assert inventory() == before


def test_a_stack_file_that_does_not_parse_stops_everything(account, project):
    """Its versions are unknown, so nothing may go; the error names the file."""
    (project / "Pulumi.canary.yaml").write_text("config:\n  golden-fleet:fleets: [\n")
    before = inventory()
    with pytest.raises(prune.PruneError, match=r"Pulumi\.canary\.yaml does not parse"):
        run(project, apply=True)
    assert inventory() == before


def test_versions_another_stack_file_names_are_kept(account, project):
    """A third stack file of the service on 1.1.0 keeps 1.1.0 in both regions."""
    prod = (project / "Pulumi.prod.yaml").read_text()
    (project / "Pulumi.canary.yaml").write_text(prod.replace("version: 1.4.0", "version: 1.1.0", 1))
    code, lines = run(project)
    assert code == 0
    kept = [line for line in lines if re.search(r"\s1\.1\.0\s", line)]
    assert len(kept) == 2 and all("kept: Pulumi.canary.yaml blue" in line for line in kept)


def test_a_promote_stack_is_refused(account, project):
    """prod's images are staging's account's: pruning belongs to the baking stack."""
    with pytest.raises(prune.PruneError, match=r"prune where they are baked \(Pulumi\.staging"):
        prune.run(arguments(stack="prod"), project / "Pulumi.prod.yaml", project, print)


def test_region_flag_limits_the_regions(account, project):
    before = inventory()
    code, _ = run(project, region=[COPY], apply=True)
    assert code == 0
    after = inventory()
    assert after[HOME] == before[HOME]
    assert {image_name("1.1.0"), image_name("1.2.0")} <= before[COPY] - after[COPY]


# ---------------------------------------------------------------------------------------------
# Copies in a region that left copyToRegions (the program retains them; prune takes over)
# ---------------------------------------------------------------------------------------------
LEFT = "eu-north-1"  # staging copied here once; copyToRegions no longer names it


def leave_copies_in(region: str) -> dict[str, str]:
    """Copies of 1.1.0-1.4.0 in ``region``, made as the program made them (CopyImage from the
    home image with the same name, encrypted with that region's key, the Version tag, prod's
    launch permission) and left behind when the region left the config. Returns version -> id."""
    home = boto3.client("ec2", region_name=HOME)
    there = boto3.client("ec2", region_name=region)
    key = boto3.client("kms", region_name=region).create_key()["KeyMetadata"]["Arn"]
    copies = {}
    for version in ("1.1.0", "1.2.0", "1.3.0", "1.4.0"):
        [source] = home.describe_images(
            Owners=["self"], Filters=[{"Name": "name", "Values": [image_name(version)]}]
        )["Images"]
        copy_id = there.copy_image(
            SourceRegion=HOME,
            SourceImageId=source["ImageId"],
            Name=image_name(version),
            Encrypted=True,
            KmsKeyId=key,
        )["ImageId"]
        there.create_tags(Resources=[copy_id], Tags=[{"Key": "Version", "Value": version}])
        there.modify_image_attribute(
            ImageId=copy_id, LaunchPermission={"Add": [{"UserId": PROD_ACCOUNT}]}
        )
        copies[version] = copy_id
    return copies


def prod_client(service: str, region: str):
    """A client in prod's account (moto: the account of the assumed role's credentials)."""
    keys = boto3.client("sts", region_name=HOME).assume_role(
        RoleArn=USAGE_ROLE, RoleSessionName="fixture"
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
        region_name=region,
    ).client(service)


def names_in(region: str) -> set[str]:
    ec2 = boto3.client("ec2", region_name=region)
    return {i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"]}


def test_copies_left_in_a_region_no_longer_in_the_config_are_pruned_when_unused(account, project):
    """Staging no longer copies to eu-north-1, but its copies there were retained. The default
    regions do not reach them; --all-regions does, keeps the copy prod's launch template
    there uses (read through --usage-role), the copy this account's instance runs and the
    version a stack file names, and deletes the unused copy with its snapshot."""
    copies = leave_copies_in(LEFT)
    prod_client("ec2", LEFT).create_launch_template(
        LaunchTemplateName="checkout-blue", LaunchTemplateData={"ImageId": copies["1.2.0"]}
    )
    boto3.client("ec2", region_name=LEFT).run_instances(
        ImageId=copies["1.3.0"], MinCount=1, MaxCount=1
    )
    left_snapshots = image_snapshots(LEFT)

    code, lines = run(project, usage_role=[USAGE_ROLE], apply=True)
    assert code == 0 and LEFT not in "\n".join(lines), "the default regions reach eu-north-1"
    assert names_in(LEFT) == {image_name(v) for v in copies}

    _, dry = run(project, all_regions=True)
    table = "\n".join(dry)
    assert re.search(rf"{copies['1.1.0']}\s+{LEFT}\s+1\.1\.0\s+\S+\s+would delete", table), table
    assert re.search(rf"{copies['1.2.0']}\s+{LEFT}\s+1\.2\.0\s+\S+\s+would delete", table), (
        "without --usage-role prod's template is not seen"
    )

    code, lines = run(project, all_regions=True, usage_role=[USAGE_ROLE], apply=True)
    assert code == 0
    table = "\n".join(lines)
    assert f"(found in {', '.join(sorted((HOME, COPY, LEFT)))})" in table
    assert names_in(LEFT) == {image_name(v) for v in ("1.2.0", "1.3.0", "1.4.0")}
    assert re.search(
        rf"{LEFT}\s+1\.2\.0\s+\S+\s+kept: {PROD_ACCOUNT} launch template "
        r"checkout-blue v1",
        table,
    ), table
    assert re.search(rf"{LEFT}\s+1\.3\.0\s+\S+\s+kept: instance i-", table), table
    assert re.search(rf"{LEFT}\s+1\.4\.0\s+\S+\s+kept: Pulumi\.prod\.yaml blue", table), table
    snapshots = {
        s["SnapshotId"]
        for s in boto3.client("ec2", region_name=LEFT).describe_snapshots(OwnerIds=["self"])[
            "Snapshots"
        ]
    }
    assert not left_snapshots[image_name("1.1.0")] & snapshots, "the copy left its snapshot"
    assert set().union(*(left_snapshots[image_name(v)] for v in ("1.2.0", "1.3.0", "1.4.0"))) <= (
        snapshots
    ), "a kept copy lost its snapshot"


def test_region_names_a_region_that_left_the_config(account, project):
    """--region reaches a left-behind region as well, and only the regions it names."""
    copies = leave_copies_in(LEFT)
    before = inventory()
    code, lines = run(project, region=[LEFT], apply=True)
    assert code == 0 and inventory() == before, "eu-west-1 or eu-central-1 was touched"
    # The newest --keep versions are counted over the regions read: 1.2.0-1.4.0 here.
    assert names_in(LEFT) == {image_name(v) for v in ("1.2.0", "1.3.0", "1.4.0")}
    assert any(copies["1.2.0"] in line and "kept: newest 3" in line for line in lines)
    assert lines[-1] == "deleted 1 images and 1 snapshots"


@pytest.mark.parametrize(
    ("method", "region"),
    [("describe_regions", HOME), ("describe_instances", LEFT), ("describe_images", LEFT)],
)
def test_all_regions_stops_before_any_deletion_when_a_read_is_refused(
    account, project, method, region
):
    """DescribeRegions refused, or any read in the left-behind region: nothing deleted."""
    leave_copies_in(LEFT)
    before = {r: names_in(r) for r in (HOME, COPY, LEFT)}
    with pytest.raises(prune.PruneError, match=rf"in {region} was refused"):
        run(project, denying(method, region), all_regions=True, apply=True)
    assert {r: names_in(r) for r in (HOME, COPY, LEFT)} == before


def test_usage_is_read_only_where_the_service_has_images(account, project):
    """A region without this service's images needs no launch-template or instance reads: a
    refusal there stops nothing (an image can only be used in its own region)."""
    code, lines = run(project, denying("describe_instances", "us-east-1"), all_regions=True)
    assert code == 0 and lines[-1].startswith("dry run: 4 images and 4 snapshots")
    assert f"(found in {COPY}, {HOME})" in lines[0]


def test_the_command_takes_all_regions_and_refuses_it_with_region(
    account, project, monkeypatch, capsys
):
    leave_copies_in(LEFT)
    monkeypatch.chdir(project)
    assert main(["prune", "staging", "--all-regions"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"{LEFT}\s+1\.1\.0\s+\S+\s+would delete", out), out
    with pytest.raises(SystemExit) as exit_:
        main(["prune", "staging", "--all-regions", "--region", LEFT])
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# The command line, against a local AWS API through AWS_ENDPOINT_URL
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def endpoint(monkeypatch):
    with moto_server() as url:
        credentials(monkeypatch)
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        urllib.request.urlopen(
            urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=5
        ).close()
        yield


def test_the_command_prunes_through_aws_endpoint_url(endpoint, project, monkeypatch, capsys):
    """`prune staging` is a dry run; `--apply` deletes; both against the local endpoint."""
    build_fixture()
    monkeypatch.chdir(project)
    before = inventory()
    assert main(["prune", "staging"]) == 0
    assert inventory() == before
    assert "would delete" in capsys.readouterr().out
    assert main(["prune", "staging", "--apply", "--keep", "3"]) == 0
    out = capsys.readouterr().out
    assert "deleted 4 images and 4 snapshots" in out
    assert {image_name("1.1.0"), image_name("1.3.0")} <= before[HOME] - inventory()[HOME]


@pytest.mark.parametrize("value", ["0", "-1", "1001", "3\n", " 3", "\u0663", "3.0", "1_0"])
def test_keep_refuses_anything_but_a_plain_count(capsys, value):
    """One line, exit 2, nothing read."""
    with pytest.raises(SystemExit) as exit_:
        main(["prune", "staging", "--keep", value])
    assert exit_.value.code == 2
    assert "is not a number of versions to keep from 1 to 1000" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["eu-west-1\n", "EU-WEST-1", "eu_west_1", "x"])
def test_region_refuses_what_is_not_a_region(capsys, value):
    with pytest.raises(SystemExit) as exit_:
        main(["prune", "staging", "--region", value])
    assert exit_.value.code == 2 and "is not an AWS region name" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Pure rules
# ---------------------------------------------------------------------------------------------
def test_versions_sort_by_semver_not_by_string():
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.9.0",
        "1.10.0",
        "2.0.0-rc.1",
        "2.0.0",
    ]  # semver.org, section 11, extended
    assert sorted(reversed(ordered), key=semver_key) == ordered


def test_a_snapshot_another_image_uses_is_never_freed():
    """A snapshot goes only when every image using it goes, and only if this account owns it."""
    a = Image("ami-a", HOME, image_name("1.1.0"), "1.1.0", "available", ("snap-shared", "snap-a"))
    b = Image("ami-b", HOME, image_name("1.2.0"), "1.2.0", "available", ("snap-shared",))
    view = RegionView(
        HOME,
        [a, b],
        {"snap-shared": {"ami-a", "ami-b"}, "snap-a": {"ami-a"}, "snap-foreign": {"ami-a"}},
    )
    owned = {"snap-shared", "snap-a"}
    assert freed_snapshots(view, [Decision(a)], owned) == {"snap-a"}
    assert freed_snapshots(view, [Decision(a), Decision(b)], owned) == {"snap-shared", "snap-a"}
    assert freed_snapshots(view, [Decision(a)], set()) == set()


def test_pending_images_and_foreign_names_are_never_candidates():
    """A copy in progress is kept; names that are not <service>-<semver>-<timestamp> are not
    this service's images at all."""
    pending = Image("ami-p", HOME, image_name("1.1.0"), "1.1.0", "pending", ())
    [decision] = prune.decide([pending], 1, {}, {})
    assert decision.kept  # newest 1 as well; check the pending reason on an older one
    older = Image("ami-o", HOME, image_name("1.2.0"), "1.2.0", "pending", ())
    newer = Image("ami-n", HOME, image_name("1.3.0"), "1.3.0", "available", ())
    decisions = {d.image.image_id: d.reasons for d in prune.decide([older, newer], 1, {}, {})}
    assert decisions["ami-o"] == ["pending"]
    for name in (
        "checkout-api-1.1.0-20260101T120000Z",
        "checkout-1.1.0",
        "checkout-latest-20260101T120000Z",
        "checkout-1.1.0-20260101T120000Z\n",
    ):
        assert prune.image_of({"Name": name, "ImageId": "ami-x"}, "checkout", HOME) is None


# ---------------------------------------------------------------------------------------------
# The scheduled workflow (.github/workflows/prune-images.yml; tests/test_ci_files.py lints it)
# ---------------------------------------------------------------------------------------------
def test_the_workflow_dry_runs_weekly_and_applies_only_on_dispatch():
    """Schedule and dispatch only; --apply only when dispatched with apply ticked; the apply
    role only then; OIDC with read-only repository access; inputs reach the shell as
    variables; the table goes to the job summary even when the prune fails."""
    from ruamel.yaml import YAML

    path = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "prune-images.yml"
    wf = YAML(typ="safe").load(path.read_text())
    assert set(wf["on"]) == {"schedule", "workflow_dispatch"}
    assert wf["permissions"] == {}
    inputs = wf["on"]["workflow_dispatch"]["inputs"]
    assert inputs["apply"] == {**inputs["apply"], "type": "boolean", "default": False}
    job = wf["jobs"]["prune"]
    assert job["if"] == "github.ref == 'refs/heads/main'"
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["env"]["APPLY"] == "${{ github.event_name == 'workflow_dispatch' && inputs.apply }}"
    steps = job["steps"]
    login = next(s for s in steps if s.get("uses", "").startswith("aws-actions/"))
    assert login["with"]["role-to-assume"] == (
        "${{ github.event_name == 'workflow_dispatch' && inputs.apply && "
        "vars.STAGING_PRUNE_ROLE_ARN || vars.STAGING_PRUNE_READ_ROLE_ARN }}"
    )
    scripts = "\n".join(s.get("run", "") for s in steps)
    assert "${{" not in scripts, "an expression spliced into a shell script"
    assert scripts.count("--apply") == 1
    assert re.search(r'if \[ "\$\{APPLY\}" = "true" \]; then\s+mode\+=\(--apply\)', scripts)
    assert "set -o pipefail" in scripts, "a failed prune would pass through tee"
    publish = steps[-1]
    assert publish["if"] == "always()" and "GITHUB_STEP_SUMMARY" in publish["run"]


@pytest.mark.parametrize(
    ("apply", "role", "expected"),
    [
        ("", "", "prune staging --all-regions --keep 3"),
        ("false", "", "prune staging --all-regions --keep 3"),
        ("", "arn:r", "prune staging --all-regions --keep 3 --usage-role arn:r"),
        ("true", "arn:r", "prune staging --all-regions --keep 3 --usage-role arn:r --apply"),
        ("true", "", None),  # --apply without prod's usage role: refused, nothing run
    ],
)
def test_the_workflow_script_passes_apply_only_when_it_is_true(tmp_path, apply, role, expected):
    """The prune step's own script, run by bash with a stand-in interpreter that prints its
    arguments: a scheduled run (APPLY empty) and an unticked dispatch are dry runs."""
    import subprocess

    from ruamel.yaml import YAML

    path = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "prune-images.yml"
    job = YAML(typ="safe").load(path.read_text())["jobs"]["prune"]
    script = next(s["run"] for s in job["steps"] if s.get("name", "").startswith("Prune"))
    fake = tmp_path / "venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\nshift 2\necho "$@"\n')  # drop "-m release"
    fake.chmod(0o755)
    result = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "APPLY": apply, "KEEP": "3", "USAGE_ROLE": role},
        timeout=30,
    )
    table = (tmp_path / "prune-table.txt").read_text()
    if expected is None:
        assert result.returncode == 1 and "prune staging" not in result.stdout
        assert "PROD_IMAGE_USAGE_ROLE_ARN is not set" in table
        return
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected
    assert table.strip() == expected


# ---------------------------------------------------------------------------------------------
# Failures while deleting
# ---------------------------------------------------------------------------------------------
def test_a_refused_deregistration_stops_there_and_the_table_says_so(account, project):
    """Deregistration refused in the second region (e.g. deregistration protection): the first
    region's deletions stand, nothing more is touched, and the table shows both."""
    before = inventory()
    lines: list[str] = []
    with pytest.raises(prune.PruneError, match=r"DeregisterImage ami-\S+ in eu-west-1 failed"):
        prune.run(
            arguments(apply=True),
            project / "Pulumi.staging.yaml",
            project,
            lines.append,
            denying("deregister_image", HOME),
        )
    after = inventory()
    assert after[HOME] == before[HOME], "a region whose deregistration failed lost something"
    assert {image_name("1.1.0"), image_name("1.2.0")} <= before[COPY] - after[COPY]
    table = "\n".join(lines)
    assert table.count("not deleted: DeregisterImage refused (UnauthorizedOperation)") == 1
    assert table.count("not reached: stopped") == 1  # the second image in eu-west-1


class FlakySnapshots:
    """An EC2 client whose DeleteSnapshot answers InvalidSnapshot.InUse ``busy`` times."""

    def __init__(self, busy: int):
        self.busy, self.calls = busy, []

    def deregister_image(self, **kwargs):
        self.calls.append(("deregister", kwargs["ImageId"]))

    def delete_snapshot(self, **kwargs):
        self.calls.append(("delete", kwargs["SnapshotId"]))
        if self.busy:
            self.busy -= 1
            raise ClientError({"Error": {"Code": "InvalidSnapshot.InUse"}}, "DeleteSnapshot")


def flaky_view():
    image = Image("ami-a", HOME, image_name("1.1.0"), "1.1.0", "available", ("snap-a",))
    return image, RegionView(HOME, [image], {"snap-a": {"ami-a"}})


def test_a_snapshot_still_in_use_just_after_deregistration_is_retried():
    """The image is always deregistered before its snapshot; a briefly stale InUse is retried
    with growing waits."""
    image, view = flaky_view()
    ec2, waits = FlakySnapshots(busy=2), []
    decision = Decision(image)
    assert prune.delete(ec2, view, [decision], {"snap-a"}, sleep=waits.append) == 1
    assert ec2.calls == [("deregister", "ami-a"), *[("delete", "snap-a")] * 3]
    assert waits == [2.0, 4.0] and decision.outcome == "deleted, 1 snapshot"


def test_a_snapshot_that_cannot_be_deleted_is_named_with_the_command_to_finish():
    image, view = flaky_view()
    decision = Decision(image)
    with pytest.raises(
        prune.PruneError,
        match=r"aws ec2 delete-snapshot --region eu-west-1 "
        r"--snapshot-id snap-a",
    ):
        prune.delete(FlakySnapshots(busy=9), view, [decision], {"snap-a"}, sleep=lambda _: None)
    assert decision.outcome == "deregistered; snapshot snap-a left (InvalidSnapshot.InUse)"


# ---------------------------------------------------------------------------------------------
# Accounts the images are shared with (--usage-role)
# ---------------------------------------------------------------------------------------------


def test_a_shared_accounts_launch_template_keeps_its_image(account, project):
    """prod's launch template still names 1.1.0 (its refresh rollback target): with
    --usage-role prune reads prod's account through STS and keeps 1.1.0 there, naming the
    account; without it 1.1.0 would go."""
    home = boto3.client("ec2", region_name=HOME)
    old = home.describe_images(
        Owners=["self"], Filters=[{"Name": "name", "Values": [image_name("1.1.0")]}]
    )["Images"][0]["ImageId"]
    keys = boto3.client("sts", region_name=HOME).assume_role(
        RoleArn=USAGE_ROLE, RoleSessionName="fixture"
    )["Credentials"]
    prod = boto3.session.Session(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
        region_name=HOME,
    ).client("ec2")
    prod.create_launch_template(
        LaunchTemplateName="checkout-green", LaunchTemplateData={"ImageId": old}
    )
    own = boto3.client("ec2", region_name=HOME).describe_launch_templates()["LaunchTemplates"]
    assert "checkout-green" not in {t["LaunchTemplateName"] for t in own}, "not prod's account"

    _, without = run(project)
    assert any(old in line and "would delete" in line for line in without)
    before = inventory()
    code, lines = run(project, usage_role=[USAGE_ROLE], apply=True)
    assert code == 0
    [row] = [line for line in lines if old in line]
    assert f"kept: {PROD_ACCOUNT} launch template checkout-green v1" in row
    assert image_name("1.1.0") in inventory()[HOME]
    assert image_name("1.3.0") not in inventory()[HOME], "the rest is pruned as before"
    assert image_name("1.1.0") not in inventory()[COPY], "prod's template is in eu-west-1 only"
    assert image_name("1.1.0") in before[COPY]


def test_a_refused_assume_role_stops_before_any_deletion(account, project):
    before = inventory()
    with pytest.raises(
        prune.PruneError,
        match=r"AssumeRole arn:aws:iam::222222222222:\S+ in "
        r"eu-west-1 was refused",
    ):
        run(project, denying("assume_role", HOME), usage_role=[USAGE_ROLE], apply=True)
    assert inventory() == before


@pytest.mark.parametrize(
    "value",
    [
        "arn:aws:iam::22222222222:role/x",
        "arn:aws:iam::222222222222:user/x",
        "arn:aws:iam::222222222222:role/x\n",
        "arn:aws:iam::222222222222:role/x y",
    ],
)
def test_usage_role_refuses_what_is_not_a_role_arn(capsys, value):
    with pytest.raises(SystemExit) as exit_:
        main(["prune", "staging", "--usage-role", value])
    assert exit_.value.code == 2 and "is not an IAM role ARN" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Two phases: a use that appears between the decision and the deletion keeps the image
# ---------------------------------------------------------------------------------------------
MARK = "golden-fleet:pruning"


def image_id(region: str, version: str, clients=None) -> str:
    ec2 = boto3.client("ec2", region_name=region)
    [found] = ec2.describe_images(
        Owners=["self"], Filters=[{"Name": "name", "Values": [image_name(version)]}]
    )["Images"]
    return found["ImageId"]


def marks(region: str) -> dict[str, str]:
    """image name -> the pruning mark's value, for the marked images of ``region``."""
    ec2 = boto3.client("ec2", region_name=region)
    return {
        i["Name"]: t["Value"]
        for i in ec2.describe_images(Owners=["self"])["Images"]
        for t in i.get("Tags", [])
        if t["Key"] == MARK
    }


def on_first_deregistration(region: str, act):
    """A client factory whose first DeregisterImage in ``region`` runs ``act(image_id)`` just
    before it is sent: a deploy landing while prune is already deleting."""
    fired: list[str] = []

    def before(params, **_):
        if not fired:
            fired.append(params["ImageId"])
            act(params["ImageId"])

    def clients(service: str, where: str):
        client = boto3.client(service, region_name=where)
        if service == "ec2" and where == region:
            client.meta.events.register("before-parameter-build.ec2.DeregisterImage", before)
        return client

    return clients, fired


def new_template_version_naming(region: str, version: str):
    def act(_):
        ec2 = boto3.client("ec2", region_name=region)
        [template] = [
            t
            for t in ec2.describe_launch_templates()["LaunchTemplates"]
            if t["LaunchTemplateName"] == "checkout-blue"
        ]
        ec2.create_launch_template_version(
            LaunchTemplateId=template["LaunchTemplateId"],
            LaunchTemplateData={"ImageId": image_id(region, version)},
        )

    return act


def instance_launched_from(region: str, version: str):
    def act(_):
        boto3.client("ec2", region_name=region).run_instances(
            ImageId=image_id(region, version), MinCount=1, MaxCount=1
        )

    return act


def shared_account_template_naming(region: str, version: str):
    def act(_):
        prod_client("ec2", region).create_launch_template(
            LaunchTemplateName="checkout-green",
            LaunchTemplateData={"ImageId": image_id(region, version)},
        )

    return act


@pytest.mark.parametrize(
    ("region", "first", "second", "deploy", "reason", "extra"),
    [
        # eu-west-1 deletes 1.1.0, then 1.3.0: a new version of checkout-blue names 1.3.0.
        (
            HOME,
            "1.1.0",
            "1.3.0",
            new_template_version_naming,
            "launch template checkout-blue v3",
            {},
        ),
        # eu-central-1 deletes 1.1.0, then 1.2.0: an instance is launched from 1.2.0.
        (COPY, "1.1.0", "1.2.0", instance_launched_from, "instance i-", {}),
        # prod's account (read through --usage-role) puts 1.2.0 in a new launch template.
        (
            COPY,
            "1.1.0",
            "1.2.0",
            shared_account_template_naming,
            f"{PROD_ACCOUNT} launch template checkout-green v1",
            {"usage_role": [USAGE_ROLE]},
        ),
    ],
)
def test_a_deploy_between_the_decision_and_the_deletion_keeps_that_image(
    account, project, region, first, second, deploy, reason, extra
):
    """The decision is taken for every image before the first deletion; a use of a doomed image
    that appears after it (here: while the first image of the region is being deregistered) is
    found by that image's own re-check just before its deregistration: the image and its
    snapshot stay, its mark is removed, and the table says why. The other doomed image goes."""
    clients, fired = on_first_deregistration(region, deploy(region, second))
    snapshots = image_snapshots(region)[image_name(second)]
    code, lines = run(project, clients, apply=True, **extra)
    assert code == 0
    assert len(fired) == 1, "prune deregistered nothing in the region"
    assert image_name(first) not in names_in(region)
    assert image_name(second) in names_in(region), "an image in use was deregistered"
    left = {
        s["SnapshotId"]
        for s in boto3.client("ec2", region_name=region).describe_snapshots(OwnerIds=["self"])[
            "Snapshots"
        ]
    }
    assert snapshots <= left, "the snapshot of an image in use was deleted"
    assert image_name(second) not in marks(region), "the kept image is still marked"
    table = "\n".join(lines)
    assert re.search(
        rf"{region}\s+{re.escape(second)}\s+\S+\s+kept at deletion: {reason}", table
    ), table
    assert "deleted 3 images and 3 snapshots; 1 kept at deletion (in use)" in table


def test_a_stack_file_naming_a_doomed_version_after_the_decision_keeps_it(account, project):
    """Staging's green color edited to 1.3.0 while prune deletes in eu-west-1 (after 1.1.0,
    before 1.3.0): 1.3.0 stays, kept by the file as it is now."""
    staging = project / "Pulumi.staging.yaml"

    def act(_):
        text = staging.read_text()
        staging.write_text(text.replace("version: 1.5.0", "version: 1.3.0", 1))

    clients, _ = on_first_deregistration(HOME, act)
    code, lines = run(project, clients, apply=True)
    assert code == 0
    assert image_name("1.3.0") in names_in(HOME), "a version a stack file names was deleted"
    table = "\n".join(lines)
    assert re.search(
        rf"{HOME}\s+1\.3\.0\s+\S+\s+kept at deletion: Pulumi\.staging\.yaml green", table
    ), table


EARLIER = "2026-01-01T00:00:00Z 0123456789ab"  # a killed run's mark, older than any run here


def mark_by_hand(region: str, version: str, value: str = EARLIER) -> str:
    found = image_id(region, version)
    boto3.client("ec2", region_name=region).create_tags(
        Resources=[found], Tags=[{"Key": MARK, "Value": value}]
    )
    return found


def test_a_dry_run_marks_nothing_and_leaves_earlier_marks(account, project):
    """Without --apply no tag is written or removed; an earlier run's mark is shown, not
    trusted."""
    mark_by_hand(HOME, "1.2.0")
    code, lines = run(project)
    assert code == 0
    assert marks(HOME) == {image_name("1.2.0"): EARLIER} and marks(COPY) == {}
    assert re.search(
        rf"{HOME}\s+1\.2\.0\s+\S+\s+kept: launch template checkout-blue v1; an earlier run's "
        rf"mark \({EARLIER}\) is not trusted",
        "\n".join(lines),
    )


def test_a_killed_runs_marks_are_decided_afresh(account, project):
    """A run killed between its phases left marks on 1.2.0 (now in use by checkout-blue v1) and
    1.1.0 (unused). The next run trusts neither: 1.2.0 is kept and unmarked, 1.1.0 re-marked
    and deleted; no mark is left anywhere."""
    mark_by_hand(HOME, "1.2.0")
    mark_by_hand(HOME, "1.1.0")
    code, lines = run(project, apply=True)
    assert code == 0
    table = "\n".join(lines)
    assert marks(HOME) == {} and marks(COPY) == {}, "a mark outlived the run"
    assert image_name("1.2.0") in names_in(HOME)
    assert image_name("1.1.0") not in names_in(HOME)
    assert re.search(rf"{HOME}\s+1\.2\.0\s+.*kept: .*; an earlier run's mark removed", table)
    assert re.search(
        rf"{HOME}\s+1\.1\.0\s+.*deleted, 1 snapshot; an earlier run's mark replaced", table
    ), table


def test_an_image_unmarked_by_hand_during_the_run_is_left(account, project):
    """Deleting the tag is how an operator keeps an image prune has marked: its re-check sees
    the mark gone and leaves it."""

    def act(_):
        ec2 = boto3.client("ec2", region_name=HOME)
        ec2.delete_tags(Resources=[image_id(HOME, "1.3.0")], Tags=[{"Key": MARK}])

    clients, _ = on_first_deregistration(HOME, act)
    code, lines = run(project, clients, apply=True)
    assert code == 0 and image_name("1.3.0") in names_in(HOME)
    assert re.search(rf"{HOME}\s+1\.3\.0\s+\S+\s+left: its mark was removed", "\n".join(lines)), (
        lines
    )


def test_an_interrupted_run_unmarks_every_image_it_did_not_delete(account, project):
    """Ctrl-C while the first image of eu-west-1 is deregistered: eu-central-1's deletions
    stand, and no image is left marked (deploy would refuse it)."""

    def act(_):
        raise KeyboardInterrupt

    clients, _ = on_first_deregistration(HOME, act)
    with pytest.raises(KeyboardInterrupt):
        run(project, clients, apply=True)
    assert marks(HOME) == {} and marks(COPY) == {}
    assert {image_name("1.1.0"), image_name("1.3.0")} <= names_in(HOME)
    assert image_name("1.1.0") not in names_in(COPY)


def test_assumed_role_clients_are_renewed_before_their_credentials_expire():
    """A long second phase re-assumes the --usage-role every 10 minutes (STS gives 15)."""
    made, clock = [], [0.0]
    get = prune._renewing(lambda: made.append(clock[0]) or len(made), clock=lambda: clock[0])
    assert get() == 1 and get() == 1
    clock[0] = 599.0
    assert get() == 1
    clock[0] = 601.0
    assert get() == 2 and made == [0.0, 601.0]
