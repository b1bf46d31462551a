"""``tap query`` and ``tap datasets``: what one region's data says, read in that region only."""

from __future__ import annotations

import argparse

from analytics_platform.cli.options import Command, Subparsers, add_command, json_option, target_options


def _cmd_query(args: argparse.Namespace) -> int:
    from analytics_platform.analytics.commands import query_command

    return query_command(
        region=args.region, sql=args.sql, local=args.local, as_json=args.json, config_path=args.config, env=args.env,
        role_arn=args.role_arn, as_query_role=args.as_query_role,
    )  # fmt: skip


def _cmd_datasets(args: argparse.Namespace) -> int:
    from analytics_platform.analytics.commands import datasets_command

    return datasets_command(
        region=args.region, local=args.local, as_json=args.json, config_path=args.config, env=args.env
    )


QUERY = Command(
    "query", _cmd_query,
    "Run SQL over one region's datasets: its Athena workgroup on AWS, DuckDB over its Parquet with --local.",
    examples=('tap query --region eu-west-1 "SELECT count(*) FROM orders"',
              'tap query --region eu-west-1 --local --json "SELECT * FROM clicks LIMIT 5"',
              'tap query --region eu-west-1 --as-query-role "SELECT sum(amount) FROM orders"'),
    details="One read statement over the region's own database; a query naming another region's data is refused "
    "(exit 2) before it runs.",
)  # fmt: skip
DATASETS = Command(
    "datasets", _cmd_datasets, "List one region's datasets: columns, types, files, rows, last update.",
    examples=("tap datasets --region eu-west-1", "tap datasets --region ap-southeast-1 --local --json"),
)  # fmt: skip


def register(sub: Subparsers) -> None:
    query = add_command(sub, QUERY)
    query.add_argument("sql", help='the query; table names are dataset names, e.g. "SELECT count(*) FROM orders"')
    role = query.add_mutually_exclusive_group()
    role.add_argument(
        "--as-query-role", action="store_true",
        help="run as the region's query role (README: Query boundary): its stack's output query_role_arn",
    )  # fmt: skip
    role.add_argument("--role-arn", metavar="ARN", help="run as this IAM role of the environment's account")
    json_option(query, "the rows (a list of objects)")
    target_options(query, regions="one")
    datasets = add_command(sub, DATASETS)
    json_option(datasets, "the datasets")
    target_options(datasets, regions="one")
