"""The parameters of the demo study the `demo_db` fixture builds, for tests that log in as its
users or rebuild it themselves."""

from __future__ import annotations

DEMO_PASSWORD = "test-password"
DEMO_SEED = "tests-fixed-seed"
DEMO_KITS = 300
DEMO_LEVELS = (10, 40)
"""Resupply trigger and target at every test site: room for 64 randomizations at two sites."""
