"""``tap query --as-query-role`` / ``--role-arn``: the query runs on a role session, under that role's policy.

The region's query role (its stack's output ``query_role_arn``) may do nothing but query that region, so a query
run as it is bounded by IAM, not only by the guard. On AWS the session comes from STS in the query's region; on
the local platform from its STS, and the local endpoint then holds every S3 and Glue call to the role's policy
as AWS would (what DuckDB reads locally is what the role may read).
"""

from __future__ import annotations

import getpass
import re
from dataclasses import replace

from analytics_platform.analytics.guard import REGION_TOKEN
from analytics_platform.infra.query_access import ROLE_ARN
from analytics_platform.targeting.region_target import RegionTarget, TargetError

#: One hour, the query role's longest session: a session per ``tap query``, not a standing credential.
SESSION_SECONDS = 3600
_SESSION_NAME_CHARS = re.compile(r"[^\w+=,.@-]", re.ASCII)


def chosen_role(target: RegionTarget, *, role_arn: str | None, as_query_role: bool) -> str | None:
    """The role to query as: ``role_arn`` (checked), the region's query role, or None (the caller's own)."""
    if as_query_role:
        if not target.query_role_arn:
            raise TargetError(
                f"the outputs of {target.region} name no query role: the local platform was started before its "
                "stacks had one (restart it: tap local down && tap local up)"
            )
        return target.query_role_arn
    if role_arn is None:
        return None
    match = ROLE_ARN.fullmatch(role_arn)
    if match is None:
        raise TargetError(
            f"--role-arn {role_arn!r} is not the ARN of an IAM role (arn:<partition>:iam::<account>:role/<name>)"
        )
    if target.account_id and match.group(2) != target.account_id:
        raise TargetError(f"--role-arn {role_arn} is of account {match.group(2)}, the region's is {target.account_id}")
    for found in REGION_TOKEN.finditer(match.group(3)):
        named = found.group(1).lower().replace("_", "-")
        if named != target.region:
            raise TargetError(
                f"--role-arn {role_arn} is a role of region {named}: a query in {target.region} runs as "
                f"{target.region}'s role (or drop --role-arn, or use --region {named})"
            )
    return role_arn


def session_name() -> str:
    """``tap-query-<user>``: CloudTrail shows who ran a query as the role."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"tap-query-{_SESSION_NAME_CHARS.sub('-', user)}"[:64]


def assume_role(target: RegionTarget, role_arn: str) -> RegionTarget:
    """``target`` on a session of ``role_arn`` (STS in the target's region, or the local platform's)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        found = target.client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName=session_name(), DurationSeconds=SESSION_SECONDS
        )["Credentials"]
    except (BotoCoreError, ClientError) as error:
        raise TargetError(
            f"cannot assume {role_arn}: {error}. An administrator grants sts:AssumeRole on it (README: Query boundary)"
        ) from error
    credentials = {"aws_access_key_id": found["AccessKeyId"], "aws_secret_access_key": found["SecretAccessKey"],
                   "aws_session_token": found["SessionToken"]}  # fmt: skip
    return replace(target, credentials=credentials)
