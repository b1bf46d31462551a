"""The published JSON Schemas of ``tap ... --json`` (``analytics_platform/cli/schemas``), for tests to hold the
commands' output to."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import jsonschema


def schema(name: str) -> dict[str, Any]:
    """``name``: ``tap.check``, ``tap.terraform``, ``tap.drift``, ``tap.preflight``, ``tap.jobs``, ``tap.datasets``."""
    return json.loads(files("analytics_platform.cli").joinpath("schemas", f"{name}.json").read_text())


def validate(document: Any, name: str) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``document`` matches the published schema ``name``."""
    jsonschema.Draft202012Validator(schema(name)).validate(document)
