"""baking.varfiles: Packer variables resolved in Packer's order; var files read or refused."""

from __future__ import annotations

import pytest
from bake_fixtures import PACKER_DIR
from baking import varfiles


def test_stack_var_files_parse():
    assert varfiles.read_var_file(PACKER_DIR / "prod.pkrvars.hcl") == {
        "region": "eu-west-1",
        "instance_type": "t3.small",
        "runtime": "python",
    }
    assert varfiles.read_var_file(PACKER_DIR / "staging.pkrvars.hcl") == {"region": "eu-west-1"}


def test_values_resolve_in_packers_order():
    """defaults < PKR_VAR_* < var file < -var."""
    env = {"PKR_VAR_runtime": "nodejs", "PKR_VAR_source_ami_owners": '["123"]'}
    defaults = varfiles.CONTENT_DEFAULTS
    resolved = varfiles.resolve_variables(tuple(defaults), env, {}, defaults)
    assert resolved == {**defaults, "runtime": "nodejs", "source_ami_owners": ["123"]}
    assert varfiles.resolve_variables(("runtime",), env, {"runtime": "openjdk17"}, defaults) == {
        "runtime": "openjdk17"
    }, "a var file beats PKR_VAR_"
    assert varfiles.resolve_variables(
        ("runtime",), env, {"runtime": "openjdk17"}, defaults, {"runtime": "python"}
    ) == {"runtime": "python"}, "the wrapper's -var comes last and wins"


def test_a_number_is_the_same_value_however_it_is_given():
    """app_port 8080 as default, PKR_VAR_ text or a bare number in a var file: one digest input."""
    defaults = varfiles.CONTENT_DEFAULTS
    by_default = varfiles.resolve_variables(("app_port",), {}, {}, defaults)
    by_env = varfiles.resolve_variables(("app_port",), {"PKR_VAR_app_port": "8080"}, {}, defaults)
    by_file = varfiles.resolve_variables(
        ("app_port",), {}, varfiles.parse_var_file("app_port = 8080\n"), defaults
    )
    assert by_default == by_env == by_file == {"app_port": "8080"}


def test_comments_multi_line_lists_and_maps_are_read():
    text = (
        "# a comment\n"
        'source_ami_name = "debian-12-#-*" # the # inside quotes stays\n'
        "source_ami_owners = [\n"
        '  "136693071363", // Debian\n'
        '  "111111111111",\n'
        "]\n"
        'tags = {\n  team = "x"\n}\n'
    )
    values = varfiles.parse_var_file(text)
    assert values["source_ami_name"] == "debian-12-#-*"
    assert values["source_ami_owners"] == ["136693071363", "111111111111"]
    assert values["tags"] == {"team": "x"}


@pytest.mark.parametrize(
    "text",
    [
        "runtime python\n",
        'source_ami_owners = ["1",\n',
        'runtime = "python\n',
        "runtime =\n",
        'build {\n  name = "x"\n}\n',
    ],
    ids=["no-equals", "unclosed-list", "unclosed-string", "no-value", "a-block"],
)
def test_what_is_not_a_variables_file_is_a_one_line_error(text):
    with pytest.raises(ValueError, match=r"not a Packer variables file|not blocks") as error:
        varfiles.parse_var_file(text)
    assert "\n" not in str(error.value)


def test_strings_are_unquoted_and_unescaped_scalars_are_packers_text():
    values = varfiles.parse_var_file(
        'a = "x\\"y"\nb = 8080\nc = true\nd = "/* not a comment */"\n/* a comment */\n'
    )
    assert values == {"a": 'x"y', "b": "8080", "c": "true", "d": "/* not a comment */"}


def test_binary_and_missing_var_files_are_errors_naming_the_file(tmp_path):
    binary = tmp_path / "x.pkrvars.hcl"
    binary.write_bytes(b"\xff\xfe\x00runtime")
    with pytest.raises(ValueError, match=r"x\.pkrvars\.hcl is not UTF-8 text"):
        varfiles.read_var_file(binary)
    nul = tmp_path / "nul.pkrvars.hcl"
    nul.write_bytes(b"runtime = \x00\n")
    with pytest.raises(ValueError, match=r"nul\.pkrvars\.hcl is not a text file"):
        varfiles.read_var_file(nul)
    with pytest.raises(ValueError, match=r"missing\.pkrvars\.hcl"):
        varfiles.read_var_file(tmp_path / "missing.pkrvars.hcl")
