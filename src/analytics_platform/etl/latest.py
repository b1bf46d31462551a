"""Latest version wins: of all versions of one key, only the newest that succeeded keeps its Parquet.

Order comes from S3 itself (``ListObjectVersions`` lists a key's versions newest first), not from the order in
which jobs finish, so versions that complete out of order still leave only the newest. One item per key in the
job table (``latest#<hash>``) names the current version; it moves only forward, by conditional write. A job
ends SUCCEEDED only in a transaction that checks it is still current (:meth:`JobTracker.succeed_current`), so a
newer version that takes over meanwhile either finds it SUCCEEDED and retires it, or it retires itself.
Retiring = deleting the Parquet from ``processed/`` (bucket versioning keeps it recoverable) and recording
``SUPERSEDED`` with the newer job's id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from analytics_platform.etl.events import UNVERSIONED, ObjectRef


@dataclass(frozen=True)
class Position:
    """Where a version stands among its key's versions: a sortable order and the versions older than it."""

    order: str
    older: tuple[str, ...]


def pointer_key(ref: ObjectRef) -> dict[str, str]:
    """Key of the key's ``latest#`` item in the job table."""
    digest = hashlib.sha256(f"{ref.bucket}\n{ref.key}".encode()).hexdigest()[:32]
    return {"job_id": f"latest#{digest}"}


def position(s3: Any, ref: ObjectRef) -> Position | None:
    """The version's position among the key's versions (None: unversioned, or the version is gone)."""
    if ref.version_id == UNVERSIONED:
        return None
    versions: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=ref.bucket, Prefix=ref.key):
        versions += [v for v in page.get("Versions", []) if v["Key"] == ref.key]
    ids = [str(v["VersionId"]) for v in versions]  # newest first, as S3 lists them
    if ref.version_id not in ids:
        return None
    index = ids.index(ref.version_id)
    stamp = versions[index]["LastModified"].strftime("%Y%m%dT%H%M%S")
    # The ordinal from the oldest breaks ties inside one second; the time keeps orders comparable across
    # listings even after old versions expired.
    return Position(f"{stamp}#{len(ids) - 1 - index:010d}", tuple(ids[index + 1 :]))


def take_current(table: Any, ref: ObjectRef, order: str) -> str | None:
    """Make ``ref``'s job the key's current version unless a newer one is; returns that newer job's id, or None."""
    try:
        table.update_item(
            Key=pointer_key(ref),
            UpdateExpression="SET current_job = :me, current_order = :order, input_key = :key, record_type = :kind",
            ConditionExpression="attribute_not_exists(current_order) OR current_order < :order OR current_job = :me",
            ExpressionAttributeValues={":me": ref.job_id, ":order": order, ":key": ref.key, ":kind": "latest"},
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        item = table.get_item(Key=pointer_key(ref), ConsistentRead=True).get("Item") or {}
        return str(item.get("current_job", "")) or "unknown"
    return None


def version_ref(ref: ObjectRef, version_id: str) -> ObjectRef:
    """Another version of the same key."""
    return ObjectRef(ref.bucket, ref.key, version_id, 0, ref.event_time, ref.region)
