"""The bake's --port: where the image tests ask the service, as the load balancer will
(service.port). Resolved from the flag, else the stack's service.port, else the template's
app_port (8080); validated before anything starts; an application content value."""

from __future__ import annotations

import pytest
from bake_fixtures import REPO  # noqa: F401  (puts packer/ on sys.path)
from baking import cli, errors, pipeline, stackfile
from baking.errors import BakeError

VERSION = "2.1.0"


@pytest.mark.parametrize("value", ["0", "65536", "-1", "80.5", "http", "", "٨٠٨٠", " 8080"])
def test_a_port_outside_1_to_65535_is_a_usage_error_naming_the_flag(value):
    with pytest.raises(BakeError) as caught:
        cli.parse_args(["--version", VERSION, "--port", value], {})
    assert caught.value.code == errors.EXIT_USAGE
    assert f"invalid --port {value!r}: expected a TCP port number 1-65535" in str(caught.value)


def test_the_flag_wins_over_the_stack_which_wins_over_the_template():
    assert cli.resolve_port("9090", 8443) == 9090
    assert cli.resolve_port(None, 8443) == 8443
    assert cli.resolve_port(None, None) is None  # the template's app_port: 8080 by default
    assert cli.parse_args(["--version", VERSION, "--port", "1"], {}).port == 1
    assert cli.parse_args(["--version", VERSION, "--port", "65535"], {}).port == 65535
    assert cli.parse_args(["--version", VERSION], {}).port is None


def test_stack_gives_its_service_port():
    """The Quick start's `--stack staging` asks the service on staging's service.port."""
    options = cli.parse_args(["--stack", "staging", "--version", VERSION], {})
    assert options.port == stackfile.read_stack("staging").port == 8080
    assert (
        cli.parse_args(["--stack", "staging", "--version", VERSION, "--port", "9090"], {}).port
        == 9090
    )


@pytest.mark.parametrize("port", ["0", "70000", "'8080'", "true"])
def test_a_stack_port_that_is_no_port_is_refused_naming_the_key(tmp_path, port):
    (tmp_path / "Pulumi.shop.yaml").write_text(
        f"config:\n  golden-fleet:service:\n    name: shop\n    port: {port}\n"
    )
    with pytest.raises(ValueError, match=r"Pulumi.shop.yaml: golden-fleet:service.port must be"):
        stackfile.read_stack("shop", tmp_path)
    (tmp_path / "Pulumi.shop.yaml").write_text(
        "config:\n  golden-fleet:service:\n    name: shop\n    port: 9443\n"
    )
    assert stackfile.read_stack("shop", tmp_path).port == 9443


def test_the_port_is_passed_as_app_port_and_is_content_of_the_image():
    """-var app_port=N reaches the template (GF_APP_PORT of the image tests) and the digest's
    content values: an image tested on another port is another image. Without a port the
    template's default (or a var file's app_port) stands, as before."""
    options = cli.parse_args(["--version", VERSION, "--port", "9090"], {})
    assert pipeline.port_variable(options) == {"app_port": "9090"}
    values = pipeline.content_values(options, {}, pipeline.port_variable(options))
    assert values["app_port"] == "9090"
    default = cli.parse_args(["--version", VERSION], {})
    assert pipeline.port_variable(default) == {}
    assert pipeline.content_values(default, {}, {})["app_port"] == "8080"
    eighty = cli.parse_args(["--version", VERSION, "--port", "8080"], {})
    assert pipeline.content_values(eighty, {}, pipeline.port_variable(eighty)) == (
        pipeline.content_values(default, {}, {})
    ), "--port 8080 is the default's image: a rebake of it is reused"
