"""Uploads archived by the bucket's lifecycle: ``tap jobs retry`` and ``tap redrive`` say so instead of retrying
into the DLQ.

After ``glacier_transition_days`` an upload under ``raw/`` is in S3 Glacier Flexible Retrieval (or Deep Archive if
someone moved it there): GetObject answers ``InvalidObjectState`` until a restore (RestoreObject) makes a
temporary copy readable, so the worker would fail the version on every delivery and it would end in the DLQ.
HeadObject still answers, with ``StorageClass`` and, once a restore was asked for, the ``Restore`` header.
"""

from __future__ import annotations

import contextlib
import shlex
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from analytics_platform.etl.events import UNVERSIONED, parse_object_created
from analytics_platform.etl.exceptions import MalformedMessageError

#: Storage classes whose objects must be restored before GetObject (Glacier Instant Retrieval reads directly).
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
#: How long a restored copy stays readable, by default: long enough for a retry and its redeliveries.
RESTORE_DAYS = 7
#: The retrieval tier a restore asks for: the one both archive classes offer (Expedited is Glacier-only).
RESTORE_TIER = "Standard"
#: What the Standard tier takes, per class (S3 User Guide, "Archive retrieval options").
RESTORE_TIME = {"GLACIER": "3-5 hours", "DEEP_ARCHIVE": "up to 12 hours"}
#: Seconds a DLQ message stays hidden while :func:`archived_in_queue` reads it (made visible again right after).
SCAN_VISIBILITY_SECONDS = 60


@dataclass(frozen=True)
class ArchivedVersion:
    """One object version that cannot be read now: archived, or being restored."""

    bucket: str
    key: str
    version_id: str | None
    storage_class: str
    restoring: bool

    def restore_command(self, days: int = RESTORE_DAYS) -> str:
        """The AWS CLI command that restores this version."""
        version = f" --version-id {shlex.quote(self.version_id)}" if self.version_id else ""
        request = f'{{"Days": {days}, "GlacierJobParameters": {{"Tier": "{RESTORE_TIER}"}}}}'
        return (f"aws s3api restore-object --bucket {shlex.quote(self.bucket)} --key {shlex.quote(self.key)}"
                f"{version} --restore-request '{request}'")  # fmt: skip

    def explanation(self, command: str, *, can_restore: bool = False) -> str:
        """What is wrong and what to do, for a report line; ``command`` is the tap command to run again
        (``can_restore``: it takes ``--restore`` to start the restore itself)."""
        wait = RESTORE_TIME.get(self.storage_class, "hours")
        if self.restoring:
            return (f"archived ({self.storage_class}), a restore is under way ({wait}): run {command} again once it "
                    "is done; the job is left as it was")  # fmt: skip
        also = f" or {command} --restore" if can_restore else ""
        return (f"archived ({self.storage_class}): S3 answers InvalidObjectState until it is restored; restore it "
                f"({wait}) with `{self.restore_command()}`{also}, then run {command} again; the job is left as it "
                "was")  # fmt: skip


def archived_version(head: dict[str, Any], *, bucket: str, key: str, version_id: str | None) -> ArchivedVersion | None:
    """The version as :class:`ArchivedVersion` if its HeadObject answer says GetObject would refuse it now.

    A finished restore (``Restore: ongoing-request="false", expiry-date=...``) is readable: not archived.
    """
    storage_class = str(head.get("StorageClass") or "STANDARD")
    if storage_class not in ARCHIVE_CLASSES:
        return None
    restore = str(head.get("Restore") or "")
    if 'ongoing-request="false"' in restore:
        return None
    return ArchivedVersion(bucket, key, version_id, storage_class, restoring='ongoing-request="true"' in restore)


def check_version(s3: Any, *, bucket: str, key: str, version_id: str | None) -> ArchivedVersion | None:
    """HeadObject of one version; its :class:`ArchivedVersion` if archived. Errors are left to the caller's own
    reading of the object (a version that is gone is reported as gone there)."""
    extra = {"VersionId": version_id} if version_id else {}
    try:
        head = s3.head_object(Bucket=bucket, Key=key, **extra)
    except (ClientError, BotoCoreError):
        return None
    return archived_version(head, bucket=bucket, key=key, version_id=version_id)


def start_restore(s3: Any, version: ArchivedVersion, days: int = RESTORE_DAYS) -> str:
    """Ask S3 to restore ``version`` for ``days`` (Standard tier); a report line saying what happened."""
    extra = {"VersionId": version.version_id} if version.version_id else {}
    wait = RESTORE_TIME.get(version.storage_class, "hours")
    try:
        s3.restore_object(
            Bucket=version.bucket, Key=version.key, **extra,
            RestoreRequest={"Days": days, "GlacierJobParameters": {"Tier": RESTORE_TIER}},
        )  # fmt: skip
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "RestoreAlreadyInProgress":
            return f"archived ({version.storage_class}): a restore is already under way ({wait})"
        return f"archived ({version.storage_class}): the restore could not be started ({error})"
    return f"archived ({version.storage_class}): restore started ({wait}, readable for {days} days)"


def archived_of_message(s3: Any, body: str) -> ArchivedVersion | None:
    """The archived version a DLQ message's upload event names, or None (not archived, or not an upload event:
    such a message is moved like any other)."""
    try:
        ref = parse_object_created(body)
    except MalformedMessageError:
        return None
    version = None if ref.version_id == UNVERSIONED else ref.version_id
    return check_version(s3, bucket=ref.bucket, key=ref.key, version_id=version)


def archived_in_queue(sqs: Any, s3: Any, queue_url: str, *, limit: int = 100_000) -> list[ArchivedVersion]:
    """Every archived version named by a message of ``queue_url``; the messages are read (hidden for
    :data:`SCAN_VISIBILITY_SECONDS`) and made visible again at once, nothing is deleted."""
    found: list[ArchivedVersion] = []
    seen: set[str] = set()
    handles: list[str] = []
    try:
        while len(seen) < limit:
            # Long polling asks every SQS server: an empty answer means none is left (a short poll may miss some).
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=SCAN_VISIBILITY_SECONDS
            ).get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            if not fresh:
                break
            for message in fresh:
                seen.add(message["MessageId"])
                handles.append(message["ReceiptHandle"])
                archived = archived_of_message(s3, message["Body"])
                if archived is not None:
                    found.append(archived)
    finally:
        show_again(sqs, queue_url, handles)
    return found


def show_again(sqs: Any, queue_url: str, handles: list[str]) -> None:
    """Best effort: make messages visible again at once (else they reappear after their visibility timeout)."""
    for start in range(0, len(handles), 10):
        entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                   for i, h in enumerate(handles[start:start + 10])]  # fmt: skip
        # On failure they come back after their visibility timeout anyway.
        with contextlib.suppress(ClientError, BotoCoreError):
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
