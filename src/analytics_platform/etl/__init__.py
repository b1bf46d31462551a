"""The ETL worker deployed into every region.

* :mod:`.handler` - the thin Lambda entry point (Powertools batch processing, logger, metrics),
* :mod:`.worker` - one upload end to end: claim the job, download, transform, upload, record,
* :mod:`.transform` - CSV / JSON to Parquet with DuckDB, bounded memory, rejects to quarantine,
* :mod:`.jobs` - idempotent job records in DynamoDB (their states, key and index names in :mod:`.job_values`, an
  operator's retry of a job in :mod:`.job_transitions`),
* :mod:`.events` - the EventBridge ``Object Created`` message shape,
* :mod:`.settings` and :mod:`.exceptions`.

Nothing here imports :mod:`analytics_platform.infra`.
"""
