"""``deploy`` in a promote stack refuses a version that was never baked.

The lookup runs against a local AWS API (moto's server on 127.0.0.1) through the ordinary
credential chain and ``AWS_ENDPOINT_URL``, exactly as the command does against AWS.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from botocore.exceptions import ClientError
from harness import copy_stack_file, load_stack_config, stack_file
from local_aws import use_test_credentials

from components.config import Color, ConfigError, StackConfig, parse_stack_config
from release.cli import main
from release.images import ImageAge, age_lines, check_baked, newest_image
from release.transitions import BakeStatus

BAKER = "111111111111"  # prod's ownerAccountId: staging's account


@pytest.fixture
def aws(aws_endpoint, monkeypatch):
    """Credentials for the emulator, its state reset; ``register(name, account)`` bakes."""
    use_test_credentials(monkeypatch, aws_endpoint, BAKER)

    import boto3

    def register(name: str, account: str = BAKER) -> str:
        monkeypatch.setenv("MOTO_ACCOUNT_ID", account)
        try:
            ec2 = boto3.client("ec2", region_name="eu-west-1")
            return ec2.register_image(
                Name=name, RootDeviceName="/dev/xvda", VirtualizationType="hvm"
            )["ImageId"]
        finally:
            monkeypatch.setenv("MOTO_ACCOUNT_ID", BAKER)

    return register


@pytest.fixture
def prod_file(tmp_path):
    return copy_stack_file("prod", tmp_path)


def deploy(capsys, path, version: str, *extra: str) -> tuple[int, str, str]:
    code = main(["deploy", "prod", version, "--file", str(path), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_deploys_a_version_that_was_baked(capsys, aws, prod_file):
    image_id = aws("checkout-1.5.0-20261101T120000Z")
    code, out, err = deploy(capsys, prod_file, "1.5.0")
    assert code == 0, err
    assert f"image found: checkout-1.5.0-20261101T120000Z ({image_id})" in out
    config = parse_stack_config(load_stack_config(prod_file))
    assert config.fleets.green.version == "1.5.0"


@pytest.mark.parametrize(
    ("name", "account"),
    [
        (None, BAKER),  # nothing baked at all
        ("checkout-1.5.0-rc.1-20261101T120000Z", BAKER),  # a pre-release is another version
        ("checkout-1.5.0-manual", BAKER),  # not <service>-<version>-<timestamp>
        ("checkout-1.5.0-20261101T120000Z", "333333333333"),  # an account prod does not trust
    ],
)
def test_refuses_a_version_never_baked(capsys, aws, prod_file, name, account):
    if name:
        aws(name, account)
    before = prod_file.read_bytes()
    code, _, err = deploy(capsys, prod_file, "1.5.0")
    assert code == 1, "deployed an unbaked version"
    assert "1.5.0 was never baked: no image checkout-1.5.0-* owned by 111111111111" in err
    assert prod_file.read_bytes() == before


def test_without_credentials_it_warns_and_goes_ahead(capsys, prod_file, no_aws_credentials):
    """Unknown is not missing: `pulumi preview` resolves the image by name and would fail."""
    code, out, err = deploy(capsys, prod_file, "1.5.0")
    assert code == 0, err
    assert "warning: could not check whether 1.5.0 was baked (no AWS credentials found)" in out

    before = prod_file.read_bytes()
    code, _, err = deploy(capsys, prod_file, "1.6.0", "--require-baked")
    assert code == 1 and "--require-baked" in err
    assert prod_file.read_bytes() == before


def test_a_denied_lookup_is_unknown_not_missing():
    class Denied:
        def describe_images(self, **_):
            raise ClientError({"Error": {"Code": "UnauthorizedOperation"}}, "DescribeImages")

    config = parse_stack_config(load_stack_config(stack_file("prod")))
    check = check_baked(config, "1.5.0", ec2=Denied())
    assert check.status is BakeStatus.UNKNOWN and "UnauthorizedOperation" in check.detail


def test_the_newest_exact_match_wins():
    images = [
        {"Name": "checkout-1.5.0-20261101T120000Z"},
        {"Name": "checkout-1.5.0-20261102T090000Z"},
        {"Name": "checkout-1.5.0-rc.1-20261201T000000Z"},
    ]
    assert newest_image(images, "checkout", "1.5.0") == images[1]
    assert newest_image(images, "checkout", "1.6.0") is None


# ---------------------------------------------------------------------------------------------
# Images that `prune --apply` has marked for deregistration (release/prune.py)
# ---------------------------------------------------------------------------------------------
PRUNING = "2027-03-01T09:00:00Z 3f9c2a7d1e4b"


def mark_for_pruning(image_id: str) -> None:
    import boto3

    boto3.client("ec2", region_name="eu-west-1").create_tags(
        Resources=[image_id], Tags=[{"Key": "golden-fleet:pruning", "Value": PRUNING}]
    )


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_deploy_refuses_a_version_whose_image_is_being_pruned(capsys, aws, tmp_path, stack):
    """prune has marked 1.3.0's only image and may deregister it at any moment: deploy refuses,
    naming the image and the mark, says what to do, and leaves the file alone. The same holds
    in the bake stack, which would reuse the image; here the baking account reads its own
    tags (a promoting account does not see them: docs/guides/image-retention.md)."""
    path = copy_stack_file(stack, tmp_path)
    image_id = aws("checkout-1.3.0-20261101T120000Z")
    mark_for_pruning(image_id)
    before = path.read_bytes()
    code = main(["deploy", stack, "1.3.0", "--file", str(path)])
    err = capsys.readouterr().err
    assert code == 1, "deployed an image that is being pruned"
    assert (
        f"1.3.0's image is being pruned: checkout-1.3.0-20261101T120000Z ({image_id}) marked "
        f"golden-fleet:pruning={PRUNING} — deploy another version" in err
    ), err
    assert "delete that tag from the image (aws ec2 delete-tags)" in err
    assert path.read_bytes() == before


def test_deploy_takes_an_unmarked_image_of_the_version(capsys, aws, prod_file):
    """An older image of 1.5.0 being pruned does not stop a deploy that resolves to a newer,
    unmarked one; the lookup names the unmarked one."""
    mark_for_pruning(aws("checkout-1.5.0-20261101T120000Z"))
    kept = aws("checkout-1.5.0-20261001T120000Z")
    code, out, err = deploy(capsys, prod_file, "1.5.0")
    assert code == 0, err
    assert f"image found: checkout-1.5.0-20261001T120000Z ({kept})" in out


def test_lookups_skip_an_image_being_pruned_and_status_says_so(aws):
    """newest_image never resolves to a marked image (drift and status use it); status names
    the mark instead of an age."""
    from release.images import read_image_ages

    image_id = aws("checkout-1.5.0-20261101T120000Z")
    mark_for_pruning(image_id)
    marked = {
        "Name": "checkout-1.5.0-20261201T120000Z",
        "Tags": [{"Key": "golden-fleet:pruning", "Value": PRUNING}],
    }
    plain = {"Name": "checkout-1.5.0-20261101T120000Z"}
    assert newest_image([marked, plain], "checkout", "1.5.0") == plain
    assert newest_image([marked], "checkout", "1.5.0") is None
    ages = read_image_ages(ages_config())
    assert ages[Color.GREEN].problem == (
        f"being pruned: checkout-1.5.0-20261101T120000Z ({image_id}) marked "
        f"golden-fleet:pruning={PRUNING}"
    )


# ---------------------------------------------------------------------------------------------
# Deprecated images. moto 5 does not model deprecation (no DeprecationTime, IncludeDeprecated
# ignored), so these cases use botocore's Stubber: it checks the exact request parameters and
# answers what EC2 answers a promoting account (EC2 User Guide, "Deprecate an Amazon EC2 AMI").
# ---------------------------------------------------------------------------------------------
NOW = dt.datetime(2027, 12, 1, tzinfo=dt.UTC)


def stubbed_ec2(*answers: list[dict]):
    """An EC2 client that expects one IncludeDeprecated lookup of checkout 1.5.0 per answer."""
    import boto3
    from botocore.stub import Stubber

    ec2 = boto3.client(
        "ec2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(ec2)
    for images in answers:
        stubber.add_response(
            "describe_images",
            {"Images": images},
            {
                "Owners": [BAKER],
                "Filters": [{"Name": "name", "Values": ["checkout-1.5.0-*"]}],
                "IncludeDeprecated": True,
                "IncludeDisabled": True,
            },
        )
    stubber.activate()
    return ec2, stubber


def image(name: str, image_id: str, deprecation: str | None = None) -> dict:
    found = {"Name": name, "ImageId": image_id, "CreationDate": "2026-11-01T12:00:00.000Z"}
    if deprecation:
        found["DeprecationTime"] = deprecation
    return found


def test_a_deprecated_image_still_counts_as_baked(no_aws_credentials):
    """A version whose only image is deprecated was baked: the lookup asks for deprecated
    images (the Stubber refuses a call without IncludeDeprecated=True) and says so."""
    config = parse_stack_config(load_stack_config(stack_file("prod")))
    old = image(
        "checkout-1.5.0-20251101T120000Z", "ami-0000000000000000a", "2026-11-01T12:00:00.000Z"
    )  # in the past on every run of this test
    ec2, stubber = stubbed_ec2([old])
    check = check_baked(config, "1.5.0", ec2=ec2)
    stubber.assert_no_pending_responses()
    assert check.status is BakeStatus.FOUND
    assert "ami-0000000000000000a" in check.detail and "deprecated" in check.detail


def test_a_current_image_is_preferred_to_a_newer_deprecated_one():
    """Of two images of one version, the one not yet deprecated wins even when the deprecated
    one has the newer timestamp; a deprecation date in the future is not a deprecation."""
    deprecated = image(
        "checkout-1.5.0-20261201T000000Z", "ami-new-but-deprecated", "2027-11-30T00:00:00.000Z"
    )
    current = image("checkout-1.5.0-20261101T000000Z", "ami-current", "2028-11-01T00:00:00Z")
    assert newest_image([deprecated, current], "checkout", "1.5.0", NOW) == current
    # With both deprecated, or both current, the newer timestamp wins.
    assert newest_image([deprecated], "checkout", "1.5.0", NOW) == deprecated
    assert (
        newest_image(
            [current, dict(deprecated, DeprecationTime="2029-01-01T00:00:00Z")],
            "checkout",
            "1.5.0",
            NOW,
        )["ImageId"]
        == "ami-new-but-deprecated"
    )


def test_a_name_with_a_trailing_newline_is_not_the_version():
    """Exact names only: ``$`` would let a trailing newline through."""
    assert (
        newest_image([{"Name": "checkout-1.5.0-20261101T120000Z\n"}], "checkout", "1.5.0") is None
    )


# ---------------------------------------------------------------------------------------------
# Image age in `status`
# ---------------------------------------------------------------------------------------------
def ages_config(**release) -> StackConfig:
    raw = load_stack_config(stack_file("prod"))
    raw["golden-fleet:release"] = {**raw["golden-fleet:release"], **release}
    raw["golden-fleet:fleets"]["green"]["version"] = "1.5.0"
    return parse_stack_config(raw)


def test_an_old_image_warns_only_while_it_serves_traffic():
    """blue (100%) on a 120-day-old image warns; green (0%) on an equally old image does not;
    every color gets its age and deprecation date line."""
    cfg = ages_config()
    old = ImageAge(
        "ami-blue",
        "checkout-1.4.0-20270803T000000Z",
        NOW - dt.timedelta(days=120),
        NOW + dt.timedelta(days=245),
    )
    lines = age_lines(cfg, {Color.BLUE: old, Color.GREEN: old}, NOW)
    assert lines[0] == (
        "image blue: checkout-1.4.0-20270803T000000Z (ami-blue), built 120 "
        "days ago, deprecates 2028-08-02"
    )
    assert lines[1].startswith("image green: ")
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith("warning: blue serves 100% of traffic")
    assert "release.maxImageAgeDays (90)" in warnings[0]


def test_the_age_limit_comes_from_the_stack_file():
    """maxImageAgeDays moves the line: 120 days is fine under a 180-day limit, and exactly the
    limit is not past it."""
    old = ImageAge("ami-blue", "checkout-1.4.0-20270803T000000Z", NOW - dt.timedelta(days=120))
    relaxed = age_lines(ages_config(maxImageAgeDays=180), {Color.BLUE: old, Color.GREEN: old}, NOW)
    assert not [line for line in relaxed if line.startswith("warning:")]
    at_limit = age_lines(ages_config(maxImageAgeDays=120), {Color.BLUE: old, Color.GREEN: old}, NOW)
    assert not [line for line in at_limit if line.startswith("warning:")]
    assert "no deprecation date" in relaxed[0]


def test_a_lookup_that_failed_is_said_not_guessed():
    """A denied or missing lookup prints the reason and never an age or a warning."""
    failed = ImageAge(problem="AWS refused the lookup: UnauthorizedOperation")
    lines = age_lines(ages_config(), {Color.BLUE: failed, Color.GREEN: failed}, NOW)
    assert lines == [
        "image blue: 1.4.0 — not read (AWS refused the lookup: UnauthorizedOperation)",
        "image green: 1.5.0 — not read (AWS refused the lookup: UnauthorizedOperation)",
    ]


def test_status_says_not_found_for_a_version_never_baked(aws):
    """The lookup ran and found no image of green's version: that is "not found", a fact about
    AWS, never "not read", which means the lookup itself could not run."""
    from release import images

    aws("checkout-1.4.0-20200101T000000Z")
    cfg = ages_config()  # green 1.5.0, never baked
    lines = age_lines(cfg, images.read_image_ages(cfg), NOW)
    green = next(line for line in lines if line.startswith("image green: "))
    assert green.startswith("image green: 1.5.0 — not found (no image checkout-1.5.0-* owned by"), (
        green
    )


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (0, "greater than or equal to 1"),
        (366, "less than or equal to 365"),
        ("90", "valid integer"),
        (True, "valid integer"),
        (90.5, "valid integer"),
    ],
)
def test_max_image_age_days_is_a_strict_bounded_integer(value, rule):
    """One error naming the key and the rule; strings, booleans and fractions are refused."""
    with pytest.raises(ConfigError) as caught:
        ages_config(maxImageAgeDays=value)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("golden-fleet:release.maxImageAgeDays: ")
    assert rule in caught.value.problems[0]


def test_status_shows_the_age_of_each_colors_image(capsys, aws, prod_file):
    """Through the command and a local AWS API: a 100%-weight color on an image baked long
    ago is warned about; the idle color's image and a missing image are shown, not warned."""
    aws("checkout-1.4.0-20200101T000000Z")
    code = main(["status", "prod", "--file", str(prod_file), "--no-outputs"])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(
        r"^image blue: checkout-1\.4\.0-20200101T000000Z \(ami-[0-9a-f]+\), "
        r"built [0-9]+ days ago, no deprecation date$",
        out,
        re.MULTILINE,
    ), out
    assert re.search(r"^image green: checkout-1\.4\.0-20200101T000000Z", out, re.MULTILINE)
    assert "warning: blue serves 100% of traffic on an image built" in out
    assert "warning: green" not in out


def test_status_without_credentials_says_so(capsys, prod_file, no_aws_credentials):
    code = main(["status", "prod", "--file", str(prod_file), "--no-outputs"])
    out = capsys.readouterr().out
    assert code == 0
    assert "image blue: 1.4.0 — not read (no AWS credentials found)" in out
    code = main(["status", "prod", "--file", str(prod_file), "--no-outputs", "--no-images"])
    assert "image blue" not in capsys.readouterr().out
