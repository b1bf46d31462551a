"""Fast, safe access to the prebuilt AWS provider bindings.

``cdktf_cdktf_provider_aws/__init__.py`` eagerly imports all ~2,100 submodules (about 10 s here), though a
stack needs a few dozen. :func:`prepare` registers the package without running that ``__init__``, so the
caller imports only the submodules it uses; each still loads the jsii assembly through ``._jsii``, and
the synthesized output is byte-identical (a unit test compares both paths).

Set ``TAP_PLAIN_PROVIDER_IMPORT=1`` to use the plain import instead; any failure of the fast path falls
back to it as well.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types

PACKAGE = "cdktf_cdktf_provider_aws"
PLAIN_IMPORT_VARIABLE = "TAP_PLAIN_PROVIDER_IMPORT"


def _register_without_init() -> bool:
    """Put a bare package module for the bindings into ``sys.modules``; False if impossible."""
    if PACKAGE in sys.modules:
        return True
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return False
    module = types.ModuleType(PACKAGE, "AWS provider bindings (registered without the eager __init__)")
    module.__path__ = list(spec.submodule_search_locations)
    module.__spec__ = spec
    module.__file__ = spec.origin
    module.__package__ = PACKAGE
    sys.modules[PACKAGE] = module
    try:
        importlib.import_module(f"{PACKAGE}._jsii")
    except Exception:
        del sys.modules[PACKAGE]
        return False
    return True


def fast_path_enabled() -> bool:
    """Whether the fast import is in use for this process."""
    return os.environ.get(PLAIN_IMPORT_VARIABLE, "") not in {"1", "true", "yes"}


def prepare() -> str:
    """Make ``import cdktf_cdktf_provider_aws.<submodule>`` cheap; returns ``"fast"`` or ``"plain"``.

    Call before the first submodule import (``infra.constructs`` does so on import).
    """
    if fast_path_enabled() and _register_without_init():
        return "fast"
    importlib.import_module(PACKAGE)
    return "plain"
