"""The release command of golden-fleet: ``python -m release --help``."""
