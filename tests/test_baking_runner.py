"""baking.runner: the packer command line, and Packer's output kept off stdout."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import bake_fixtures  # noqa: F401  (puts packer/, the bake package's home, on sys.path)
from baking.layout import BUILD_SOURCE
from baking.runner import packer_build_command, run_packer


def test_var_file_comes_before_the_wrappers_own_variables():
    """Packer applies -var/-var-file in order: the wrapper's name, digest and build host win."""
    command = packer_build_command(
        "packer", {"service": "checkout", "version": "1.0.0"}, Path("/v.pkrvars.hcl")
    )
    assert command[:4] == ["packer", "build", "-color=false", f"-only={BUILD_SOURCE}"]
    assert command[4:6] == ["-var-file", "/v.pkrvars.hcl"]
    assert command[6:] == ["-var", "service=checkout", "-var", "version=1.0.0", "."]
    assert "-var-file" not in packer_build_command("packer", {}, None)


def test_packers_output_goes_to_stderr_and_its_exit_code_comes_back(tmp_path, capfd):
    script = tmp_path / "packer"
    script.write_text(f"#!{sys.executable}\nimport sys\nprint('progress')\nsys.exit(7)\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    assert run_packer([str(script)], {"PATH": "/usr/bin:/bin"}, tmp_path) == 7
    out, err = capfd.readouterr()
    assert out == "" and "progress" in err
