"""Foundation and application layers, without a bake: which files and values each layer's digest
covers, which foundation an application image is built on, lineage, kept roots, the stack file
and the quiet output's step lines."""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bake_fixtures import PACKER_DIR, REPO
from baking import layers, runner, stackfile
from baking.cli import parse_args
from baking.digest import template_digest, template_files
from baking.errors import BakeError

from components import image_contract

FOUNDATION = layers.Foundation(
    ami="ami-0f0000000000000a1",
    name="golden-foundation-python-20261201T000000Z",
    build_time="20261201T000000Z",
    digest="a" * 64,
    runtime="python",
)


def image(name, ami="ami-1", layer="foundation", state="available", **tags):
    all_tags = {"ManagedBy": "golden-fleet", "Layer": layer, **tags}
    return {
        "ImageId": ami,
        "Name": name,
        "State": state,
        "Tags": [{"Key": k, "Value": v} for k, v in all_tags.items()],
    }


def test_each_script_belongs_to_one_layer_and_only_the_application_digest_covers_the_app():
    files = template_files()
    foundation = {name for name, _ in layers.layer_files(files, "foundation")}
    application = {name for name, _ in layers.layer_files(files, "application")}
    assert "packer/scripts/10-baseline.sh" in foundation - application
    assert "packer/scripts/50-app.sh" in application - foundation
    assert "packer/scripts/99-image-tests.sh" in application - foundation
    assert not any(name.startswith("app/") for name in foundation)
    assert any(name.startswith("app/") for name in application)
    assert "packer/locals.pkr.hcl" in foundation & application


def test_a_foundation_change_is_a_new_application_digest(tmp_path):
    """Two foundations (another digest) give two application digests for the same files and
    values; the same foundation gives the same digest."""
    files = layers.layer_files(template_files(), "application")
    content = {"runtime": "python"}
    other = layers.Foundation(**{**FOUNDATION.__dict__, "digest": "b" * 64})
    first = template_digest(files, layers.application_content(content, FOUNDATION))
    again = template_digest(files, layers.application_content(content, FOUNDATION))
    second = template_digest(files, layers.application_content(content, other))
    assert first == again and first != second


def test_a_foundation_script_change_changes_the_foundation_digest_and_not_the_app_files(tmp_path):
    """Copy the template, edit a foundation script: the foundation digest moves, the application
    layer's own files are unchanged (it still moves, through the foundation's digest)."""
    packer_dir = tmp_path / "packer"
    shutil.copytree(PACKER_DIR, packer_dir, ignore=shutil.ignore_patterns("baking", "__pycache__"))
    app_dir = REPO / "app"
    content = layers.foundation_content({"runtime": "python"})

    def digests():
        files = template_files(packer_dir, app_dir)
        found = template_digest(layers.layer_files(files, "foundation", packer_dir), content)
        app_files = [
            (n, p.read_bytes()) for n, p in layers.layer_files(files, "application", packer_dir)
        ]
        return found, app_files

    before = digests()
    with open(packer_dir / "scripts" / "21-cis-sysctl.sh", "a") as script:
        script.write("# changed\n")
    after = digests()
    assert before[0] != after[0], "a foundation script change must give a new foundation digest"
    app_changed = [n for (n, b), (_, a) in zip(before[1], after[1], strict=True) if a != b]
    assert app_changed == [], app_changed


def test_layer_scripts_are_read_from_the_template():
    foundation = layers.layer_scripts("foundation")
    application = layers.layer_scripts("application")
    assert foundation[0] == "10-baseline.sh" and application[-1] == "99-image-tests.sh"
    with pytest.raises(ValueError, match="no base_scripts list"):
        layers.layer_scripts("base")


