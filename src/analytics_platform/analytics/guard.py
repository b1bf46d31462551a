"""Residency guard: a query for region R may name only R's tables and R's bucket.

Athena can read any S3 location a table points at, and DuckDB any file it is given, so the guard refuses,
before the query runs, SQL that mentions another region in any spelling (``eu-west-1``, ``eu_west_1``: how
the platform's bucket, database and table names carry it) or an S3 location outside the region's own bucket.
It is deliberately conservative: a string literal naming another region (``WHERE src = 'eu-west-1'``) is
refused as well.
"""

from __future__ import annotations

import re

#: An AWS region in any of its spellings: ``us-east-1``, ``us_east_1``, ``US-GOV-WEST-1``, ``eu-central-2``.
REGION_TOKEN = re.compile(
    r"(?<![a-z0-9])([a-z]{2}(?:[-_](?:gov|iso[a-z]?))?[-_]"
    r"(?:north|south|east|west|central|northeast|northwest|southeast|southwest)[-_]\d{1,2})(?![0-9])",
    re.IGNORECASE,
)
#: ``s3://bucket/...`` and the Hadoop spellings ``s3a://`` / ``s3n://``.
S3_LOCATION = re.compile(r"\bs3[an]?://([^/\s'\"`]*)", re.IGNORECASE)


class ResidencyError(ValueError):
    """The query reaches outside its region."""


def _canonical(region: str) -> str:
    return region.lower().replace("_", "-")


def check_query(sql: str, *, region: str, bucket: str) -> None:
    """Raise :class:`ResidencyError` if ``sql`` names another region or a bucket other than ``bucket``."""
    if not sql.strip():
        raise ResidencyError("the query is empty")
    for match in REGION_TOKEN.finditer(sql):
        named = _canonical(match.group(1))
        if named != region:
            raise ResidencyError(
                f"the query names region {named} ({match.group(1)!r}); a query in {region} reads only {region}'s "
                f"tables and bucket. Run it with --region {named} instead."
            )
    for match in S3_LOCATION.finditer(sql):
        if match.group(1).lower() != bucket:
            raise ResidencyError(
                f"the query names S3 location {match.group(0)!r}; a query in {region} may read only its own bucket "
                f"{bucket}"
            )
