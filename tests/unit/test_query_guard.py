"""The query guard: exactly one read statement, over the region's own database, read as both engines read it.

DuckDB's own parser (``duckdb.extract_statements``) is the oracle for the local engine: whatever the guard lets
through, DuckDB must see as one read statement, and every smuggling attempt below is more than one to DuckDB.
"""

from __future__ import annotations

import duckdb
import pytest

from analytics_platform.analytics import commands
from analytics_platform.analytics.guard import QueryRefusedError, ResidencyError, StatementError, check_query
from analytics_platform.exit_codes import ExitCode
from analytics_platform.targeting.region_target import RegionTarget

REGION, BUCKET, DATABASE = "us-east-1", "analytics-bucket-111122223333-us-east-1-dev", "analytics_us_east_1_dev"


def check(sql: str) -> None:
    check_query(sql, region=REGION, bucket=BUCKET, database=DATABASE)


#: Read statements both engines accept (DuckDB parses each).
READS = [
    "SELECT count(*) FROM orders",
    "SELECT 1;",
    "SELECT 1; -- the end\n",
    "SELECT ';' AS semicolon, 'it''s' AS quote FROM orders",
    'SELECT "a;b", "say ""hi""" FROM orders',
    "SELECT 1 /* ; DROP TABLE orders */",
    "  -- the top orders\n  WITH t AS (SELECT 1 AS n) SELECT * FROM t",
    "WITH a AS (SELECT 1), b (n) AS (SELECT 2) SELECT * FROM a, b",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
    "(SELECT 1) UNION (SELECT 2)",
    "VALUES (1, 2), (3, 4)",
    "TABLE orders",
    "EXPLAIN SELECT * FROM orders",
    "EXPLAIN ANALYZE SELECT * FROM orders",
    "SELECT extract(year FROM d), substring(s FROM 2 FOR 3) FROM orders",
    "SELECT * FROM orders o WHERE o.a IS DISTINCT FROM o.b",
    "SELECT o.id, i FROM orders o CROSS JOIN UNNEST(o.items) AS t(i)",
    f"SELECT * FROM {DATABASE}.orders JOIN {DATABASE}.sales USING (id)",
    f'SELECT * FROM "AwsDataCatalog"."{DATABASE}"."orders"',
    "SELECT sum(load), max(update) FROM sensors",  # non-reserved words as column names
    "SHOW TABLES",
    "DESCRIBE orders",
]
#: Athena-only forms (DuckDB does not parse them), also read statements over the region's own tables.
ATHENA_READS = [
    f"SHOW TABLES IN {DATABASE}",
    "SHOW COLUMNS IN orders",
    "SHOW CREATE TABLE orders",
    "SHOW PARTITIONS orders",
    "DESCRIBE FORMATTED orders",
    "EXPLAIN (FORMAT JSON) SELECT 1",
    "EXPLAIN ANALYZE VERBOSE SELECT 1",
    "SELECT * FROM orders FOR TIMESTAMP AS OF current_timestamp",
]


@pytest.mark.parametrize("sql", READS + ATHENA_READS)
def test_one_read_statement_over_the_regions_own_tables_runs(sql: str) -> None:
    check(sql)


@pytest.mark.parametrize("sql", READS)
def test_duckdb_reads_each_accepted_query_as_one_read_statement(sql: str) -> None:
    statements = duckdb.extract_statements(sql)
    assert len(statements) == 1
    assert statements[0].type in (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN)


