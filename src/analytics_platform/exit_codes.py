"""The exit codes of every ``tap`` command, in one place (commands in every layer return these).

| code | meaning |
|---|---|
| 0 | done; nothing wrong found |
| 1 | the command ran and something failed: a finding, a failed region, a job not re-queued, a query error |
| 2 | refused before anything happened: bad arguments, configuration, environment or target |
| 3 | ``tap drift`` only: deployed resources differ from Terraform's state or from the other regions |
| 130 | interrupted (Ctrl-C) |
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """See the module docstring; ``int(ExitCode.USAGE) == 2``."""

    OK = 0
    FAILED = 1
    USAGE = 2
    DRIFT = 3
    INTERRUPTED = 130


__all__ = ["ExitCode"]
