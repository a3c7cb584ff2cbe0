"""Runs the real ``__main__.py`` under Pulumi's mock engine and records what it registers.

The mocks answer like AWS would: ids and ARNs in each service's format, derived from the
resource's name so two runs of the same program agree, a launch template version, an ALB DNS
name, and an AMI id from the bake Command that depends on what it was asked to bake. The AMI
lookup of promote stacks answers from a set of images "baked" in the owner account, matching
the name filter and regex the program sends, as EC2 would.
"""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import json
import logging
import os
import re
import runpy
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.sync_await import _sync_await

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAIN = PROJECT_ROOT / "__main__.py"
ACCOUNT = "111111111111"
REGION = "eu-west-1"
# The account each stack deploys from (what get_caller_identity answers): prod's own account is
# the one staging shares its images with.
STACK_ACCOUNTS = {"staging": ACCOUNT, "prod": "222222222222"}


def load_stack_config(path: str | Path) -> dict[str, Any]:
    """The ``config:`` mapping of a stack file."""
    return yaml.safe_load(Path(path).read_text())["config"]


def stack_file(stack: str) -> Path:
    return PROJECT_ROOT / f"Pulumi.{stack}.yaml"


def copy_stack_file(stack: str, directory: Path) -> Path:
    """A private copy of the real ``Pulumi.<stack>.yaml`` in ``directory``, free to edit."""
    target = directory / f"Pulumi.{stack}.yaml"
    shutil.copyfile(stack_file(stack), target)
    return target


def apply_project(directory: Path, monkeypatch, stacks: tuple[str, ...]) -> None:
    """``directory`` as the project an ``--apply`` runs in, made the working directory: a
    Pulumi.yaml, the policy configs of ``stacks`` (every --apply update runs the pack with its
    stack's config) and a ``pulumi`` alone on PATH that fails if anything runs it (the tests
    replace the Automation API's stack; --apply only asks that the CLI is there)."""
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "pulumi").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    (directory / "Pulumi.yaml").write_text("name: golden-fleet\nruntime: python\n")
    (directory / "policy").mkdir()
    for stack in stacks:
        name = f"{stack}.json"
        shutil.copyfile(PROJECT_ROOT / "policy" / name, directory / "policy" / name)
    monkeypatch.chdir(directory)


def _hex(*parts: object, length: int = 17) -> str:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return digest[:length]


def baked_ami_id(service: str, version: str) -> str:
    """The AMI id the mock bake (and the mock promote lookup) returns for a service version."""
    return f"ami-{_hex('ami', service, version)}"


@dataclass(frozen=True)
class BakedImage:
    owner: str
    name: str  # <service>-<version>-<timestamp>
    image_id: str
    deprecated: bool = False  # past its deprecation time: hidden unless the lookup asks
    description: str | None = None  # None: the bake's usual one


def baked_image(
    owner: str,
    service: str,
    version: str,
    stamp: str = "20261101T120000Z",
    deprecated: bool = False,
) -> BakedImage:
    name = f"{service}-{version}-{stamp}"
    image_id = (
        baked_ami_id(service, version)
        if stamp == "20261101T120000Z"
        else (f"ami-{_hex('ami', service, version, stamp)}")
    )
    return BakedImage(owner, name, image_id, deprecated)


# Load balancer resources are their ARNs; the kind is the ARN's resource-type part.
_ELB_ARN_KINDS = {
    "aws:lb/targetGroup:TargetGroup": "targetgroup",
    "aws:lb/loadBalancer:LoadBalancer": "loadbalancer/app",
    "aws:lb/listener:Listener": "listener/app",
}


@dataclass(frozen=True)
class ColorGroup:
    """A color's Auto Scaling group already in AWS, tagged as the program tags it
    (components/tags.py), whose launch template's default version launches ``image_id``."""

    stack: str
    service: str
    color: str
    image_id: str
    mixed: bool = False  # the template named in a mixed-instances policy

    @property
    def name(self) -> str:
        return f"{self.service}-{self.color}-asg-{_hex(self.stack, length=7)}"

    @property
    def template_id(self) -> str:
        return f"lt-{_hex('lt', self.stack, self.color)}"


