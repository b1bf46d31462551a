"""The key's pointer: which version of each key is current, in S3's own order.

One item per key in the job table (``latest#<hash>``) names the key's current state: a version and its job
(``state`` ``object``), or deleted (``state`` ``deleted``, after a delete marker or the deletion of the last
version). Each state carries its ``order``: the S3 event's sequencer in comparable form (:func:`.events.order_of`),
so the pointer follows S3's order whatever order the events arrive and the jobs finish in, and never
``LastModified`` (the *start* of a multipart upload). It moves only forward, by conditional write, and keeps the
job it replaced (``previous_job``) until that one is retired, so a crash between the move and the retirement is
repaired by the next delivery (:meth:`analytics_platform.etl.publish.Publisher.finish`).

An event without a sequencer (a hand-made one) is placed by S3's version listing instead (:func:`listing_order`):
current if S3 lists it as the key's latest, else older than whatever is current.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from analytics_platform.etl.events import UNVERSIONED, ObjectRef

OBJECT, DELETED = "object", "deleted"
MAX_ATTEMPTS = 20


@dataclass(frozen=True)
class Pointer:
    """A key's current state as the job table records it."""

    current_job: str = ""
    current_version: str = ""
    order: str = ""
    state: str = ""
    previous_job: str = ""
    #: The job a deletion made current again (its version is S3's latest), until that job takes the pointer.
    reinstating: str = ""

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> Pointer | None:
        """The pointer of a ``latest#`` item (None: no item)."""
        if not item:
            return None
        return cls(
            current_job=str(item.get("current_job", "")), current_version=str(item.get("current_version", "")),
            order=str(item.get("current_order", "")), state=str(item.get("state", OBJECT)),
            previous_job=str(item.get("previous_job", "")), reinstating=str(item.get("reinstating", "")),
        )  # fmt: skip

    def describe(self) -> str:
        """Who holds the key, for a job's ``superseded_by`` / reason."""
        if self.state == DELETED:
            return f"deleted (version {self.current_version})" if self.current_version else "deleted"
        return self.current_job or "unknown"


@dataclass(frozen=True)
class Move:
    """What a move of the pointer did: ``won`` (the pointer names the new state now), else ``holder`` (a later
    state); ``replaced``: the job that was current before (to retire), "" if none."""

    won: bool
    holder: Pointer | None = None
    replaced: str = ""


def pointer_key(ref: ObjectRef) -> dict[str, str]:
    """Key of the key's ``latest#`` item in the job table."""
    digest = hashlib.sha256(f"{ref.bucket}\n{ref.key}".encode()).hexdigest()[:32]
    return {"job_id": f"latest#{digest}"}


def read(table: Any, ref: ObjectRef) -> Pointer | None:
    """The key's pointer (consistent read)."""
    return Pointer.from_item(table.get_item(Key=pointer_key(ref), ConsistentRead=True).get("Item"))


def move(
    table: Any, ref: ObjectRef, *, order: str, job_id: str, state: str = OBJECT, version: str | None = None,
    at_least: bool = False, reinstating: str = "",
) -> Move:  # fmt: skip
    """Make (``job_id``, ``version``, ``state``) the key's current state if ``order`` is later than the pointer's
    (``at_least``: or equal). Idempotent: the same job moving again wins, with the job it replaced the first time,
    whatever order its event carries (a retry's event carries the upload's own, older sequencer); so does the job
    a deletion made current again (``reinstating``, set by that deletion's move)."""
    version = ref.version_id if version is None else version
    for _ in range(MAX_ATTEMPTS):
        pointer = read(table, ref)
        if (
            pointer is not None
            and state == OBJECT
            and job_id
            and pointer.state == OBJECT
            and (pointer.current_job == job_id)
        ):
            return Move(True, replaced=pointer.previous_job)
        if pointer is not None and state == OBJECT and job_id and pointer.reinstating == job_id:
            order = max(order, f"{pointer.order}~R")
        if (
            pointer is not None
            and pointer.order == order
            and pointer.state == state
            and (pointer.current_job == job_id and pointer.current_version == version)
        ):
            return Move(True, replaced=pointer.previous_job)
        if pointer is not None and (pointer.order > order or (pointer.order == order and not at_least)):
            return Move(False, holder=pointer)
        replaced = pointer.current_job if pointer is not None and pointer.current_job != job_id else ""
        if _write(table, ref, pointer, order=order, job_id=job_id, state=state, version=version, replaced=replaced,
                  reinstating=reinstating):  # fmt: skip
            return Move(True, replaced=replaced)
    raise RuntimeError(f"the pointer of {ref.key!r} kept changing under concurrent jobs")