def test_newest_usable_foundation_of_the_runtime_is_chosen():
    """Newest by name (its build time); revoked, deprecated, unmanaged, pending, other-runtime and
    application images are never chosen; a deprecation in the future (Packer's default) is fine."""
    images = [
        image("golden-foundation-python-20261101T000000Z", "ami-old"),
        image("golden-foundation-python-20261102T000000Z", "ami-future-deprecation"),
        image("golden-foundation-python-20261103T000000Z", "ami-revoked", Revoked="CVE"),
        image("golden-foundation-python-20261104T000000Z", "ami-pending", state="pending"),
        image("golden-foundation-nodejs-20261105T000000Z", "ami-nodejs"),
        image("golden-foundation-python-20261106T000000Z", "ami-app", layer="application"),
        {**image("golden-foundation-python-20261107T000000Z", "ami-unmanaged"), "Tags": []},
        {
            **image("golden-foundation-python-20261108T000000Z", "ami-deprecated"),
            "DeprecationTime": "2026-11-09T00:00:00.000Z",
        },
    ]
    images[1]["DeprecationTime"] = "2099-01-01T00:00:00.000Z"
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert layers.newest_foundation(images, "python", now)["ImageId"] == "ami-future-deprecation"
    assert layers.newest_foundation(images, "nodejs", now)["ImageId"] == "ami-nodejs"
    assert layers.newest_foundation(images, "openjdk17", now) is None


@pytest.mark.parametrize(
    "name, images, message",
    [
        ("checkout-1.0.0-20261101T000000Z", [], "is not a foundation name"),
        ("golden-foundation-nodejs-20261101T000000Z", [], "not a foundation of runtime python"),
        ("golden-foundation-python-20261101T000000Z", [], "no foundation image called"),
        (
            "golden-foundation-python-20261101T000000Z",
            [image("golden-foundation-python-20261101T000000Z", Revoked="CVE-2026-1")],
            r"revoked \(CVE-2026-1\)",
        ),
    ],
)
def test_a_pinned_foundation_that_cannot_be_used_is_named_with_the_reason(name, images, message):
    assert re.search(message, layers.pinned_foundation_problem(images, name, "python") or "")


def test_a_usable_pinned_foundation_has_no_problem():
    name = "golden-foundation-python-20261101T000000Z"
    assert layers.pinned_foundation_problem([image(name)], name, "python") is None


def test_lineage_variables_and_description_name_the_foundation():
    assert layers.lineage_variables(FOUNDATION) == {
        "foundation_ami": FOUNDATION.ami,
        "foundation_name": FOUNDATION.name,
        "foundation_build_time": FOUNDATION.build_time,
    }
    text = layers.application_description("checkout", "1.4.0", FOUNDATION, "sha256 " + "c" * 64)
    assert text.startswith("checkout 1.4.0 on golden-foundation-python-20261201T000000Z")
    assert len(text) <= layers.DESCRIPTION_MAX
    with pytest.raises(ValueError, match="255"):
        layers.application_description("checkout", "1.0.0-" + "a" * 200, FOUNDATION, "x" * 64)


def test_foundation_names_follow_the_contract():
    name = image_contract.foundation_name("python", "20261201T000000Z")
    assert name == "golden-foundation-python-20261201T000000Z"
    assert image_contract.is_foundation_name(name, "python")
    assert not image_contract.is_foundation_name(name + "\n")
    assert not image_contract.is_foundation_name(name, "nodejs")
    with pytest.raises(ValueError, match="build time"):
        image_contract.foundation_name("python", "2026-12-01")


def test_kept_roots_are_keyed_by_ami_and_pruned_per_api(tmp_path):
    """A kept root is moved in whole; only the roots of the API whose image is gone are stale;
    remove_roots without a list (the reset) removes all, partial ones too."""
    cache = tmp_path / "cache"
    for ami, endpoint in (("ami-a", "http://127.0.0.1:1"), ("ami-b", "http://127.0.0.1:2")):
        root = tmp_path / f"build-{ami}" / "rootfs"
        (root / "etc").mkdir(parents=True)
        (root / "etc" / "os-release").write_text(ami)
        kept = layers.keep_foundation_root(root, cache, ami, endpoint)
        assert kept == layers.foundation_root(cache, ami) and not root.exists()
        assert (kept / "etc" / "os-release").read_text() == ami
    records = layers.kept_roots(cache)
    assert set(records) == {"ami-a", "ami-b"}
    assert layers.stale_roots(records, "http://127.0.0.1:1", existing=set()) == ["ami-a"]
    assert layers.stale_roots(records, "http://127.0.0.1:1", existing={"ami-a"}) == []
    stopped = layers.stale_roots(records, "http://127.0.0.1:1", {"ami-a"}, lambda url: False)
    assert stopped == ["ami-b"], "a root of a stopped API is stale"
    assert not layers.endpoint_answers("http://127.0.0.1:1")
    (cache / layers.FOUNDATIONS_DIR / "ami-c.partial").mkdir()
    layers.remove_roots(cache, ["ami-a"])
    assert set(os.listdir(cache / layers.FOUNDATIONS_DIR)) == {"ami-b"}
    layers.remove_roots(cache)
    assert os.listdir(cache / layers.FOUNDATIONS_DIR) == []


