"""Fixtures for the compat tier (the SeaweedFS and nginx ones live in tests/conftest.py)."""

from .._servers.oss_fixture import oss, oss_faults

__all__ = ["oss", "oss_faults"]
