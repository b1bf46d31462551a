"""The message shape: an EventBridge ``Object Created`` / ``Object Deleted`` event from S3, as an SQS body.

Order: S3 gives every event of a key a ``sequencer``; of two events of one key, the greater sequencer (compared
as hexadecimal strings right-padded with zeros to one length) happened later. :func:`order_of` gives that
comparable form; it decides which version of a key is current (:mod:`.latest`), never ``LastModified`` (which
for a multipart upload is when the upload *started*).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote_plus, unquote_plus

from analytics_platform.etl.arns import s3_bucket_arn
from analytics_platform.etl.exceptions import MalformedMessageError

UNVERSIONED = "null"
CREATED, DELETED = "Object Created", "Object Deleted"
#: ``detail.deletion-type`` of an ``Object Deleted`` event.
DELETE_MARKER_CREATED, PERMANENTLY_DELETED = "Delete Marker Created", "Permanently Deleted"
#: Width every sequencer is right-padded to before comparing (S3's are 16 to 18 hexadecimal digits).
SEQUENCER_WIDTH = 64
_HEX = frozenset("0123456789ABCDEF")


def order_of(sequencer: str) -> str:
    """The sequencer as a string that sorts in S3's order: upper case, right-padded with zeros (empty stays empty)."""
    return sequencer.upper().ljust(SEQUENCER_WIDTH, "0") if sequencer else ""


def decode_key(wire_key: str) -> str:
    """The object key from an S3 event: S3 sends it form-encoded (space as ``+``), so always ``unquote_plus``.

    As AWS's own Powertools ``S3EventBridgeNotificationObject.key`` does. Decoding only keys that contain
    ``%XX`` would fetch ``a b.csv`` (sent as ``a+b.csv``) under the wrong name and turn a literal ``%41`` into ``A``.
    """
    return unquote_plus(wire_key)


def encode_key(key: str) -> str:
    """The key as S3 puts it into an event: form encoding, ``/`` kept (the inverse of :func:`decode_key`)."""
    return quote_plus(key, safe="/")


@dataclass(frozen=True)
class ObjectRef:
    """One object version an S3 event names, and when and in which order it happened.

    ``change`` is :data:`CREATED` (an upload) or :data:`DELETED` (then ``deletion_type`` says which kind and
    ``version_id`` is the delete marker's, or the version deleted for good).
    """

    bucket: str
    key: str
    version_id: str
    size: int
    event_time: datetime
    region: str
    sequencer: str = ""
    etag: str = ""
    change: str = CREATED
    deletion_type: str = ""
    #: Made current again by a deletion (the deletion of the version above it): ordered just after that event.
    reinstated: bool = False

    @property
    def job_id(self) -> str:
        """Stable job identity: the same object version always maps to the same job.

        With versioning suspended every upload of a key is version ``null``: there the upload's sequencer is part
        of the identity, so a re-upload is a new job, not a duplicate.
        """
        identity = f"{self.bucket}\n{self.key}\n{self.version_id}"
        if self.version_id == UNVERSIONED and self.sequencer:
            identity += f"\n{order_of(self.sequencer)}"
        return hashlib.sha256(identity.encode()).hexdigest()[:32]

    @property
    def order(self) -> str:
        """The event's place in its key's history (:func:`order_of` its sequencer; a reinstated version sorts
        after the deletion that reinstated it and before any later event)."""
        order = order_of(self.sequencer)
        return f"{order}~R" if self.reinstated and order else order

    @property
    def is_deletion(self) -> bool:
        """An ``Object Deleted`` event."""
        return self.change == DELETED

    @property
    def is_folder_marker(self) -> bool:
        """A key ending in ``/``: what the S3 console creates as a "folder" (zero bytes); nothing to convert."""
        return self.key.endswith("/")

    @property
    def uri(self) -> str:
        """``s3://bucket/key?versionId=...``."""
        return f"s3://{self.bucket}/{self.key}?versionId={self.version_id}"


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _sequencer(value: object) -> str:
    if value is None or value == "":
        return ""
    text = str(value).upper()
    if len(text) > SEQUENCER_WIDTH or not set(text) <= _HEX:
        raise MalformedMessageError(f"detail.object.sequencer is not a hexadecimal sequencer: {value!r}")
    return text