def test_copy_root_is_independent_of_its_source(tmp_path):
    """The application bake's copy never writes through into the foundation (no hard links)."""
    source = tmp_path / "foundation"
    (source / "etc").mkdir(parents=True)
    (source / "etc" / "issue").write_text("foundation\n")
    target = tmp_path / "app"
    layers.copy_root(source, target)
    (target / "etc" / "issue").write_text("application\n")
    assert (source / "etc" / "issue").read_text() == "foundation\n"
    assert (source / "etc" / "issue").stat().st_nlink == 1


def test_copy_root_of_a_linked_tree_copies_the_tree_not_the_link(tmp_path):
    """A cache directory may link the machine's cached tree in: the build host is a copy of the
    tree, never a link through which the bake would provision (and break) the cached tree."""
    tree = tmp_path / "machine" / "bookworm-minbase"
    (tree / "etc").mkdir(parents=True)
    (tree / ".complete").touch()
    link = tmp_path / "cache" / "bookworm-minbase"
    link.parent.mkdir()
    link.symlink_to(tree)
    host = tmp_path / "work" / "rootfs"
    host.parent.mkdir()
    layers.copy_root(link, host)
    assert host.is_dir() and not host.is_symlink()
    (host / ".complete").unlink()
    (host / "etc" / "written-by-the-bake").touch()
    assert (tree / ".complete").exists() and not (tree / "etc" / "written-by-the-bake").exists()


def test_packer_step_lines_are_recognised():
    line = (
        "==> golden.amazon-ebs.golden: Provisioning with shell script: "
        "/tmp/x/packer/scripts/10-baseline.sh\n"
    )
    assert runner.step_name(line) == "10-baseline.sh"
    assert runner.step_name("    golden.amazon-ebs.golden: baseline: packages upgraded\n") is None
    inline = "==> golden.amazon-ebs.golden: Provisioning with shell script: /tmp/packer-shell123\n"
    assert runner.step_name(inline) is None


def test_stack_file_gives_the_staging_image():
    stack = stackfile.read_stack("staging")
    assert (stack.service, stack.region, stack.runtime) == ("checkout", "eu-west-1", "python")
    assert stack.var_file == PACKER_DIR / "staging.pkrvars.hcl"


@pytest.mark.parametrize(
    "text, message",
    [
        ("config: [1]\n", "no `config` mapping"),
        ("config:\n  golden-fleet:service: 3\n", "golden-fleet:service must be a mapping"),
        ("config:\n  golden-fleet:service: {name: 7}\n", "golden-fleet:service.name"),
        ("config:\n  golden-fleet:image: {foundation: ''}\n", "golden-fleet:image.foundation"),
        ("config: {a: [\n", "not YAML"),
    ],
)
def test_a_bad_stack_file_is_one_error_naming_the_key(tmp_path, text, message):
    (tmp_path / "Pulumi.x.yaml").write_text(text)
    with pytest.raises(ValueError, match=message):
        stackfile.read_stack("x", tmp_path)


def test_stack_name_is_checked():
    with pytest.raises(ValueError, match="expected a stack name"):
        stackfile.stack_file("../etc/passwd")


def test_cli_stack_fills_what_is_not_given_and_options_win():
    options = parse_args(["--stack", "staging", "--version", "1.0.0", "--local"], environ={})
    assert (options.service, options.region, options.layer) == (
        "checkout",
        "eu-west-1",
        "application",
    )
    assert options.var_file == PACKER_DIR / "staging.pkrvars.hcl"
    options = parse_args(
        [
            "--stack",
            "staging",
            "--version",
            "1.0.0",
            "--service",
            "orders",
            "--region",
            "us-east-2",
        ],
        environ={},
    )
    assert (options.service, options.region) == ("orders", "us-east-2")


