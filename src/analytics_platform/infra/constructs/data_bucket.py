"""The regional data bucket: versioned, encrypted (SSE-S3, or SSE-KMS with the region's key), private, TLS-only,
EventBridge notifications on."""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionTransition,
    S3BucketLifecycleConfigurationRuleTransition,
)
from cdktf_cdktf_provider_aws.s3_bucket_notification import S3BucketNotification
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from constructs import Construct

from analytics_platform.etl.settings import QUARANTINE_PREFIX, RAW_PREFIX
from analytics_platform.infra.iam import deny_insecure_transport_policy

#: Key prefixes that move to Glacier: the uploads and the rejects. ``processed/`` stays in S3 Standard, so
#: the Parquet stays queryable however old it is.
ARCHIVED_PREFIXES = (RAW_PREFIX, QUARANTINE_PREFIX)


def _archive_rule(
    prefix: str, glacier_transition_days: int, noncurrent_days: int
) -> S3BucketLifecycleConfigurationRule:
    """``prefix``'s current versions move to Glacier and stay (its retention is the archive: no current version
    ever expires); a replaced or deleted version expires after ``noncurrent_days``, archived first only if it
    lives long enough to be (S3 refuses a noncurrent expiration not later than the noncurrent transition)."""
    archive_noncurrent = noncurrent_days > glacier_transition_days
    return S3BucketLifecycleConfigurationRule(
        id=f"archive-{prefix.rstrip('/')}",
        status="Enabled",
        filter=[S3BucketLifecycleConfigurationRuleFilter(prefix=prefix)],
        transition=[
            S3BucketLifecycleConfigurationRuleTransition(days=glacier_transition_days, storage_class="GLACIER")
        ],
        noncurrent_version_transition=[
            S3BucketLifecycleConfigurationRuleNoncurrentVersionTransition(
                noncurrent_days=glacier_transition_days, storage_class="GLACIER"
            )
        ]
        if archive_noncurrent
        else None,
        noncurrent_version_expiration=[
            S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(noncurrent_days=noncurrent_days)
        ],
    )


def lifecycle_rules(
    *, glacier_transition_days: int, noncurrent_days: int, expiring_prefixes: dict[str, int]
) -> list[S3BucketLifecycleConfigurationRule]:
    """The bucket's lifecycle: archive raw/ and quarantine/, expire noncurrent versions and the expiring
    prefixes, remove expired delete markers, abort stale multipart uploads."""
    whole_bucket = [S3BucketLifecycleConfigurationRuleFilter(prefix="")]
    return [
        *(_archive_rule(prefix, glacier_transition_days, noncurrent_days) for prefix in ARCHIVED_PREFIXES),
        *(
            S3BucketLifecycleConfigurationRule(
                id=f"expire-{prefix.rstrip('/')}",
                status="Enabled",
                filter=[S3BucketLifecycleConfigurationRuleFilter(prefix=prefix)],
                expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=days)],
                noncurrent_version_expiration=[
                    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(noncurrent_days=days)
                ],
            )
            for prefix, days in expiring_prefixes.items()
        ),
        # Old versions everywhere else (processed/'s retired Parquet above all) go after noncurrent_days; a
        # delete marker left with no version behind it is removed. S3 refuses ExpiredObjectDeleteMarker next to
        # Days or Date in one Expiration, so this rule expires no current object at all.
        S3BucketLifecycleConfigurationRule(
            id="expire-noncurrent-versions",
            status="Enabled",
            filter=whole_bucket,
            expiration=[S3BucketLifecycleConfigurationRuleExpiration(expired_object_delete_marker=True)],
            noncurrent_version_expiration=[
                S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(noncurrent_days=noncurrent_days)
            ],
        ),
        S3BucketLifecycleConfigurationRule(
            id="abort-incomplete-uploads",
            status="Enabled",
            filter=whole_bucket,
            abort_incomplete_multipart_upload=[
                S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=7)
            ],
        ),
    ]


class DataBucket(Construct):
    """S3 bucket for raw uploads (``raw/``), Parquet output (``processed/``) and rejects (``quarantine/``).

    Exposes ``bucket`` and ``notification`` (EventBridge delivery switched on).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, bucket_name: str, glacier_transition_days: int,
        noncurrent_version_expiration_days: int = 90, expiring_prefixes: dict[str, int] | None = None,
        force_destroy: bool = True, kms_key_arn: str | None = None,
    ) -> None:  # fmt: skip
        """``noncurrent_version_expiration_days``: days a replaced or deleted version is kept (by default 90);
        ``expiring_prefixes``: key prefix -> days after which its objects (and old versions) expire;
        ``force_destroy``: a destroy empties the bucket first (by default on; off with ``deletion_protection``, so
        a destroy fails on a bucket holding data); ``kms_key_arn``: SSE-KMS with this key and an S3 Bucket Key (by
        default SSE-S3)."""
        super().__init__(scope, construct_id)
        # force_destroy: the spec requires every resource to be destroyable for test environments; production
        # turns it off (deletion_protection), and Terraform then leaves it out of the bucket's settings.
        self.bucket = S3Bucket(self, "bucket", bucket=bucket_name, force_destroy=True if force_destroy else None)
        S3BucketVersioningA(
            self,
            "versioning",
            bucket=self.bucket.id,
            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
        )
        self._encryption(kms_key_arn)
        public_access = self._private()
        S3BucketLifecycleConfiguration(
            self,
            "lifecycle",
            bucket=self.bucket.id,
            rule=lifecycle_rules(
                glacier_transition_days=glacier_transition_days,
                noncurrent_days=noncurrent_version_expiration_days,
                expiring_prefixes=expiring_prefixes or {},
            ),
        )
        S3BucketPolicy(
            self,
            "tls-only",
            bucket=self.bucket.id,
            policy=json.dumps(deny_insecure_transport_policy(self.bucket.arn)),
            depends_on=[public_access],
        )
        self.notification = S3BucketNotification(self, "eventbridge", bucket=self.bucket.id, eventbridge=True)

    def _encryption(self, kms_key_arn: str | None) -> None:
        """Default encryption: SSE-KMS with ``kms_key_arn`` and a bucket key, else SSE-S3."""
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=self.bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=(
                        S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                            sse_algorithm="aws:kms" if kms_key_arn else "AES256", kms_master_key_id=kms_key_arn
                        )
                    ),
                    # A bucket key cuts the KMS requests (and their cost) of every object read and write.
                    bucket_key_enabled=True if kms_key_arn else None,
                )
            ],
        )

    def _private(self) -> S3BucketPublicAccessBlock:
        """Public access blocked every way, ACLs off (the bucket owner owns every object); returns the block."""
        public_access = S3BucketPublicAccessBlock(
            self,
            "public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        S3BucketOwnershipControls(
            self,
            "ownership",
            bucket=self.bucket.id,
            rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"),
        )
        return public_access