class FleetMocks(pulumi.runtime.Mocks):
    def __init__(
        self,
        images: Iterable[BakedImage] = (),
        account: str = ACCOUNT,
        groups: Iterable[ColorGroup] = (),
    ):
        self.images = list(images)
        self.groups = list(groups)
        self.account = account
        self.calls: list[tuple[str, dict[str, Any]]] = []
        # resource name -> {input: value} kept from the previous update (see run_program)
        self.kept_inputs: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        name, inputs = args.name, dict(args.inputs)
        token = args.typ
        suffix = _hex(token, name)
        arn_base = f"arn:aws:{{service}}:{REGION}:{ACCOUNT}"
        state: dict[str, Any] = dict(inputs)
        if token == "command:local:Command":
            if inputs.get("create", "").endswith(" -m release.refresh"):
                # The refresh command's last line: what the group saves once it succeeded.
                spec = json.loads(inputs["stdin"])
                state["stdout"] = json.dumps(
                    {
                        "group": spec["group"],
                        "launchTemplateVersion": spec["launchTemplate"]["version"],
                        "refreshId": "",
                    }
                )
                state["stderr"] = ""
                return f"{name}-{suffix[:8]}", state
            service, version = inputs["triggers"]
            state["stdout"] = baked_ami_id(service, version)
            state["stderr"] = ""
            # What the bake registered, as the account's own image (the copy's get_ami reads it).
            self.images.append(baked_image(self.account, service, version))
            return f"{name}-{suffix[:8]}", state
        if not args.custom:
            return f"{name}-component", state
        ids = {
            "aws:ec2/securityGroup:SecurityGroup": f"sg-{suffix}",
            "aws:ec2/launchTemplate:LaunchTemplate": f"lt-{suffix}",
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": f"sgr-{suffix}",
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": f"sgr-{suffix}",
        }
        resource_id = ids.get(token, f"{name}-{suffix[:7]}")
        if token == "aws:ec2/securityGroup:SecurityGroup":
            state["arn"] = arn_base.format(service="ec2") + f":security-group/{resource_id}"
        elif token == "aws:ec2/launchTemplate:LaunchTemplate":
            state["arn"] = arn_base.format(service="ec2") + f":launch-template/{resource_id}"
            # EC2 numbers every new template version; here a new content gets a new number,
            # the same content the same number, so two runs of one config agree. An input the
            # template ignores keeps its previous value on update (run_program's `previous`).
            version = (
                1 + int(_hex("lt-version", {**inputs, **self.kept_inputs.get(name, {})}), 16) % 997
            )
            state["latestVersion"] = version
            state["defaultVersion"] = version
        elif token in _ELB_ARN_KINDS:
            resource_id = (
                arn_base.format(service="elasticloadbalancing")
                + f":{_ELB_ARN_KINDS[token]}/{name}/{suffix[:16]}"
            )
            state["arn"] = resource_id
            # CloudWatch's dimensions: the ARN after "loadbalancer/" or from "targetgroup/" on.
            state["arnSuffix"] = resource_id.split(":", 5)[5].removeprefix("loadbalancer/")
            if token == "aws:lb/loadBalancer:LoadBalancer":
                state["dnsName"] = f"{name}-{int(suffix[:8], 16)}.{REGION}.elb.amazonaws.com"
        elif token == "aws:autoscaling/group:Group":
            resource_id = f"{name}-{suffix[:7]}"
            state["name"] = resource_id
            state["arn"] = arn_base.format(service="autoscaling") + (
                f":autoScalingGroup:{_hex(name, length=8)}:autoScalingGroupName/{resource_id}"
            )
        elif token == "aws:iam/role:Role":
            state["name"] = resource_id
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{resource_id}"
        elif token == "aws:iam/instanceProfile:InstanceProfile":
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:instance-profile/{resource_id}"
        elif token == "aws:cloudwatch/logGroup:LogGroup":
            state["arn"] = arn_base.format(service="logs") + f":log-group:{inputs['name']}"
        elif token == "aws:kms/key:Key":
            # A key id is a UUID; its ARN names the key's own region (the `region` argument).
            digest = _hex("kms", name, length=32)
            resource_id = "-".join(
                (digest[:8], digest[8:12], digest[12:16], digest[16:20], digest[20:32])
            )
            region = inputs.get("region") or REGION
            state["keyId"] = resource_id
            state["arn"] = f"arn:aws:kms:{region}:{self.account}:key/{resource_id}"
        elif token == "aws:kms/grant:Grant":
            state["grantId"] = _hex("grant", name, length=64)
            resource_id = f"{inputs['keyId']}:{state['grantId']}"
        elif token == "aws:s3/bucket:Bucket":
            # An auto-named bucket: the logical name and a random-looking suffix, as Pulumi names.
            resource_id = inputs.get("bucket") or f"{name}-{suffix[:7]}"
            state["bucket"] = resource_id
            state["arn"] = f"arn:aws:s3:::{resource_id}"
        elif token == "aws:wafv2/webAcl:WebAcl":
            resource_id = f"{_hex('waf', name, length=8)}-{suffix[:4]}-{suffix[4:8]}"
            state["arn"] = arn_base.format(service="wafv2") + (
                f":regional/webacl/{inputs.get('name') or name}/{resource_id}"
            )
        elif token == "aws:cloudwatch/metricAlarm:MetricAlarm":
            state["arn"] = arn_base.format(service="cloudwatch") + f":alarm:{inputs['name']}"
        elif token == "aws:ec2/amiCopy:AmiCopy":
            resource_id = f"ami-{_hex('ami-copy', inputs.get('region'), inputs['sourceAmiId'])}"
            state["arn"] = f"arn:aws:ec2:{inputs.get('region')}::image/{resource_id}"
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        if args.token == "aws:ec2/getAmiIds:getAmiIds":
            return {"id": REGION, "ids": self._find_images(dict(args.args))}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "id": self.account,
                "accountId": self.account,
                "arn": f"arn:aws:sts::{self.account}:assumed-role/deploy/pulumi",
                "userId": "AROAEXAMPLEDEPLOYROLE:pulumi",
            }
        if args.token == "aws:autoscaling/getAmiIds:getAmiIds":  # the groups data source
            found = [g for g in self.groups if _group_matches(g, dict(args.args))]
            return {
                "id": REGION,
                "names": [g.name for g in found],
                "arns": [
                    f"arn:aws:autoscaling:{REGION}:{self.account}:autoScalingGroup:{g.name}"
                    for g in found
                ],
            }
        if args.token == "aws:autoscaling/getGroup:getGroup":
            [group] = [g for g in self.groups if g.name == args.args["name"]]
            spec = {"id": group.template_id, "name": f"{group.name}-lt", "version": "3"}
            mixed = [
                {
                    "launchTemplates": [
                        {
                            "launchTemplateSpecifications": [
                                {
                                    "launchTemplateId": group.template_id,
                                    "launchTemplateName": spec["name"],
                                    "version": "3",
                                }
                            ],
                            "overrides": [],
                        }
                    ],
                    "instancesDistributions": [],
                }
            ]
            return {
                "id": group.name,
                "name": group.name,
                "launchTemplates": [] if group.mixed else [spec],
                "mixedInstancesPolicies": mixed if group.mixed else [],
            }
        if args.token == "aws:ec2/getLaunchTemplate:getLaunchTemplate":
            [group] = [g for g in self.groups if g.template_id == args.args["id"]]
            return {
                "id": group.template_id,
                "imageId": group.image_id,
                "defaultVersion": 3,
                "latestVersion": 3,
            }
        if args.token == "aws:ec2/getAmi:getAmi":
            wanted = {
                v
                for f in args.args.get("filters") or []
                if f["name"] == "image-id"
                for v in f["values"]
            }
            owners = set(args.args.get("owners") or [])
            found = [
                i
                for i in self.images
                if i.image_id in wanted
                and (i.owner in owners or ("self" in owners and i.owner == self.account))
            ]
            if not found:
                raise ValueError("Your query returned no results.")
            image = found[-1]
            return {
                "id": image.image_id,
                "imageId": image.image_id,
                "name": image.name,
                "description": _description(image),
                "deprecationTime": "2027-11-01T12:00:00.000Z",
                "ownerId": image.owner,
            }
        raise NotImplementedError(f"no mock for the call {args.token}")

    def _find_images(self, query: dict[str, Any]) -> list[str]:
        owners = set(query.get("owners") or [])
        name_patterns = [
            value
            for f in query.get("filters") or []
            if f["name"] == "name"
            for value in f["values"]
        ]
        descriptions = [
            value
            for f in query.get("filters") or []
            if f["name"] == "description"
            for value in f["values"]
        ]
        regex = re.compile(query["nameRegex"]) if query.get("nameRegex") else None
        deprecated_too = bool(query.get("includeDeprecated"))
        found = [
            image
            for image in self.images
            if image.owner in owners
            and (deprecated_too or not image.deprecated)
            and all(fnmatch.fnmatchcase(image.name, p) for p in name_patterns)
            and all(fnmatch.fnmatchcase(_description(image), p) for p in descriptions)
            and (regex is None or regex.search(image.name))
        ]
        newest_first = sorted(
            found, key=lambda image: image.name, reverse=not query.get("sortAscending", False)
        )
        return [image.image_id for image in newest_first]


