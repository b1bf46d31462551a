"""Worker settings, read once from the function's environment (names are constants here)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DATA_REGION = "DATA_REGION"
BUCKET_NAME = "BUCKET_NAME"
TABLE_NAME = "TABLE_NAME"
RAW_PREFIX = "RAW_PREFIX"
PROCESSED_PREFIX = "PROCESSED_PREFIX"
QUARANTINE_PREFIX = "QUARANTINE_PREFIX"
MAX_OBJECT_BYTES = "MAX_OBJECT_BYTES"
MAX_REJECT_RATIO = "MAX_REJECT_RATIO"
MAX_RECEIVE_COUNT = "MAX_RECEIVE_COUNT"
DUCKDB_MEMORY_LIMIT_MB = "DUCKDB_MEMORY_LIMIT_MB"
WORK_DIR = "TAP_WORK_DIR"


@dataclass(frozen=True)
class Settings:
    """What the worker needs to know about its region; by default the values the stacks set."""

    region: str
    bucket: str
    table: str
    raw_prefix: str = "raw/"
    processed_prefix: str = "processed/"
    quarantine_prefix: str = "quarantine/"
    max_object_bytes: int = 4 * 1024**3
    max_reject_ratio: float = 0.1
    max_receive_count: int = 3
    duckdb_memory_mb: int = 307
    work_dir: str = "/tmp"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings; a missing required variable is a clear ``KeyError``-free message."""
        env = os.environ if environ is None else environ
        missing = [name for name in (DATA_REGION, BUCKET_NAME, TABLE_NAME) if not env.get(name)]
        if missing:
            raise RuntimeError(f"worker misconfigured: environment variable(s) {', '.join(missing)} not set")
        return cls(
            region=env[DATA_REGION],
            bucket=env[BUCKET_NAME],
            table=env[TABLE_NAME],
            raw_prefix=env.get(RAW_PREFIX, "raw/"),
            processed_prefix=env.get(PROCESSED_PREFIX, "processed/"),
            quarantine_prefix=env.get(QUARANTINE_PREFIX, "quarantine/"),
            max_object_bytes=int(env.get(MAX_OBJECT_BYTES, str(4 * 1024**3))),
            max_reject_ratio=float(env.get(MAX_REJECT_RATIO, "0.1")),
            max_receive_count=int(env.get(MAX_RECEIVE_COUNT, "3")),
            duckdb_memory_mb=int(env.get(DUCKDB_MEMORY_LIMIT_MB, "307")),
            work_dir=env.get(WORK_DIR, "/tmp"),
        )
