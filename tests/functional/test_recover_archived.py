"""``tap jobs retry`` and ``tap redrive`` of an upload the bucket's lifecycle archived to Glacier (moto in-process).

GetObject of such a version answers ``InvalidObjectState`` until it is restored, so a retry or a redrive would only
fail it again on every delivery and land it in the DLQ: both say so and name the restore instead.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from analytics_platform.ops.archived import archived_version
from analytics_platform.ops.redrive import RedriveMethod, redrive
from analytics_platform.ops.retry import RetryOutcome

from .conftest import BUCKET, Platform
from .test_recover import dead_letter, deliver, fail_for_lack_of_disk, queues, retry, visible

__all__ = ["queues"]  # the fixture, imported for pytest

GOOD_CSV = b"id,name\n1,Ann\n2,Bo\n3,Cy\n"


def archive(key: str, version: str, storage_class: str = "GLACIER") -> None:
    """What the lifecycle's transition does to a version after glacier_transition_days (moto runs no lifecycle)."""
    stored = s3_backends[DEFAULT_ACCOUNT_ID]["global"].get_object(BUCKET, key, version_id=version)
    assert stored is not None
    stored._storage_class = storage_class


@pytest.mark.parametrize("storage_class", ["GLACIER", "DEEP_ARCHIVE"])
def test_a_retry_of_an_archived_version_names_the_restore_and_leaves_the_job(
    platform: Platform, storage_class: str
) -> None:
    # GIVEN a FAILED job whose upload the lifecycle has since archived: S3 refuses to read it
    key, version = fail_for_lack_of_disk(platform, "raw/sales/old.csv")
    archive(key, version, storage_class)
    with pytest.raises(ClientError, match="InvalidObjectState"):
        platform.s3.get_object(Bucket=BUCKET, Key=key, VersionId=version)
    before, waiting = platform.job(key, version), visible(platform, platform.queue_url)
    # WHEN retried
    [result] = retry(platform, job_ids=[before["job_id"]]).jobs
    # THEN it says the version is archived and how to restore it; nothing was re-queued or changed
    assert result.outcome is RetryOutcome.ARCHIVED
    assert f"archived ({storage_class})" in result.message and "InvalidObjectState" in result.message
    assert f"aws s3api restore-object --bucket {BUCKET} --key {key} --version-id {version}" in result.message
    assert "--restore" in result.message
    assert platform.job(key, version) == before and visible(platform, platform.queue_url) == waiting


def test_retry_restore_starts_the_restore_and_a_retry_after_it_processes_the_version(platform: Platform) -> None:
    # GIVEN a FAILED job whose upload is archived
    key, version = fail_for_lack_of_disk(platform, "raw/sales/restore.csv")
    archive(key, version)
    job_id = platform.job(key, version)["job_id"]
    # WHEN retried with --restore
    [result] = retry(platform, job_ids=[job_id], restore=True).jobs
    # THEN the restore was asked of S3 and the job waits for it, untouched
    assert result.outcome is RetryOutcome.ARCHIVED and "restore started" in result.message
    assert "Restore" in platform.s3.head_object(Bucket=BUCKET, Key=key, VersionId=version)
    assert platform.job(key, version)["job_status"] == "FAILED"
    # WHEN retried once the restore is done (moto finishes it at once) THEN it is re-queued and succeeds
    [again] = retry(platform, job_ids=[job_id]).jobs
    assert again.outcome is RetryOutcome.REQUEUED
    assert deliver(platform) == {"batchItemFailures": []}
    assert platform.job(key, version)["job_status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ({"StorageClass": "GLACIER"}, ("GLACIER", False)),
        ({"StorageClass": "DEEP_ARCHIVE", "Restore": 'ongoing-request="true"'}, ("DEEP_ARCHIVE", True)),
        ({"StorageClass": "GLACIER", "Restore": 'ongoing-request="false", expiry-date="Fri, 1 Jan 2027"'}, None),
        ({"StorageClass": "GLACIER_IR"}, None),  # Instant Retrieval reads without a restore
        ({}, None),  # S3 leaves StorageClass out for STANDARD
    ],
)
def test_what_headobject_says_about_an_archived_version(
    head: dict[str, str], expected: tuple[str, bool] | None
) -> None:
    found = archived_version(head, bucket="b", key="raw/k.csv", version_id="v1")
    assert (None if found is None else (found.storage_class, found.restoring)) == expected


@pytest.mark.parametrize("method", [RedriveMethod.COPY, RedriveMethod.MOVE_TASK])
def test_a_redrive_leaves_archived_uploads_in_the_dlq_and_moves_the_others(
    queues: Platform, method: RedriveMethod
) -> None:
    # GIVEN two dead-lettered uploads, one of them archived since
    old_key, old_version = dead_letter(queues, "raw/sales/archived.csv", GOOD_CSV)
    archive(old_key, old_version)
    fresh_key, fresh_version = queues.upload("raw/sales/fresh.csv", GOOD_CSV)
    queues.sqs.send_message(QueueUrl=queues.dlq_url, MessageBody=queues.body_for(fresh_key, fresh_version))
    # WHEN the DLQ is redriven (a move task cannot leave a message behind: moto has none, so MOVE_TASK passing
    # shows the fallback to the copy)
    report = redrive(queues.sqs, queue_url=queues.queue_url, dlq_url=queues.dlq_url, method=method, s3=queues.s3)
    # THEN the fresh one moved, the archived one stayed in the DLQ, reported with its restore command
    assert (report.method, report.moved, report.failed) == (RedriveMethod.COPY, 1, 0)
    [archived] = report.archived
    assert (archived.key, archived.version_id, archived.storage_class) == (old_key, old_version, "GLACIER")
    text = "\n".join(report.lines("us-east-1"))
    assert f"--key {old_key} --version-id {old_version}" in text and "tap redrive --region us-east-1" in text
    assert visible(queues, queues.dlq_url) == 1 and visible(queues, queues.queue_url) == 1
