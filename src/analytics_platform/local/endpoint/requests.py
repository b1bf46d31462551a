"""What an AWS request asks for: the caller's access key, the service, and the IAM (action, resource) pairs.

Covers the services the worker calls (S3 in path style, DynamoDB, SQS in its JSON and query protocols, STS),
CloudWatch ``PutMetricData`` and EventBridge; anything else maps to no pairs, which the endpoint denies for a
role session, loudly. Also derives the request's condition keys (see ``policy.KNOWN_KEYS``).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from analytics_platform.etl.arns import partition_of, s3_bucket_arn
from analytics_platform.local.clients import LOCAL_ACCOUNT_ID

ACCOUNT_ID = LOCAL_ACCOUNT_ID
CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
#: Actions any identity may call (AWS does not check IAM for them).
ALWAYS_ALLOWED = frozenset({"sts:GetCallerIdentity"})


@dataclass
class AwsRequest:
    """One request as IAM sees it."""

    access_key: str | None
    region: str
    service: str
    pairs: list[tuple[str, str]] = field(default_factory=list)
    #: For S3 object reads: the bucket ARN whose ``s3:ListBucket`` decides between 404 and 403.
    list_bucket_arn: str | None = None
    #: Condition keys of the request, lower case (the principal's keys are added by the caller).
    context: dict[str, str] = field(default_factory=dict)
    #: The protocol the request came in, and the one an error answer must use: "xml", "json" or "cbor".
    wire: str = "xml"


def read_body(environ: dict[str, Any]) -> bytes:
    """The request body, left readable for the application."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def credential_scope(environ: dict[str, Any]) -> tuple[str | None, str, str]:
    """(access key, region, service) from the SigV4 Authorization header or a presigned URL."""
    text = environ.get("HTTP_AUTHORIZATION", "") or unquote(environ.get("QUERY_STRING", ""))
    match = CREDENTIAL.search(text)
    if not match:
        return None, "", ""
    return match.group(1), match.group(2), match.group(3)


def _raw_path_and_query(environ: dict[str, Any]) -> tuple[str, dict[str, list[str]]]:
    uri = environ.get("REQUEST_URI") or environ.get("RAW_URI") or environ.get("PATH_INFO", "")
    parts = urlsplit(uri)
    return parts.path, parse_qs(parts.query or environ.get("QUERY_STRING", ""), keep_blank_values=True)


def s3_context(environ: dict[str, Any]) -> dict[str, str]:
    """S3's condition keys of a request: listing parameters and the version asked for."""
    _, query = _raw_path_and_query(environ)
    names = {"prefix": "s3:prefix", "delimiter": "s3:delimiter", "max-keys": "s3:max-keys", "versionId": "s3:versionid"}
    return {key: query[name][0] for name, key in names.items() if name in query}


def s3_pairs(environ: dict[str, Any], region: str) -> tuple[list[tuple[str, str]], str | None]:
    """IAM pairs of a path-style S3 request, and the bucket ARN for the 403-or-404 rule of object reads."""
    raw_path, query = _raw_path_and_query(environ)
    bucket, _, raw_key = raw_path.lstrip("/").partition("/")
    method = environ.get("REQUEST_METHOD", "GET")
    if not bucket:
        return [("s3:ListAllMyBuckets", "*")], None
    bucket_arn = s3_bucket_arn(bucket, region)
    if not raw_key:
        if method in {"GET", "HEAD"}:
            action = "s3:ListBucketVersions" if "versions" in query else "s3:ListBucket"
            if "location" in query:
                action = "s3:GetBucketLocation"
            return [(action, bucket_arn)], None
        return [(f"s3:{method.title()}Bucket", bucket_arn)], None
    object_arn = f"{bucket_arn}/{unquote(raw_key)}"
    versioned = "versionId" in query
    if method in {"GET", "HEAD"}:
        return [("s3:GetObjectVersion" if versioned else "s3:GetObject", object_arn)], bucket_arn
    if method in {"PUT", "POST"}:
        pairs = [("s3:PutObject", object_arn)]  # single and multipart uploads alike
        source = str(environ.get("HTTP_X_AMZ_COPY_SOURCE", ""))
        if source:  # CopyObject (or UploadPartCopy) also reads its source: s3:GetObject(Version) on it, as S3 checks
            path, _, source_query = unquote(source).lstrip("/").partition("?versionId=")
            source_bucket, _, source_key = path.partition("/")
            action = "s3:GetObjectVersion" if source_query else "s3:GetObject"
            pairs.append((action, f"{s3_bucket_arn(source_bucket, region)}/{source_key}"))
        return pairs, None
    if method == "DELETE":
        if "uploadId" in query:
            return [("s3:AbortMultipartUpload", object_arn)], None
        return [("s3:DeleteObjectVersion" if versioned else "s3:DeleteObject", object_arn)], None
    return [], None


