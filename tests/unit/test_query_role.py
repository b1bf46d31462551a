"""Each regional stack's query role, read from the synthesized JSON (both encryption modes), and its settings."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from analytics_platform.infra import iam, query_access
from analytics_platform.infra.account import resolve_account
from analytics_platform.infra.checks import check_iam
from analytics_platform.infra.config import ConfigError, load_config
from analytics_platform.infra.names import ResourceNames

from ..conftest import PROTECTED_SETTINGS, UNIT_ACCOUNT

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")
MODES = ("synthesized", "synthesized_kms")
PARTITION = "${data.aws_partition.partition.partition}"
ACCOUNT = "${data.aws_caller_identity.account.account_id}"


@pytest.fixture(params=MODES)
def synth(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(request.getfixturevalue(request.param))


def ref(stack: dict[str, Any], resource_type: str, attribute: str = "arn") -> str:
    (name,) = stack["resource"][resource_type]
    return f"${{{resource_type}.{name}.{attribute}}}"


def query_role(stack: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [(n, r) for n, r in stack["resource"]["aws_iam_role"].items() if "query-role" in r["name"]]
    return found


def query_policy(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    name, _ = query_role(stack)
    (policy,) = [
        p for p in stack["resource"]["aws_iam_role_policy"].values() if p["role"] == f"${{aws_iam_role.{name}.id}}"
    ]
    return {statement["Sid"]: statement for statement in json.loads(policy["policy"])["Statement"]}


@pytest.mark.parametrize("region", REGIONS)
def test_each_region_ships_a_query_role_its_account_may_grant(synthesized: dict[str, Any], region: str) -> None:
    stack = synthesized["stacks"][region]
    name, role = query_role(stack)
    assert role["name"] == f"analytics-query-role-{region}-unit" and role["max_session_duration"] == 3600
    (trust,) = json.loads(role["assume_role_policy"])["Statement"]
    assert trust == {"Sid": "AccountMayGrantAssumeRole", "Effect": "Allow", "Action": "sts:AssumeRole",
                     "Principal": {"AWS": f"arn:{PARTITION}:iam::{ACCOUNT}:root"}}  # fmt: skip
    assert "aws_iam_role_policy_attachment" not in stack["resource"] and "managed_policy_arns" not in role
    assert stack["output"]["query_role_arn"]["value"] == f"${{aws_iam_role.{name}.arn}}"


def test_the_query_role_may_use_only_its_regions_workgroup_catalog_data_and_results(synth: dict[str, Any]) -> None:
    kms = synth["config"].encryption == "kms"
    for region, stack in synth["stacks"].items():
        statements = query_policy(stack)
        bucket, glue = ref(stack, "aws_s3_bucket"), f"arn:{PARTITION}:glue:{region}:{ACCOUNT}"
        database = f"analytics_{region.replace('-', '_')}_unit"
        expected = {
            "RunQueriesInOwnWorkgroup": (query_access.ATHENA_QUERY_ACTIONS, [ref(stack, "aws_athena_workgroup")]),
            "ReadOwnCatalog": (query_access.GLUE_CATALOG_READ_ACTIONS,
                               [f"{glue}:catalog", f"{glue}:database/{database}", f"{glue}:table/{database}/*"]),
            "ReadProcessedObjects": (("s3:GetObject",), [f"{bucket}/processed/*"]),
            "ReadWriteQueryResults": (query_access.S3_QUERY_RESULTS_ACTIONS, [f"{bucket}/athena-results/*"]),
            "ListQueryPrefixes": (("s3:ListBucket",), [bucket]),
            "LocateOwnBucket": (("s3:GetBucketLocation",), [bucket]),
        }  # fmt: skip
        if kms:
            expected["UseRegionKeyThroughS3"] = (("kms:Decrypt", "kms:GenerateDataKey"), [ref(stack, "aws_kms_key")])
        assert {sid: (tuple(s["Action"]), s["Resource"]) for sid, s in statements.items()} == {
            sid: (tuple(sorted(actions)), resources) for sid, (actions, resources) in expected.items()
        }
        # listing shows key names: only the two prefixes a query reads, never raw/ or quarantine/ uploads
        assert statements["ListQueryPrefixes"]["Condition"] == {
            "StringLike": {"s3:prefix": ["processed/*", "athena-results/*"]}
        }
        if kms:  # the key only through S3 in this region (and the key policy admits nothing else)
            assert statements["UseRegionKeyThroughS3"]["Condition"] == {
                "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}
            }
        assert [sid for sid, s in statements.items() if "Condition" in s] == (
            ["ListQueryPrefixes", "UseRegionKeyThroughS3"] if kms else ["ListQueryPrefixes"]
        )


def test_the_query_role_has_no_wildcard_but_the_allow_listed_table_names(synth: dict[str, Any]) -> None:
    for region, stack in synth["stacks"].items():
        statements = query_policy(stack)
        actions = [a for s in statements.values() for a in s["Action"]]
        assert not [a for a in actions if "*" in a]
        starred = {sid: [r for r in s["Resource"] if "*" in r] for sid, s in statements.items()}
        # "table/<database>/*" (tables appear per dataset at run time: allow-listed with its reason), and the two
        # key prefixes of the bucket's layout; never Resource "*", never another region or account
        assert {sid: [r.rsplit(":", 1)[-1] if sid == "ReadOwnCatalog" else r.split("}", 1)[-1] for r in found]
                for sid, found in starred.items() if found} == {
            "ReadOwnCatalog": [f"table/analytics_{region.replace('-', '_')}_unit/*"],
            "ReadProcessedObjects": ["/processed/*"],
            "ReadWriteQueryResults": ["/athena-results/*"],
        }  # fmt: skip
        assert "ReadOwnCatalog" in iam.WILDCARD_ALLOW_LIST
        writes = [a for a in actions if re.match(r"(s3:(Put|Delete)|glue:(Create|Update|Delete|Batch(Create|Del)))", a)]
        assert writes == ["s3:PutObject"]  # only into the results prefix (above)
        assert check_iam(region, stack) == []


def test_no_query_role_names_another_region(synth: dict[str, Any]) -> None:
    for region, stack in synth["stacks"].items():
        _, role = query_role(stack)
        text = json.dumps([role, query_policy(stack)])
        assert region in text  # the Glue ARNs name it
        for other in set(REGIONS) - {region}:
            assert other not in text and other.replace("-", "_") not in text


def test_configured_principals_are_trusted_in_the_stacks_own_partition_and_account(
    synthesized_kms: dict[str, Any],
) -> None:
    assert synthesized_kms["config"].query_principals == tuple(PROTECTED_SETTINGS["query_principals"])
    for stack in synthesized_kms["stacks"].values():
        _, role = query_role(stack)
        account, named = json.loads(role["assume_role_policy"])["Statement"]
        assert account["Principal"] == {"AWS": f"arn:{PARTITION}:iam::{ACCOUNT}:root"}
        base = f"arn:{PARTITION}:iam::{ACCOUNT}"
        assert named == {"Sid": "QueryPrincipals", "Effect": "Allow", "Action": "sts:AssumeRole",
                         "Principal": {"AWS": [f"{base}:role/analysts", f"{base}:user/auditors/ana"]}}  # fmt: skip


def principals_config(principals: Any, **overrides: Any) -> Any:
    return load_config(None, environ={}, **{"account_id": UNIT_ACCOUNT, "query_principals": principals, **overrides})


@pytest.mark.parametrize(
    ("principals", "overrides", "field", "message"),
    [
        (["arn:aws:iam::111122223333:role/a"], {"account_id": None}, "query_principals", "needs account_id"),
        ("arn:aws:iam::111122223333:role/a", {}, "query_principals", "must be a list of IAM role or user ARNs"),
        (["analysts"], {}, "query_principals[0]", "'analysts' is not the ARN of an IAM role or user"),
        ([{"role": "analysts"}], {}, "query_principals[0]", "is not the ARN of an IAM role or user"),
        (["arn:aws:iam::111122223333:group/analysts"], {}, "query_principals[0]", "is not the ARN"),
        (["arn:aws:sts::111122223333:assumed-role/a/s"], {}, "query_principals[0]", "is not the ARN"),
        (["arn:aws:iam::444455556666:role/a"], {}, "query_principals[0]", "is of account 444455556666, not the "
         "environment's 111122223333"),
        (["arn:aws-cn:iam::111122223333:role/a"], {}, "query_principals[0]", "is in partition aws-cn; the regions "
         "are in aws"),
        (["arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Analyst_0123"], {},
         "query_principals[0]", "names region eu-west-1: every region's stack would carry it"),
        (["arn:aws:iam::111122223333:role/a", "arn:aws:iam::111122223333:role/a"], {}, "query_principals",
         "lists a principal twice"),
    ],
)  # fmt: skip
def test_query_principals_are_checked_before_synth_naming_the_field(
    principals: Any, overrides: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        principals_config(principals, **overrides)
    assert refused.value.field == field and message in str(refused.value)


def test_query_principals_default_to_none_and_stay_off_the_local_endpoint() -> None:
    assert load_config(None, environ={}).query_principals == ()
    config = principals_config(["arn:aws:iam::111122223333:role/analysts"])
    assert config.query_principals == ("arn:aws:iam::111122223333:role/analysts",)
    # the local endpoint is an account of its own: the environment's principals do not exist there
    local = resolve_account(principals_config(config.query_principals, local_endpoint="http://127.0.0.1:4566"))
    assert local.query_principals == () and local.account_id == "123456789012"


def test_the_query_role_name_fits_iam_and_follows_the_convention() -> None:
    names = ResourceNames.build("ap-southeast-1", "staging", UNIT_ACCOUNT)
    assert names.query_role == "analytics-query-role-ap-southeast-1-staging" and len(names.query_role) <= 64
