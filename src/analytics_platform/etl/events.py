"""The message shape: an EventBridge ``Object Created`` event from S3, as the body of an SQS message."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote_plus, unquote_plus

from analytics_platform.etl.arns import s3_bucket_arn
from analytics_platform.etl.exceptions import MalformedMessageError

UNVERSIONED = "null"


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
    """One uploaded object version and when it was created."""

    bucket: str
    key: str
    version_id: str
    size: int
    event_time: datetime
    region: str

    @property
    def job_id(self) -> str:
        """Stable job identity: the same object version always maps to the same job."""
        digest = hashlib.sha256(f"{self.bucket}\n{self.key}\n{self.version_id}".encode()).hexdigest()
        return digest[:32]

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


def parse_object_created(body: str) -> ObjectRef:
    """Parse an SQS body holding an EventBridge S3 ``Object Created`` event."""
    try:
        event = json.loads(body)
    except (json.JSONDecodeError, TypeError) as error:
        raise MalformedMessageError(f"message body is not JSON: {error}") from error
    if not isinstance(event, dict):
        raise MalformedMessageError("message body is not a JSON object")
    if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        raise MalformedMessageError(
            f"not an S3 Object Created event (source={event.get('source')!r}, detail-type={event.get('detail-type')!r})"
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
    version = obj.get("version-id") or UNVERSIONED
    return ObjectRef(
        bucket=bucket,
        key=decode_key(key),
        version_id=str(version),
        size=size,
        event_time=_parse_time(event.get("time")),
        region=str(event.get("region", "")),
    )


def object_created_event(
    bucket: str, key: str, *, version_id: str | None, size: int, region: str, time: datetime | None = None
) -> dict[str, object]:
    """Build the event EventBridge sends for a new object, key encoded as S3 does (tests, the demo, re-drives)."""
    when = (time or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    obj: dict[str, object] = {"key": encode_key(key), "size": size}
    if version_id:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": hashlib.sha256(f"{bucket}/{key}/{version_id}/{when}".encode()).hexdigest()[:36],
        "detail-type": "Object Created",
        "source": "aws.s3",
        "time": when,
        "region": region,
        "resources": [s3_bucket_arn(bucket, region)],
        "detail": {"version": "0", "bucket": {"name": bucket}, "object": obj, "reason": "PutObject"},
    }