def dynamodb_pairs(environ: dict[str, Any], region: str) -> list[tuple[str, str]]:
    """IAM pairs of a DynamoDB request: its operation on each table (and index) it names."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    operation = target.rsplit(".", 1)[-1]
    body = json.loads(read_body(environ) or b"{}")
    table_arn = f"arn:{partition_of(region)}:dynamodb:{region}:{ACCOUNT_ID}:table/"
    if operation == "TransactWriteItems":  # IAM checks each item's own action (there is no TransactWriteItems action)
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        return [
            (f"dynamodb:{kinds.get(kind, kind)}", table_arn + str(part.get("TableName", "")))
            for item in body.get("TransactItems") or []
            for kind, part in item.items()
            if isinstance(part, dict)
        ]
    tables = list((body.get("RequestItems") or {}).keys())
    if body.get("TableName"):
        tables.append(body["TableName"])
    for item in body.get("TransactItems") or []:
        tables += [part["TableName"] for part in item.values() if isinstance(part, dict) and "TableName" in part]
    resources = [table_arn + name for name in tables] or ["*"]
    if body.get("IndexName") and body.get("TableName"):
        resources = [f"{table_arn}{body['TableName']}/index/{body['IndexName']}"]
    return [(f"dynamodb:{operation}", resource) for resource in resources]


def _queue_arn(queue_url: str, region: str) -> str:
    parts = urlsplit(queue_url).path.strip("/").split("/")
    account, name = (parts[-2], parts[-1]) if len(parts) >= 2 else (ACCOUNT_ID, parts[-1])
    return f"arn:{partition_of(region)}:sqs:{region}:{account}:{name}"


def sqs_pairs(environ: dict[str, Any], region: str) -> list[tuple[str, str]]:
    """IAM pairs of an SQS request (JSON protocol, or the query protocol of older clients)."""
    body = read_body(environ)
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        action, params = target.rsplit(".", 1)[-1], json.loads(body or b"{}")
        queue_url = str(params.get("QueueUrl", ""))
    else:
        form = parse_qs(body.decode("utf-8", "replace"))
        action, queue_url = form.get("Action", [""])[0], form.get("QueueUrl", [""])[0]
    action = action.removesuffix("Batch")  # SendMessageBatch needs sqs:SendMessage, and so on
    if action == "GetQueueUrl":
        name = json.loads(body or b"{}").get("QueueName", "") if target else ""
        return [("sqs:GetQueueUrl", f"arn:{partition_of(region)}:sqs:{region}:{ACCOUNT_ID}:{name}")]
    return [(f"sqs:{action}", _queue_arn(queue_url, region) if queue_url else "*")]


def _operation(environ: dict[str, Any], body: bytes) -> str:
    """The operation of an RPC request: CBOR path, JSON ``X-Amz-Target``, or the query protocol's ``Action``."""
    path = environ.get("PATH_INFO", "")
    if "/operation/" in path:
        return path.rsplit("/", 1)[-1]
    if environ.get("HTTP_X_AMZ_TARGET"):
        return str(environ["HTTP_X_AMZ_TARGET"]).rsplit(".", 1)[-1]
    return parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]


