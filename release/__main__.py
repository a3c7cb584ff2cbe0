"""Entry point: ``python -m release COMMAND STACK ...``."""

from release.cli import main

raise SystemExit(main())
