"""The Python interpreter that Commands of this program run with.

Commands (the bake, the refresh resources) run modules of this project, which need the program's
own dependencies (boto3, pydantic): so they run with the interpreter that runs the program,
never a ``python`` from PATH (Debian has none, and in Pulumi Deployments PATH's Python is not
the project's virtual environment).

The command line is part of a Command's inputs and so of the stack's state. An absolute path
such as ``/home/alice/golden-fleet/venv/bin/python`` would show as a change in every preview run
from another machine (a colleague's, CI's, Pulumi Deployments'). When the program runs from the
virtual environment that ``Pulumi.yaml`` names (``venv``, inside the project), the interpreter is
written relative to the project root, where Commands run: the same text on every machine.
Anywhere else the absolute path is the only correct answer.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VIRTUALENV = "venv"  # Pulumi.yaml: runtime.options.virtualenv


def program_python(executable: str | None = None, project_root: Path = PROJECT_ROOT) -> str:
    """``venv/bin/python`` when running from the project's virtualenv, else the absolute path."""
    interpreter = Path(executable or sys.executable)
    venv = project_root / VIRTUALENV
    # Do not resolve symlinks: venv/bin/python is a link to the base interpreter, and the link is
    # what activates the virtual environment.
    absolute = Path(interpreter).absolute()
    try:
        relative = absolute.relative_to(venv.absolute())
    except ValueError:
        return str(absolute)
    return str(Path(VIRTUALENV) / relative)
