"""Compatibility export for pipelines that expect ``lib/tap_stack.py`` with a ``TapStack`` class."""

from analytics_platform.infra.stack import RegionalStack as TapStack

__all__ = ["TapStack"]