def events_pairs(environ: dict[str, Any], region: str) -> list[tuple[str, str]]:
    """IAM pairs of an EventBridge request: ``PutEvents`` on each bus, rule operations on the rule."""
    body = read_body(environ)
    operation, params = _operation(environ, body), json.loads(body or b"{}")
    prefix = f"arn:{partition_of(region)}:events:{region}:{ACCOUNT_ID}"
    if operation == "PutEvents":
        buses = {str(entry.get("EventBusName") or "default") for entry in params.get("Entries", [])} or {"default"}
        return [("events:PutEvents", bus if bus.startswith("arn:") else f"{prefix}:event-bus/{bus}") for bus in buses]
    rule = params.get("Rule") or params.get("Name")
    return [(f"events:{operation}", f"{prefix}:rule/{rule}" if rule else "*")]


def events_context(environ: dict[str, Any]) -> dict[str, str]:
    """``events:source`` of a PutEvents request whose entries share one source (entries of several sources get a
    value no policy names, so a condition on the source denies them, as IAM would for one of them)."""
    body = read_body(environ)
    if _operation(environ, body) != "PutEvents":
        return {}
    sources = {str(entry.get("Source", "")) for entry in json.loads(body or b"{}").get("Entries", [])}
    return {"events:source": sources.pop() if len(sources) == 1 else "\u0000several sources"}


def glue_pairs(environ: dict[str, Any], region: str) -> list[tuple[str, str]]:
    """IAM pairs of a Glue table request: the catalog, the database and the table, as Glue checks all three."""
    body = read_body(environ)
    operation, params = _operation(environ, body), json.loads(body or b"{}")
    prefix = f"arn:{partition_of(region)}:glue:{region}:{ACCOUNT_ID}"
    pairs = [(f"glue:{operation}", f"{prefix}:catalog")]
    database = (
        params.get("DatabaseName") or params.get("Name") if "Database" in operation else params.get("DatabaseName")
    )
    if database:
        pairs.append((f"glue:{operation}", f"{prefix}:database/{database}"))
        table = params.get("Name") or (params.get("TableInput") or {}).get("Name")
        if table and "Table" in operation:
            pairs.append((f"glue:{operation}", f"{prefix}:table/{database}/{table}"))
    return pairs


def describe_request(environ: dict[str, Any]) -> AwsRequest:
    """The caller, the IAM pairs and the condition keys of one request."""
    access_key, region, service = credential_scope(environ)
    request = AwsRequest(access_key, region, service, context={"aws:requestedregion": region})
    # The loopback endpoint stands in for AWS's TLS front end (as the bucket policy patch assumes too).
    request.context["aws:securetransport"] = "true"
    content_type = str(environ.get("CONTENT_TYPE", ""))
    request.wire = "cbor" if "cbor" in content_type else "json" if "amz-json" in content_type else "xml"
    if service == "s3":
        request.pairs, request.list_bucket_arn = s3_pairs(environ, region)
        request.context.update(s3_context(environ))
    elif service == "dynamodb":
        request.pairs = dynamodb_pairs(environ, region)
    elif service == "sqs":
        request.pairs = sqs_pairs(environ, region)
    elif service == "sts":
        form = parse_qs(read_body(environ).decode("utf-8", "replace"))
        request.pairs = [(f"sts:{form.get('Action', [''])[0]}", "*")]
    elif service == "monitoring":
        operation = _operation(environ, read_body(environ))
        # PutMetricData supports no resource-level permissions: AWS checks it on "*".
        request.pairs = [(f"cloudwatch:{operation}", "*")] if operation == "PutMetricData" else []
    elif service == "events":
        request.pairs = events_pairs(environ, region)
        request.context.update(events_context(environ))
    elif service == "glue":
        request.pairs = glue_pairs(environ, region)
    return request
