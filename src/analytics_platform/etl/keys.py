"""Names derived from an upload's key: its dataset and the keys of its outputs."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC
from pathlib import PurePosixPath

from analytics_platform.etl.events import UNVERSIONED, ObjectRef
from analytics_platform.etl.settings import Settings

DEFAULT_DATASET = "default"
MAX_DATASET_CHARS = 64
MAX_BASE_NAME_CHARS = 120


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def dataset_of(key: str, raw_prefix: str) -> str:
    """First path segment under ``raw/`` (``raw/sales/x.csv`` -> ``sales``); ``default`` if none."""
    parts = PurePosixPath(key[len(raw_prefix) :] if key.startswith(raw_prefix) else key).parts
    if len(parts) < 2:
        return DEFAULT_DATASET
    cleaned = re.sub(r"[^0-9A-Za-z_-]+", "_", parts[0]).strip("_").lower()[:MAX_DATASET_CHARS].strip("_")
    return cleaned or DEFAULT_DATASET


def base_name(key: str) -> str:
    """File name without its data and compression extensions, safe and short enough for an output key."""
    name = PurePosixPath(key).name
    for extension in (".gz", ".gzip"):
        if name.lower().endswith(extension):
            name = name[: -len(extension)]
    stem = PurePosixPath(name).stem if "." in name else name
    safe = re.sub(r"[^0-9A-Za-z._-]+", "_", stem) or "object"
    if len(safe) > MAX_BASE_NAME_CHARS:  # S3 keys end at 1,024 bytes: keep a prefix plus a hash of the whole
        safe = f"{safe[:MAX_BASE_NAME_CHARS]}-{_short_hash(key)}"
    return safe


def output_keys(settings: Settings, ref: ObjectRef, dataset: str) -> tuple[str, str]:
    """``processed/<dataset>/ingest_date=YYYY-MM-DD/<name>-<version>.parquet`` and its quarantine twin."""
    day = ref.event_time.astimezone(UTC).strftime("%Y-%m-%d")
    # Version "null" (versioning suspended) names every upload of the key alike; its job id tells them apart.
    version_id = f"null-{ref.job_id[:16]}" if ref.version_id == UNVERSIONED else ref.version_id
    version = re.sub(r"[^0-9A-Za-z._-]+", "_", version_id)[:128]
    stem = f"{dataset}/ingest_date={day}/{base_name(ref.key)}-{version}"
    return f"{settings.processed_prefix}{stem}.parquet", f"{settings.quarantine_prefix}{stem}.rejects.jsonl"
