"""Query guard: one read statement over region R's own database, naming nothing of another region.

Before a query runs, it is read into tokens (:mod:`.sql_tokens`: strings, quoted names and comments as both
engines read them) and refused unless

* it is exactly one statement (a trailing ``;`` is fine), and a read: SELECT, WITH, VALUES, TABLE, SHOW,
  DESCRIBE, or EXPLAIN of a query, with nothing else wherever a statement may start (:mod:`.statement`);
* every table it reads is one of the region's database: unqualified, ``<database>.t`` or
  ``awsdatacatalog.<database>.t``; no other database (``information_schema`` included: it describes every
  database of the catalog), no other catalog (federated ``"lambda:..."`` ones included), no table function
  (``read_parquet(...)``, ``TABLE(...)``; ``UNNEST`` is an expression, not a source) and no file
  (``FROM 'x.parquet'``) (:mod:`.references`);
* it names no other region in any spelling (``eu-west-1``, ``eu_west_1``: how the platform's bucket, database
  and table names carry it) and no S3 location outside the region's bucket. This check reads the raw text and is
  deliberately blunt: a string literal naming another region (``WHERE src = 'eu-west-1'``) is refused as well.

The guard reads text; it is a convenience that explains a refusal, not a sandbox. Locally DuckDB is also locked
down (:mod:`.local_engine`); on AWS the hard boundary is IAM: the region's query role (README: Query boundary).
"""

from __future__ import annotations

import re

from analytics_platform.analytics.references import DATABASE, FILE, FUNCTION, LISTING, Reference, statement_references
from analytics_platform.analytics.refusals import QueryRefusedError, ResidencyError, StatementError, location
from analytics_platform.analytics.sql_tokens import tokenize
from analytics_platform.analytics.statement import check_read_statement, single_statement

__all__ = ["QueryRefusedError", "ResidencyError", "StatementError", "check_query"]

#: An AWS region in any of its spellings: ``us-east-1``, ``us_east_1``, ``US-GOV-WEST-1``, ``eu-central-2``.
REGION_TOKEN = re.compile(
    r"(?<![a-z0-9])([a-z]{2}(?:[-_](?:gov|iso[a-z]?))?[-_]"
    r"(?:north|south|east|west|central|northeast|northwest|southeast|southwest)[-_]\d{1,2})(?![0-9])",
    re.IGNORECASE,
)
#: ``s3://bucket/...`` and the Hadoop spellings ``s3a://`` / ``s3n://``.
S3_LOCATION = re.compile(r"\bs3[an]?://([^/\s'\"`]*)", re.IGNORECASE)
#: The Glue Data Catalog as Athena names it (``AwsDataCatalog``; names compare in lower case).
DATA_CATALOG = "awsdatacatalog"
#: Table functions that read no source: they expand a value of the query itself.
EXPRESSION_FUNCTIONS = frozenset({"unnest"})
INFORMATION_SCHEMA = "information_schema"


def _canonical(region: str) -> str:
    return region.lower().replace("_", "-")


def check_query(sql: str, *, region: str, bucket: str, database: str) -> None:
    """Raise :class:`StatementError` unless ``sql`` is one read statement, and :class:`ResidencyError` if it
    reads anything but ``database``'s tables, names another region or a bucket other than ``bucket``."""
    if not sql.strip():
        raise StatementError("the query is empty")
    statement = single_statement(sql, tokenize(sql))
    check_read_statement(sql, statement)
    check_residency(sql, region=region, bucket=bucket)
    for reference in statement_references(sql, statement):
        check_reference(sql, reference, region=region, database=database.lower())


def check_residency(sql: str, *, region: str, bucket: str) -> None:
    """Refuse another region's name in any spelling, and an S3 location outside ``bucket``, anywhere in ``sql``."""
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


def check_reference(sql: str, reference: Reference, *, region: str, database: str) -> None:
    """Refuse a reference outside ``database`` of the Glue Data Catalog, a table function and a file."""
    where = location(sql, reference.start)
    own = f"a query in {region} reads only the tables of its own database {database}"
    if reference.kind == FILE:
        raise ResidencyError(f"{reference.text} at {where} would be read as a file or URL: {own}")
    if reference.kind == LISTING:
        raise ResidencyError(
            f"{reference.text} at {where} lists databases beyond {database}: {own} (SHOW TABLES lists them)"
        )
    if reference.kind == FUNCTION:
        if reference.parts in {(name,) for name in EXPRESSION_FUNCTIONS}:
            return
        raise ResidencyError(
            f"the table function {reference.text}(...) at {where} reads outside the catalog (files, URLs, other "
            f"sources): {own}"
        )
    names = reference.parts + (("",) if reference.kind == DATABASE else ())  # a database reads as database.""
    if len(names) > 3:
        raise ResidencyError(f"{reference.text} at {where} has more parts than catalog.database.table: {own}")
    if len(names) == 3 and names[0] != DATA_CATALOG:
        raise ResidencyError(
            f"{reference.text} at {where} is in catalog {names[0]}: {own}, in the AwsDataCatalog catalog (no "
            "federated or other catalog)"
        )
    if len(names) >= 2 and names[-2] != database:
        why = (
            f"{INFORMATION_SCHEMA} describes every database of the region's catalog; SHOW TABLES, SHOW COLUMNS IN "
            "<table> and DESCRIBE <table> describe the region's own tables"
            if names[-2] == INFORMATION_SCHEMA
            else f"write {names[-1]} or {database}.{names[-1]}"
            if names[-1]
            else f"leave the database out, or write {database}"
        )
        raise ResidencyError(f"{reference.text} at {where} is in database {names[-2]}: {own} ({why})")