#: Each is more than one statement, or a write, to DuckDB, while a guard reading it otherwise would see one read.
SMUGGLED = [
    ("SELECT 1; DROP TABLE orders", "more than one statement: a second one starts at line 1, column 11 (DROP"),
    ("SELECT 1;\n\n  SELECT 2", "a second one starts at line 3, column 3"),
    ("SELECT 1 -- a comment ends at a carriage return\r; DROP TABLE orders", "more than one statement"),
    ("SELECT E'\\''; DROP TABLE orders; --'", "the string prefix in E'...' at line 1, column 8"),
    ("SELECT $$'$$; DROP TABLE orders; --'", "a $ outside a string at line 1, column 8"),
    ("SELECT 1 /* /* */ ' */ ; DROP TABLE orders; --'", "a /* comment inside a /* comment at line 1, column 13"),
    ("WITH x AS (SELECT 1) INSERT INTO orders SELECT * FROM x", "INSERT after a WITH clause at line 1, column 22 "
     "changes rows"),
    ("EXPLAIN ANALYZE INSERT INTO orders VALUES (1)", "EXPLAIN ANALYZE of INSERT at line 1, column 17: INSERT "
     "changes rows; only a query (SELECT, WITH, VALUES, TABLE) may be explained (EXPLAIN ANALYZE runs"),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "reason"), SMUGGLED)