def parse_object_created(body: str) -> ObjectRef:
    """Parse an SQS body holding an EventBridge S3 ``Object Created`` event (only that kind)."""
    ref = parse_object_event(body)
    if ref.is_deletion:
        raise MalformedMessageError("an S3 Object Deleted event where an Object Created event was expected")
    return ref


def parse_object_event(body: str) -> ObjectRef:
    """Parse an SQS body holding an EventBridge S3 ``Object Created`` or ``Object Deleted`` event."""
    try:
        event = json.loads(body)
    except (json.JSONDecodeError, TypeError) as error:
        raise MalformedMessageError(f"message body is not JSON: {error}") from error
    if not isinstance(event, dict):
        raise MalformedMessageError("message body is not a JSON object")
    change = event.get("detail-type")
    if event.get("source") != "aws.s3" or change not in (CREATED, DELETED):
        raise MalformedMessageError(
            f"not an S3 Object Created / Deleted event (source={event.get('source')!r}, detail-type={change!r})"
        )
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise MalformedMessageError("event has no detail object")
    bucket = (detail.get("bucket") or {}).get("name")
    obj = detail.get("object") or {}
    key = obj.get("key")
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        raise MalformedMessageError("event lacks detail.bucket.name or detail.object.key")
    size = obj.get("size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise MalformedMessageError(f"detail.object.size is not a byte count: {size!r}")
    deletion_type = ""
    if change == DELETED:
        deletion_type = str(detail.get("deletion-type", ""))
        if deletion_type not in (DELETE_MARKER_CREATED, PERMANENTLY_DELETED):
            raise MalformedMessageError(f"Object Deleted event with an unknown deletion-type {deletion_type!r}")
    version = obj.get("version-id") or UNVERSIONED
    return ObjectRef(
        bucket=bucket,
        key=decode_key(key),
        version_id=str(version),
        size=size,
        event_time=_parse_time(event.get("time")),
        region=str(event.get("region", "")),
        sequencer=_sequencer(obj.get("sequencer")),
        etag=str(obj.get("etag") or obj.get("eTag") or "").strip('"'),
        change=str(change),
        deletion_type=deletion_type,
    )


def object_created_event(
    bucket: str, key: str, *, version_id: str | None, size: int, region: str, time: datetime | None = None,
    sequencer: str = "", etag: str = "",
) -> dict[str, object]:  # fmt: skip
    """Build the event EventBridge sends for a new object, key encoded as S3 does (tests, the demo, re-drives)."""
    obj: dict[str, object] = {"key": encode_key(key), "size": size}
    if etag:
        obj["etag"] = etag
    return _event(CREATED, bucket, obj, version_id, region, time, sequencer, {"reason": "PutObject"})


def object_deleted_event(
    bucket: str, key: str, *, version_id: str | None, deletion_type: str, region: str, sequencer: str,
    time: datetime | None = None,
) -> dict[str, object]:  # fmt: skip
    """Build the event EventBridge sends for a deletion (``version_id``: the marker's, or the version deleted)."""
    extra = {"reason": "DeleteObject", "deletion-type": deletion_type}
    return _event(DELETED, bucket, {"key": encode_key(key)}, version_id, region, time, sequencer, extra)


def _event(
    change: str, bucket: str, obj: dict[str, object], version_id: str | None, region: str, time: datetime | None,
    sequencer: str, extra: dict[str, str],
) -> dict[str, object]:  # fmt: skip
    when = (time or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    if version_id:
        obj["version-id"] = version_id
    if sequencer:
        obj["sequencer"] = sequencer
    return {
        "version": "0",
        "id": hashlib.sha256(f"{bucket}/{obj['key']}/{version_id}/{sequencer}/{when}".encode()).hexdigest()[:36],
        "detail-type": change,
        "source": "aws.s3",
        "time": when,
        "region": region,
        "resources": [s3_bucket_arn(bucket, region)],
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": obj, **extra},
    }
