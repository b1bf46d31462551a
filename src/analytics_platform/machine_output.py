"""Output helpers every command layer shares: one JSON document on stdout while people's lines go to stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from typing import Any


@contextmanager
def machine_readable(enabled: bool) -> Iterator[None]:
    """While ``enabled``, everything printed for people goes to stderr: stdout carries the one JSON document."""
    if not enabled:
        yield
        return
    with redirect_stdout(sys.stderr):
        yield


def emit(document: Any) -> None:
    """The JSON document on stdout (after :func:`machine_readable`)."""
    print(json.dumps(document, indent=2, default=str))


__all__ = ["emit", "machine_readable"]