def _group_matches(group: ColorGroup, query: dict[str, Any]) -> bool:
    """DescribeAutoScalingGroups' ``tag:<key>`` filters (exact values), as the groups data
    source sends them."""
    fields = {"tag:Stack": group.stack, "tag:Service": group.service, "tag:Color": group.color}
    for wanted in query.get("filters") or []:
        if wanted["name"] not in fields:
            raise NotImplementedError(f"no mock for the group filter {wanted['name']}")
        if fields[wanted["name"]] not in wanted["values"]:
            return False
    return True


def _description(image: BakedImage) -> str:
    return (
        image.description
        if image.description is not None
        else (f"{image.name}: CIS-hardened Debian 12")
    )


@dataclass
class Registered:
    """One registered resource: its type token, logical name, inputs and options."""

    type_: str
    name: str
    inputs: dict[str, Any]
    parent: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # what the mocks answered: inputs+outputs


@dataclass
class ProgramRun:
    resources: dict[str, Registered]
    outputs: dict[str, Any]
    mocks: FleetMocks
    warnings: list[str] = field(default_factory=list)  # what the program logged as warnings
    # Every registration's URN as the engine forms it (the parents' types joined with `$`,
    # then the name), in registration order; a name registered twice is here twice.
    urns: list[str] = field(default_factory=list)

    def of_type(self, token: str) -> list[Registered]:
        return [r for r in self.resources.values() if r.type_ == token]

    def one(self, token: str, name: str) -> Registered:
        resource = self.resources.get(name)
        assert resource is not None and resource.type_ == token, (
            f"no {token} named {name}; registered: {sorted(self.resources)}"
        )
        return resource