def test_a_second_statement_or_a_write_is_refused_however_it_hides(sql: str, reason: str) -> None:
    statements = duckdb.extract_statements(sql)
    assert len(statements) > 1 or statements[0].type != duckdb.StatementType.SELECT  # DuckDB would run a write
    with pytest.raises(StatementError) as refused:
        check(sql)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("EXPLAIN CREATE TABLE x AS SELECT 1", "EXPLAIN of CREATE at line 1, column 9"),
        ("EXPLAIN (TYPE DISTRIBUTED) INSERT INTO orders SELECT 1", "EXPLAIN of INSERT"),
        ("EXPLAIN ANALYZE (FORMAT JSON) DELETE FROM orders", "EXPLAIN ANALYZE of DELETE"),
        ("EXPLAIN (ANALYZE) UPDATE orders SET a = 1", "EXPLAIN ANALYZE of UPDATE"),
        ("EXPLAIN SHOW TABLES", "EXPLAIN of SHOW"),
        ("WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", "DELETE inside a WITH clause at line 1, "
         "column 12 changes rows"),
        ("(INSERT INTO orders VALUES (1))", "INSERT at line 1, column 2 changes rows"),
        ("DROP TABLE orders", "DROP at line 1, column 1 changes the catalog or a table"),
        ("/* a select */ ALTER TABLE orders SET TBLPROPERTIES ('projection.enabled'='false')", "ALTER at line 1"),
        ("UNLOAD (SELECT 1) TO 's3://x/' WITH (format = 'PARQUET')", "UNLOAD at line 1, column 1 writes query "
         "results to S3"),
        ("CALL system.sync_partition_metadata('d', 't', 'FULL')", "CALL at line 1, column 1 runs a procedure"),
        ("SET SESSION query_max_run_time = '1h'", "SET at line 1, column 1 changes the session's settings"),
        ("USE otherdb", "USE at line 1, column 1"),
        ("PREPARE p FROM SELECT 1", "PREPARE at line 1, column 1 prepares or runs SQL"),
        ("EXECUTE p", "EXECUTE at line 1, column 1"),
        ("MSCK REPAIR TABLE orders", "MSCK at line 1"),
        ("COPY orders TO 'x.csv'", "COPY at line 1, column 1 reads or writes files"),
        ("USING EXTERNAL FUNCTION f(x INT) RETURNS INT LAMBDA 'fn' SELECT f(1)", "USING at line 1, column 1 is not "
         "a read statement"),
        ("FROM orders", "FROM at line 1, column 1 is not a read statement"),
        ("(SHOW TABLES)", "SHOW at line 1, column 2 may not stand here (only a query may)"),
        ("SELECT `id` FROM orders", "a backquoted name at line 1, column 8"),
        ("SELECT * FROM orders jo\u0131n x", "(U+0131) outside a string"),  # Java upper-cases it to I: JOIN
        ("SELECT\u00a01", "U+00A0"),
        ("SHOW TABLES 'a\\_b'", "a backslash in 'a\\_b' at line 1, column 13: Athena reads SHOW with Hive's rules"),
        ("SELECT 'open", "unterminated string at line 1, column 8"),
        ("SELECT 1 /* open", "unterminated /* comment"),
        ("  -- nothing\n ; ", "the query is empty"),
    ],
)  # fmt: skip
def test_anything_but_one_read_statement_is_refused_saying_what_and_why(sql: str, reason: str) -> None:
    with pytest.raises(StatementError) as refused:
        check(sql)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT * FROM otherdb.t", "otherdb.t at line 1, column 15 is in database otherdb: a query in us-east-1 "
         f"reads only the tables of its own database {DATABASE} (write t or {DATABASE}.t)"),
        ('SELECT * FROM "awsdatacatalog"."otherdb"."t"', "is in database otherdb"),
        ('SELECT * FROM "lambda:dynamo".db.t', '"lambda:dynamo".db.t at line 1, column 15 is in catalog lambda:dynamo'),
        (f"SELECT * FROM other_catalog.{DATABASE}.orders", "is in catalog other_catalog"),
        ("SELECT * FROM orders o JOIN otherdb.x ON o.id = x.id", "otherdb.x at line 1, column 29"),
        ("SELECT * FROM orders, otherdb.x", "otherdb.x at line 1, column 23"),
        ("SELECT * FROM (otherdb.a JOIN orders ON true)", "otherdb.a at line 1, column 16"),
        ("SELECT * FROM orders WHERE id IN (SELECT id FROM otherdb.u)", "otherdb.u"),
        ("SELECT * FROM orders WHERE id IN (FROM otherdb.u)", "otherdb.u"),
        ("TABLE otherdb.orders", "otherdb.orders at line 1, column 7"),
        ("SELECT * FROM information_schema.columns", "information_schema describes every database of the region's "
         "catalog"),
        ("SELECT * FROM a.b.c.d", "has more parts than catalog.database.table"),
        ("SHOW TABLES IN otherdb", "otherdb at line 1, column 16 is in database otherdb"),
        ("SHOW COLUMNS IN orders IN otherdb", "is in database otherdb"),
        ("SHOW CREATE TABLE otherdb.t", "is in database otherdb"),
        ("DESCRIBE otherdb.t", "otherdb.t at line 1, column 10 is in database otherdb"),
        ("SHOW DATABASES", f"SHOW DATABASES at line 1, column 1 lists databases beyond {DATABASE}"),
        ("SELECT * FROM read_parquet('x.parquet')", "the table function read_parquet(...) at line 1, column 15 "
         "reads outside the catalog"),
        ("SELECT * FROM orders, LATERAL read_csv('/etc/passwd')", "the table function read_csv(...)"),
        ("SELECT * FROM TABLE(system.query(query => 'SELECT 1'))", "the table function TABLE(...)"),
        ("SELECT * FROM 'orders.parquet'", "'orders.parquet' at line 1, column 15 would be read as a file or URL"),
        ("SELECT * FROM analytics_eu_west_1_dev.orders", "the query names region eu-west-1"),
    ],
)  # fmt: skip
def test_only_the_regions_own_database_is_read(sql: str, reason: str) -> None:
    with pytest.raises(ResidencyError) as refused:
        check(sql)
    assert reason in str(refused.value)


def test_an_unsupported_show_is_refused_naming_the_ones_that_run() -> None:
    with pytest.raises(StatementError, match=r"SHOW orders at line 1, column 1 is not one of the SHOW statements"):
        check("SHOW orders")


def test_tap_query_exits_2_and_says_why(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a region (nothing runs: the guard refuses first)
    target = RegionTarget(REGION, BUCKET, "jobs", DATABASE, "wg")
    monkeypatch.setattr(commands, "resolve_target", lambda *args, **kwargs: target)
    # WHEN a second statement follows a read
    code = commands.query_command(
        region=REGION, sql="SELECT 1; DROP TABLE orders", local=False, as_json=False, config_path=None
    )
    # THEN the refusal exits 2 and names what was refused and why
    assert code == ExitCode.USAGE
    assert (
        "error: refused: more than one statement: a second one starts at line 1, column 11" in capsys.readouterr().err
    )


def test_refusals_share_one_base_class() -> None:
    assert issubclass(StatementError, QueryRefusedError) and issubclass(ResidencyError, QueryRefusedError)
