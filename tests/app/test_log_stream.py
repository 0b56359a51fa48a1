"""The JSON log handler follows sys.stderr: a stream closed since (a finished test's captured
stderr, a detached terminal) must not break the request that logs next."""

import io
import sys

import pytest

from app.observability import logs


def _stream() -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8")


def test_a_line_goes_to_the_current_stderr_after_the_last_one_was_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logs.configure()
    earlier = _stream()
    monkeypatch.setattr(sys, "stderr", earlier)
    logs.get_logger("app.test").info("first")
    earlier.close()

    current = _stream()
    monkeypatch.setattr(sys, "stderr", current)
    logs.get_logger("app.test").info("second")
    current.flush()
    assert b'"event": "second"' in current.buffer.getvalue()  # type: ignore[attr-defined]