def _write(
    table: Any, ref: ObjectRef, seen: Pointer | None, *, order: str, job_id: str, state: str, version: str,
    replaced: str, reinstating: str,
) -> bool:  # fmt: skip
    values: dict[str, Any] = {":job": job_id, ":order": order, ":state": state, ":version": version,
                              ":previous": replaced, ":key": ref.key, ":kind": "latest",
                              ":reinstating": reinstating}  # fmt: skip
    if seen is None:
        condition = "attribute_not_exists(job_id)"
    else:
        condition = "current_order = :seen_order AND current_job = :seen_job"
        values |= {":seen_order": seen.order, ":seen_job": seen.current_job}
    try:
        table.update_item(
            Key=pointer_key(ref),
            UpdateExpression="SET current_job = :job, current_order = :order, #state = :state, current_version = "
            ":version, previous_job = :previous, input_key = :key, record_type = :kind, reinstating = :reinstating",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=values,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        return False
    return True


def clear_previous(table: Any, ref: ObjectRef, job_id: str) -> None:
    """Forget ``previous_job`` once it is retired (only while it is still ``job_id``)."""
    try:
        table.update_item(
            Key=pointer_key(ref), UpdateExpression="REMOVE previous_job", ConditionExpression="previous_job = :job",
            ExpressionAttributeValues={":job": job_id},
        )  # fmt: skip
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise


@dataclass(frozen=True)
class Latest:
    """The key's latest entry in S3's version listing: a version, a delete marker, or nothing."""

    version_id: str = ""
    is_delete_marker: bool = False
    size: int = 0

    @property
    def exists(self) -> bool:
        """Whether S3 holds a current (not deleted) version of the key."""
        return bool(self.version_id) and not self.is_delete_marker


def latest_in_s3(s3: Any, ref: ObjectRef) -> Latest:
    """What S3 lists as the key's current entry now."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=ref.bucket, Prefix=ref.key):
        for entry in page.get("Versions", []):
            if entry["Key"] == ref.key and entry.get("IsLatest"):
                return Latest(str(entry.get("VersionId") or UNVERSIONED), size=int(entry.get("Size", 0)))
        for marker in page.get("DeleteMarkers", []):
            if marker["Key"] == ref.key and marker.get("IsLatest"):
                return Latest(str(marker.get("VersionId") or UNVERSIONED), is_delete_marker=True)
    return Latest()


def marker_exists(s3: Any, ref: ObjectRef) -> bool:
    """Whether S3 still lists ``ref``'s delete marker (any entry of the key with its version id)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=ref.bucket, Prefix=ref.key):
        for marker in page.get("DeleteMarkers", []):
            if marker["Key"] == ref.key and str(marker.get("VersionId") or UNVERSIONED) == ref.version_id:
                return True
    return False


def listing_order(s3: Any, table: Any, ref: ObjectRef) -> str | None:
    """For an event without a sequencer: the pointer's order if S3 lists ``ref``'s version as the key's latest
    (it is current: take the pointer at that order), None if S3 lists another entry as latest (it is not)."""
    latest = latest_in_s3(s3, ref)
    if not latest.exists or latest.version_id != ref.version_id:
        return None
    pointer = read(table, ref)
    return pointer.order if pointer is not None else ""


def version_ref(ref: ObjectRef, version_id: str, *, size: int = 0, reinstated: bool = False) -> ObjectRef:
    """Another version of the same key; ``reinstated``: made current again by ``ref`` (a deletion), so it is
    ordered just after that event."""
    return ObjectRef(ref.bucket, ref.key, version_id, size, ref.event_time, ref.region, sequencer=ref.sequencer,
                     reinstated=reinstated)  # fmt: skip