def test_cli_foundation_bakes_the_foundation_layer_without_a_version():
    options = parse_args(["foundation", "--runtime", "nodejs", "--local"], environ={})
    assert options.layer == "foundation" and options.version is None
    assert options.runtime == "nodejs"
    for argv in (
        ["foundation", "--version", "1.0.0"],
        ["foundation", "--foundation", "golden-foundation-python-20261201T000000Z"],
    ):
        with pytest.raises(BakeError, match="belong to an application bake"):
            parse_args(argv, environ={})
    with pytest.raises(BakeError, match="--runtime"):
        parse_args(["foundation", "--runtime", "Py thon"], environ={})


def test_cli_application_bake_still_needs_a_version():
    with pytest.raises(BakeError, match="--version"):
        parse_args(["--local"], environ={})
    assert parse_args(["--version", "1.0.0", "--verbose"], environ={}).verbose


def test_a_weekly_workflow_bakes_the_foundation_in_the_images_account():
    """Every Monday (and by hand), from main only, with OIDC credentials and the same pinned,
    checksummed Packer as staging's deployment."""
    import yaml

    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "foundation.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    (schedule,) = triggers["schedule"]
    assert re.fullmatch(r"[0-9]+ [0-9]+ \* \* 1", schedule["cron"]), schedule
    assert "workflow_dispatch" in triggers
    job = workflow["jobs"]["foundation"]
    assert job["if"] == "github.ref == 'refs/heads/main'" and job["environment"] == "staging"
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    runs = " ".join(step.get("run", "") for step in job["steps"])
    assert "packer/bake.py foundation --stack staging" in runs and "sha256sum -c" in runs
    deploy = yaml.safe_load((REPO / "deploy" / "staging.deploy.yaml").read_text())
    pinned = deploy["settings"]["operationContext"]["environmentVariables"]
    assert job["env"]["PACKER_VERSION"] == pinned["PACKER_VERSION"]
    assert job["env"]["PACKER_SHA256"] == pinned["PACKER_SHA256"]


def test_the_programs_bake_command_passes_the_pinned_foundation():
    """image.foundation reaches the bake as --foundation; without a pin, the bake picks."""
    import shlex

    from components.golden_image import bake_command

    name = "golden-foundation-python-20261201T044100Z"
    pinned = shlex.split(bake_command("checkout", "1.0.0", "eu-west-1", None, foundation=name))
    assert pinned[pinned.index("--foundation") + 1] == name
    assert "--foundation" not in shlex.split(bake_command("checkout", "1.0.0", "eu-west-1", None))
    options = parse_args(pinned[2:], environ={})
    assert options.foundation == name and options.layer == "application"


def test_packers_own_directory_sits_on_a_base_short_enough_for_its_plugin_sockets(
    tmp_path, monkeypatch
):
    """A long TMPDIR (pytest's) would put Packer's plugin sockets past the 107 characters of a
    Unix socket path ("bind: invalid argument"): Packer's directory then goes under /tmp."""
    from baking import scratch

    long_base = tmp_path / ("x" * 60)
    long_base.mkdir()
    monkeypatch.setattr(scratch.tempfile, "tempdir", str(long_base))
    assert scratch.short_base() == Path("/tmp")
    with scratch.scratch_dir("packer-tmp", scratch.short_base()) as path:
        socket_path = path / "packer-plugin123456789"
        assert len(str(socket_path)) <= 107 and path.parent == Path("/tmp")
    assert not path.exists()
    monkeypatch.setattr(scratch.tempfile, "tempdir", "/tmp")
    assert scratch.short_base() is None


def test_only_the_newest_foundations_root_of_a_runtime_is_kept():
    records = {
        "ami-old": {"endpoint": "e1"},
        "ami-new": {"endpoint": "e1"},
        "ami-nodejs": {"endpoint": "e1"},
        "ami-other-api": {"endpoint": "e2"},
    }
    python = [{"ImageId": "ami-old"}, {"ImageId": "ami-new"}, {"ImageId": "ami-other-api"}]
    assert layers.superseded_roots(records, "e1", python, "ami-new") == ["ami-old"]
