"""Configuration errors: one error naming its setting (and the file it came from), several reported at once, and
the collection :func:`analytics_platform.infra.validation.validate` runs its rules under."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar


class ConfigError(ValueError):
    """A configuration value is invalid; ``field`` names the offending setting, ``source`` the file it came from
    (None: a default, the command line or the environment)."""

    def __init__(self, field_name: str, message: str, source: str | None = None) -> None:
        self.field, self.message, self.source = field_name, message, source
        where = f" in {source}" if source else ""
        super().__init__(f"invalid configuration{where}: {field_name}: {message}")

    @property
    def errors(self) -> list[ConfigError]:
        return [self]

    def located(self, sources: Mapping[str, str]) -> ConfigError:
        """This error with the file its top-level setting came from (``sources``: setting -> file)."""
        if self.source is not None:
            return self
        top = re.split(r"[.\[]", self.field, maxsplit=1)[0]
        return ConfigError(self.field, self.message, sources.get(top)) if top in sources else self


class ConfigErrors(ConfigError):
    """More than one configuration error, all reported at once; ``field`` is the first one's."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.field, first.message, first.source)
        self._errors = list(errors)
        lines = "\n".join(f"  - {e.source + ': ' if e.source else ''}{e.field}: {e.message}" for e in self._errors)
        self.args = (f"invalid configuration, {len(self._errors)} errors:\n{lines}",)

    @property
    def errors(self) -> list[ConfigError]:
        return self._errors

    def __str__(self) -> str:
        return str(self.args[0])


def raise_all(errors: Sequence[ConfigError]) -> None:
    """Raise nothing, the one error, or :class:`ConfigErrors` (each listed once, in order)."""
    unique = list({str(e): e for error in errors for e in error.errors}.values())
    if len(unique) == 1:
        raise unique[0]
    if unique:
        raise ConfigErrors(unique)


#: The errors :func:`~analytics_platform.infra.validation.validate` collects while it runs (None outside: each rule
#: raises at once).
collected_errors: ContextVar[list[ConfigError] | None] = ContextVar("config_errors", default=None)


def require(condition: bool, field_name: str, message: str) -> None:
    """One rule: nothing if ``condition`` holds, else a :class:`ConfigError` collected (or raised outside
    :func:`~analytics_platform.infra.validation.validate`)."""
    if condition:
        return
    error = ConfigError(field_name, message)
    collected = collected_errors.get()
    if collected is None:
        raise error
    collected.append(error)


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``; did you mean 'lambda_memory_mb'?`` when ``known`` has a close spelling of ``word``, else ``""``."""
    close = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.7)
    return f"; did you mean {close[0]!r}?" if close else ""