# What the program logs through the engine; failures reach tests as exceptions, so the engine's
# copy of an expected error need not clutter the test output.
_ENGINE_LOG = logging.getLogger("golden-fleet.mock-engine")
_ENGINE_LOG.propagate = False
_ENGINE_LOG.addHandler(logging.NullHandler())


def _encode_config(config: dict[str, Any]) -> dict[str, str]:
    # The engine hands structured config to the program JSON-encoded, plain strings as is.
    return {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()
    }


def run_program(
    config: dict[str, Any],
    stack: str = "staging",
    images: Iterable[BakedImage] | None = None,
    preview: bool = False,
    record_into: dict[str, Registered] | None = None,
    main: Path = MAIN,
    previous: ProgramRun | None = None,
    secret_keys: Iterable[str] = (),
    groups: Iterable[ColorGroup] = (),
) -> ProgramRun:
    """Run the real ``__main__.py`` on ``config`` under mocks; return what it registered.

    ``images`` are the AMIs the promote lookup can find; by default every version that the
    config names is baked in the promote owner's account (a promote stack whose versions
    staging baked). Exceptions of the program (bad config, unbaked version) propagate;
    ``record_into`` then still shows what had been registered before the failure.
    ``previous`` is the run this one updates: inputs a resource ignores keep its values.
    ``secret_keys``: config keys the engine holds as secrets (``pulumi config set --secret``).
    ``groups``: the colors' groups already in AWS that the program's reads find (none by
    default).
    """
    if images is None:
        images = _images_for(config)
    images = list(images)
    groups = list(groups)
    key = None
    if record_into is None and previous is None and memo.enabled:
        key = (*memo.key(config, stack, images, preview, main, secret_keys), repr(groups))
        if key in memo.runs:
            memo.hits += 1
            return copy.deepcopy(memo.runs[key])
    run = _run_program(
        config, stack, images, preview, record_into, main, previous, secret_keys, groups
    )
    if key is not None:
        memo.runs[key] = copy.deepcopy(run)
    return run


