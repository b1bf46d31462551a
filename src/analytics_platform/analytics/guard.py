"""Residency guard: a query for region R may name only R's tables and R's bucket.

Athena can read any S3 location a table points at, and DuckDB any file it is given, so the guard refuses,
before the query runs, SQL that mentions another region in any spelling (``eu-west-1``, ``eu_west_1``: how
the platform's bucket, database and table names carry it) or an S3 location outside the region's own bucket.
It is deliberately conservative: a string literal naming another region (``WHERE src = 'eu-west-1'``) is
refused as well. Only read statements run (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, VALUES, TABLE): DDL, UNLOAD,
INSERT and the like could point a table at any location or change the region's catalog.

The guard reads text; it is not a sandbox. Locally DuckDB is also locked down (:mod:`.local_engine`); on AWS
the hard boundary is IAM: give query users a role limited to the region's bucket, Glue database and workgroup.
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
READ_STATEMENTS = frozenset({"select", "with", "show", "describe", "desc", "explain", "values", "table"})
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_FIRST_WORD = re.compile(r"[\s(]*([A-Za-z]+)")


class ResidencyError(ValueError):
    """The query reaches outside its region."""


def _canonical(region: str) -> str:
    return region.lower().replace("_", "-")


def check_query(sql: str, *, region: str, bucket: str) -> None:
    """Raise :class:`ResidencyError` if ``sql`` names another region or a bucket other than ``bucket``."""
    if not sql.strip():
        raise ResidencyError("the query is empty")
    first = _FIRST_WORD.match(_COMMENTS.sub(" ", sql))
    if first is None or first.group(1).lower() not in READ_STATEMENTS:
        word = first.group(1).upper() if first else sql.strip()[:20]
        raise ResidencyError(
            f"only read statements run through tap query ({', '.join(sorted(READ_STATEMENTS)).upper()}), not {word}"
        )
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
