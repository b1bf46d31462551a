"""S3's EventBridge events on the local endpoint, as AWS sends them (moto's differ in ways the worker relies on).

moto sends one fixed ``sequencer`` for every event, no ``deletion-type``, no event at all for a delete marker or
for deleting one version of several, and its key unencoded. With versioning suspended it drops a key's older
versions on every upload and on a delete. Here:

* every event carries a sequencer that grows with each event (S3's order per key; comparable as S3 documents:
  right-padded hexadecimal), the ``etag``, and the key form-encoded;
* ``DeleteObject`` sends ``Object Deleted`` with ``deletion-type`` ``Delete Marker Created`` (the marker's version
  id) or ``Permanently Deleted`` (the version deleted), for every kind of delete, as S3 does;
* with versioning suspended, an upload replaces only the ``null`` version and a delete leaves a ``null`` delete
  marker, keeping the older versions, as S3 does.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
import uuid
from typing import Any
from urllib.parse import quote_plus

from analytics_platform.local.endpoint.fixes import emulator_fix, install

_LOCK = threading.Lock()
_COUNTER = itertools.count()
_LAST = [0]
#: Set while a patched delete runs: moto's own (incomplete) delete event is not sent then.
_QUIET = threading.local()


def next_sequencer() -> str:
    """A sequencer greater than every earlier one (18 upper-case hexadecimal digits, as S3's)."""
    with _LOCK:
        value = max(time.time_ns() >> 4, _LAST[0] + 1)
        _LAST[0] = value
    return f"{value:018X}"


def _send(account_id: str, bucket: Any, detail_type: str, obj: dict[str, Any], extra: dict[str, str]) -> None:
    from moto.events.models import events_backends
    from moto.events.utils import _BASE_EVENT_MESSAGE

    event = copy.deepcopy(_BASE_EVENT_MESSAGE)
    event.update({"id": str(uuid.uuid4()), "detail-type": detail_type, "source": "aws.s3", "account": account_id,
                  "region": bucket.region_name, "resources": [bucket.arn]})  # fmt: skip
    event["time"] = time.time()  # moto formats it when it delivers
    event["detail"] = {
        "version": "0", "bucket": {"name": bucket.name}, "object": obj, "request-id": f"{next(_COUNTER):016X}",
        "requester": account_id, "source-ip-address": "127.0.0.1", **extra,
    }  # fmt: skip
    backend = events_backends[account_id][bucket.region_name]
    for bus in backend.event_buses.values():
        for rule in bus.rules.values():
            rule.send_to_targets(event, transform_input=False)


def _object(key_name: str, version_id: str | None, **more: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": quote_plus(key_name, safe="/"), **more}
    if version_id and version_id != "null":
        obj["version-id"] = version_id
    obj["sequencer"] = next_sequencer()
    return obj


def send_created(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
    """moto's EventBridge hook, for created objects (its delete events are replaced by :func:`send_deleted`)."""
    if "ObjectCreated" not in event_name:
        return
    reasons = {"Put": "PutObject", "Post": "POST Object", "Copy": "CopyObject"}
    reason = reasons.get(event_name.rsplit(":", 1)[-1], "CompleteMultipartUpload")
    obj = _object(key.name, str(key.version_id), size=int(key.size), etag=str(key.etag).strip('"'))
    try:
        _send(account_id, bucket, "Object Created", obj, {"reason": reason})
    except Exception:  # asynchronous on AWS: a failed delivery never fails the upload
        return


def send_deleted(account_id: str, bucket: Any, key_name: str, version_id: str | None, marker: bool) -> None:
    """``Object Deleted`` for one delete: a marker created, or a version deleted for good."""
    kind = "Delete Marker Created" if marker else "Permanently Deleted"
    try:
        _send(account_id, bucket, "Object Deleted", _object(key_name, version_id),
              {"reason": "DeleteObject", "deletion-type": kind})  # fmt: skip
    except Exception:  # asynchronous on AWS
        return


@emulator_fix(
    moto="one fixed sequencer, the key unencoded, no event for a delete marker; with versioning suspended an "
    "upload or a delete drops the older versions",
    aws="EventBridge events with a growing sequencer, the etag and the key form-encoded; Object Deleted for every "
    "delete; suspended versioning replaces only the null version",
    test="tests/functional/test_local_endpoint.py::test_s3_eventbridge_events_carry_the_key_encoded_as_aws_sends_it",
)
def patch_s3_events() -> None:
    """Install the events above and S3's suspended-versioning behaviour into moto."""
    from moto.s3 import notifications
    from moto.s3.models import FakeDeleteMarker, S3Backend

    original_delete = S3Backend.delete_object
    original_put = S3Backend.put_object

    def send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        if not getattr(_QUIET, "on", False):
            send_created(account_id, bucket, event_name, key)

    def delete_object(self: Any, bucket_name: str, key_name: str, version_id: str | None = None,
                      bypass: bool = False) -> Any:  # fmt: skip
        bucket = self.get_bucket(bucket_name)
        if bucket.versioning_status == "Suspended":
            return _delete_suspended(self, bucket, key_name, version_id, FakeDeleteMarker)
        _QUIET.on = True
        try:
            success, meta = original_delete(self, bucket_name, key_name, version_id=version_id, bypass=bypass)
        finally:
            _QUIET.on = False
        if success:
            marker = version_id is None and bucket.is_versioned
            send_deleted(self.account_id, bucket, key_name, meta.get("version-id") or version_id, marker)
        return success, meta

    def put_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        bucket = self.get_bucket(bucket_name)
        kept = [k for k in bucket.keys.getlist(key_name, []) if str(k.version_id) != "null"]
        new_key = original_put(self, bucket_name, key_name, *args, **kwargs)
        if bucket.versioning_status == "Suspended":
            bucket.keys.setlist(key_name, [*kept, new_key])  # S3 replaces only the null version
        return new_key

    notifications._send_event_bridge_message = send_event_bridge_message
    install(S3Backend, "delete_object", delete_object)
    install(S3Backend, "put_object", put_object)


def _delete_suspended(backend: Any, bucket: Any, key_name: str, version_id: str | None, marker_class: Any) -> Any:
    """DeleteObject with versioning suspended: without a version id the ``null`` version is replaced by a ``null``
    delete marker (older versions stay); with one, that version goes for good."""
    versions = bucket.keys.getlist(key_name, [])
    if not versions:
        return False, {}
    if version_id is not None:
        kept = [k for k in versions if str(k.version_id) != str(version_id)]
        bucket.keys.setlist(key_name, kept) if kept else bucket.keys.pop(key_name)
        send_deleted(backend.account_id, bucket, key_name, version_id, marker=False)
        return True, {"version-id": version_id}
    marker = marker_class(key=versions[-1])
    marker._version_id = "null"
    bucket.keys.setlist(key_name, [k for k in versions if str(k.version_id) != "null"] + [marker])
    send_deleted(backend.account_id, bucket, key_name, "null", marker=True)
    return True, {"version-id": "null", "delete-marker": "true"}