@dataclass
class _Memo:
    """Program runs of this test session by everything they depend on, so that the many tests
    reading one stack file's run share it (a run is 0.2-0.5 s; a session asks for the same run
    about three times on average). Each caller gets its own deep copy. Off for a test that uses
    ``monkeypatch`` (conftest.py): it may patch the program's code, which no key can see."""

    enabled: bool = True
    runs: dict[tuple, ProgramRun] = field(default_factory=dict)
    hits: int = 0

    @staticmethod
    def key(config, stack, images, preview, main, secret_keys) -> tuple:
        return (
            json.dumps(config, sort_keys=True, default=repr),
            stack,
            repr(images),
            preview,
            str(main),
            tuple(secret_keys),
            # What else the program reads: its environment, working directory and interpreter.
            # (pytest names the current test in PYTEST_CURRENT_TEST; the program never reads it)
            tuple(sorted((k, v) for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST")),
            os.getcwd(),
            sys.executable,
        )


memo = _Memo()


def _run_program(
    config: dict[str, Any],
    stack: str,
    images: list[BakedImage],
    preview: bool,
    record_into: dict[str, Registered] | None,
    main: Path,
    previous: ProgramRun | None,
    secret_keys: Iterable[str],
    groups: list[ColorGroup],
) -> ProgramRun:
    mocks = FleetMocks(images, account=STACK_ACCOUNTS.get(stack, ACCOUNT), groups=groups)
    registered: dict[str, Registered] = {} if record_into is None else record_into
    urns: list[str] = []
    # Each registered resource (kept alive here, so that its id stays its own) with its
    # qualified type, which its children's URNs start with.
    qualified_types: dict[int, tuple[pulumi.Resource, str]] = {}

    def record(args: pulumi.ResourceTransformationArgs):
        opts = args.opts
        urns.append(_urn(stack, args.type_, args.name, opts.parent if opts else None))
        qualified_types[id(args.resource)] = (args.resource, urns[-1].split("::")[2])
        if args.name in registered and registered[args.name].type_ != args.type_:
            raise AssertionError(f"two resources named {args.name}: names must be unique")
        registered[args.name] = Registered(
            type_=args.type_,
            name=args.name,
            inputs={},
            parent=getattr(opts.parent, "_name", None) if opts and opts.parent else None,
            options={
                "replace_on_changes": list(opts.replace_on_changes or []) if opts else [],
                "delete_before_replace": opts.delete_before_replace if opts else None,
                "ignore_changes": list(opts.ignore_changes or []) if opts else [],
                "protect": opts.protect if opts else None,
                "has_parent": bool(opts and opts.parent),
                "depends_on": _dependency_names(opts.depends_on if opts else None),
                "retain_on_delete": opts.retain_on_delete if opts else None,
                "deleted_with": getattr(opts.deleted_with, "_name", None) if opts else None,
            },
        )
        return None

    original_new_resource = mocks.new_resource

    def new_resource(args: pulumi.runtime.MockResourceArgs):
        entry = registered.setdefault(args.name, Registered(args.typ, args.name, {}))
        entry.inputs = _plain(dict(args.inputs))
        if previous is not None and args.name in previous.resources:
            # The engine keeps an ignored input's previous value on update.
            old = previous.resources[args.name].inputs
            mocks.kept_inputs[args.name] = {
                key: old[key] for key in entry.options.get("ignore_changes") or [] if key in old
            }
        resource_id, state = original_new_resource(args)
        entry.state = _plain({**dict(state), "id": resource_id})
        return resource_id, state

    mocks.new_resource = new_resource  # type: ignore[method-assign]

    def _urn(stack: str, type_: str, name: str, parent: pulumi.Resource | None) -> str:
        """The engine's URN: a child's type is its parent's qualified type, ``$``, its own; a
        resource of the stack (no parent, or the stack itself) has its own type alone."""
        qualified = type_
        if parent is not None and id(parent) in qualified_types:
            qualified = f"{qualified_types[id(parent)][1]}${type_}"
        elif parent is not None and getattr(parent, "_type", None) != "pulumi:pulumi:Stack":
            raise AssertionError(f"{name}: parent {parent!r} registered outside the program")
        return f"urn:pulumi:{stack}::golden-fleet::{qualified}::{name}"

    pulumi_settings.reset_options()
    pulumi.runtime.set_all_config(_encode_config(config), list(secret_keys))
    pulumi_mocks.set_mocks(
        mocks, project="golden-fleet", stack=stack, preview=preview, logger=_ENGINE_LOG
    )
    outputs: dict[str, Any] = {}
    warnings: list[str] = []
    catch = _Warnings(warnings)
    _ENGINE_LOG.addHandler(catch)

    def program() -> None:
        pulumi.runtime.register_stack_transformation(record)
        namespace = runpy.run_path(str(main), run_name="__main__")
        del namespace

    try:
        _sync_await(pulumi.runtime.stack.run_pulumi_func(program))
        root = pulumi_settings.get_root_resource()
        if root is not None and getattr(root, "outputs", None) is not None:
            outputs = _sync_await(_resolve(root.outputs))
    finally:
        _ENGINE_LOG.removeHandler(catch)
        pulumi_settings.reset_options()
        pulumi.runtime.set_all_config({})
    return ProgramRun(
        resources=registered, outputs=outputs, mocks=mocks, warnings=warnings, urns=urns
    )


class _Warnings(logging.Handler):
    """Collects the program's warnings (pulumi.log.warn) during one run."""

    def __init__(self, into: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno == logging.WARNING:
            self.into.append(record.getMessage())


def _dependency_names(depends_on: Any) -> list[str]:
    """Logical names of the explicit ``depends_on`` resources (a list or a single resource)."""
    if depends_on is None:
        return []
    if isinstance(depends_on, pulumi.Resource):
        depends_on = [depends_on]
    if not isinstance(depends_on, (list, tuple)):
        raise AssertionError(f"depends_on the harness cannot read: {depends_on!r}")
    return sorted(d._name for d in depends_on)


async def _resolve(value: Any) -> Any:
    if isinstance(value, pulumi.Output):
        return await _resolve(await value.future())
    if isinstance(value, dict):
        return {k: await _resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [await _resolve(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """Inputs as plain data: unknowns and secrets become comparable values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _images_for(config: dict[str, Any]) -> list[BakedImage]:
    image = config.get("golden-fleet:image") or {}
    service = (config.get("golden-fleet:service") or {}).get("name", "")
    fleets = config.get("golden-fleet:fleets") or {}
    owner = image.get("ownerAccountId", ACCOUNT)
    versions = {f.get("version") for f in fleets.values() if isinstance(f, dict)}
    return [baked_image(owner, service, v) for v in versions if isinstance(v, str)]


def _diffed_inputs(resource: Registered, under: Registered | None = None) -> dict[str, Any]:
    """The inputs the engine diffs: those ``ignore_changes`` names are left out, as the engine
    keeps their old values on an update. Only top-level names are modelled; a nested path
    would need the engine's path rules, so it is refused rather than guessed. ``under``: the
    registration whose ignore_changes applies (the new one, when diffing the old state)."""
    ignored = (under or resource).options.get("ignore_changes") or []
    nested = [path for path in ignored if any(c in path for c in ".[]")]
    if nested:
        raise AssertionError(f"{resource.name}: nested ignore_changes paths {nested} not modelled")
    return {k: v for k, v in resource.inputs.items() if k not in ignored}


def changed_resources(before: ProgramRun | dict, after: ProgramRun | dict) -> set[str]:
    """Names of resources added, removed, or registered with different inputs, as `pulumi
    preview` would show them: an input the resource ignores changes nothing."""
    a = before.resources if isinstance(before, ProgramRun) else before
    b = after.resources if isinstance(after, ProgramRun) else after
    names = set(a) | set(b)
    # The engine diffs the old state against the new registration, under the new
    # registration's ignore_changes.
    return {
        n
        for n in names
        if n not in a
        or n not in b
        or a[n].type_ != b[n].type_
        or _diffed_inputs(a[n], b[n]) != _diffed_inputs(b[n])
    }
