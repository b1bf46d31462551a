"""In-region analytics: the Glue database the worker's dataset tables live in, and the Athena workgroup.

The worker creates one table per dataset (partition projection on ``ingest_date``: no crawler, no partition
maintenance). The workgroup enforces its settings: results under a prefix of the region's own bucket,
encrypted, a per-query bytes-scanned limit; the bucket's lifecycle expires the results.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.athena_workgroup import (
    AthenaWorkgroup,
    AthenaWorkgroupConfiguration,
    AthenaWorkgroupConfigurationEngineVersion,
    AthenaWorkgroupConfigurationResultConfiguration,
    AthenaWorkgroupConfigurationResultConfigurationEncryptionConfiguration,
)
from cdktf_cdktf_provider_aws.glue_catalog_database import (
    GlueCatalogDatabase,
    GlueCatalogDatabaseCreateTableDefaultPermission,
    GlueCatalogDatabaseCreateTableDefaultPermissionPrincipal,
)
from constructs import Construct

from analytics_platform.etl.settings import ATHENA_RESULTS_PREFIX

BYTES_PER_MB = 1024 * 1024
ENGINE_VERSION = "Athena engine version 3"
#: Lake Formation's pseudo-principal for "use only IAM access control" (the only principal AWS accepts in a
#: database's default table permissions, with ALL).
IAM_ALLOWED_PRINCIPALS = "IAM_ALLOWED_PRINCIPALS"


class Analytics(Construct):
    """Glue database + Athena workgroup of one region."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        database_name: str,
        workgroup_name: str,
        bucket_name: str,
        bytes_scanned_cutoff_mb: int,
        kms_key_arn: str | None = None,
        force_destroy: bool = True,
    ) -> None:
        """``kms_key_arn``: query results SSE-KMS with this key, like the rest of the bucket (by default SSE-S3);
        ``force_destroy``: a destroy also deletes the workgroup's saved queries (by default; off with deletion
        protection, where a workgroup holding saved queries refuses to go)."""
        super().__init__(scope, construct_id)
        self.database = GlueCatalogDatabase(
            self,
            "database",
            name=database_name,
            description="Processed datasets of this region (one table per dataset, created by the ETL worker)",
            # The tables the worker creates stay under IAM access control even in an account whose Lake Formation
            # defaults are not IAM-only (there a new table would otherwise get no permission, and the worker's
            # UpdateTable and Athena's reads would fail). README: Lake Formation.
            create_table_default_permission=[
                GlueCatalogDatabaseCreateTableDefaultPermission(
                    permissions=["ALL"],
                    principal=GlueCatalogDatabaseCreateTableDefaultPermissionPrincipal(
                        data_lake_principal_identifier=IAM_ALLOWED_PRINCIPALS
                    ),
                )
            ],
        )
        self.workgroup = AthenaWorkgroup(
            self,
            "workgroup",
            name=workgroup_name,
            description="Queries over this region's processed datasets; results stay in the region's bucket",
            force_destroy=force_destroy,
            configuration=AthenaWorkgroupConfiguration(
                enforce_workgroup_configuration=True,
                publish_cloudwatch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=bytes_scanned_cutoff_mb * BYTES_PER_MB,
                engine_version=AthenaWorkgroupConfigurationEngineVersion(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=AthenaWorkgroupConfigurationResultConfiguration(
                    output_location=f"s3://{bucket_name}/{ATHENA_RESULTS_PREFIX}",
                    encryption_configuration=AthenaWorkgroupConfigurationResultConfigurationEncryptionConfiguration(
                        encryption_option="SSE_KMS" if kms_key_arn else "SSE_S3", kms_key_arn=kms_key_arn
                    ),
                ),
            ),
        )
