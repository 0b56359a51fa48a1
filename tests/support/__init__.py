"""Helpers the test suites import: builders, API calls, the blinding detector, real servers and
database utilities. Fixtures stay in the conftest.py files; importable code lives here."""
