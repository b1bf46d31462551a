"""The registry of emulator fixes: each adjustment of moto's behaviour that makes the local endpoint answer as AWS
does, declared once with what moto does, what AWS does (and so the fix copies) and the test that proves it.

``@emulator_fix(...)`` registers a patch function and makes it apply once per process however often it is called;
:func:`apply_all` applies every registered fix (the endpoint does at start); :func:`markdown_table` is the
README's table of them (a unit test keeps the README in step).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass

#: Where the README's generated table starts and ends.
TABLE_START, TABLE_END = "<!-- emulator-fixes:start -->", "<!-- emulator-fixes:end -->"


@dataclass(frozen=True)
class EmulatorFix:
    """One fix: its name (the patch function's), what moto alone does, what AWS does, the test proving the fix."""

    name: str
    moto: str
    aws: str
    test: str
    apply: Callable[[], None]


REGISTRY: dict[str, EmulatorFix] = {}
_APPLIED: set[str] = set()
_LOCK = threading.RLock()


def emulator_fix(*, moto: str, aws: str, test: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Register the decorated patch function as a fix (see the module docstring)."""

    def register(patch: Callable[[], None]) -> Callable[[], None]:
        @functools.wraps(patch)
        def apply_once() -> None:
            with _LOCK:
                if patch.__name__ in _APPLIED:
                    return
                patch()
                _APPLIED.add(patch.__name__)

        if patch.__name__ in REGISTRY:
            raise ValueError(f"emulator fix {patch.__name__} is registered twice")
        REGISTRY[patch.__name__] = EmulatorFix(patch.__name__, moto, aws, test, apply_once)
        return apply_once

    return register


def install(owner: object, name: str, replacement: object) -> None:
    """Put ``replacement`` in place of ``owner.name`` (a patch's one line of monkey-patching)."""
    setattr(owner, name, replacement)


def apply_all() -> None:
    """Every registered fix (each module holding fixes registers them on import)."""
    from analytics_platform.local.endpoint import moto_patches, s3_events  # noqa: F401  (they register their fixes)

    for fix in REGISTRY.values():
        fix.apply()


def markdown_table() -> str:
    """The README's table: one row per fix, in registration order."""
    from analytics_platform.local.endpoint import moto_patches, s3_events  # noqa: F401

    rows = ["| AWS does | moto alone | fix (`local/endpoint/`) | proven by |", "|---|---|---|---|"]
    rows += [f"| {fix.aws} | {fix.moto} | `{fix.name}` | `{fix.test}` |" for fix in REGISTRY.values()]
    return "\n".join(rows)


__all__ = [
    "REGISTRY",
    "TABLE_END",
    "TABLE_START",
    "EmulatorFix",
    "apply_all",
    "emulator_fix",
    "install",
    "markdown_table",
]
