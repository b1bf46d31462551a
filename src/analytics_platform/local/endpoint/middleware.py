"""A WSGI layer in front of moto that makes requests from a role session behave as on AWS.

moto checks no identity policy by default, and its optional check covers actions only. For requests signed with
credentials from ``sts:AssumeRole`` (the local Lambda runtime runs the worker on its function's role), this layer:

* evaluates the role's policies (inline and attached) for the request's action AND resource, as IAM does
  (an explicit Deny wins; else an Allow must match both; conditions as described in :mod:`.policy`). A denied
  call gets the service's own AccessDenied answer (S3: 403 XML; DynamoDB: 400 ``AccessDeniedException`` JSON;
  SQS: 403 ``AccessDenied`` in the JSON protocol botocore uses) naming role, action and resource, and a line in
  ``denied.jsonl``; a call it cannot map is denied too, loudly; ``sts:GetCallerIdentity`` is always allowed;
* answers 403 AccessDenied instead of 404 for a missing object or version when the role lacks
  ``s3:ListBucket`` on the bucket, as S3 does;
* with a fault rate, answers that share of the role's S3, DynamoDB and SQS requests with a transient error
  (throttling, 500, 503) or a slow reply, logged in ``faults.jsonl``; ``TAP_FAULT_SEED`` fixes the sequence.

Requests with any other credentials (Terraform, the local poller, tests: access key ``test``) pass untouched, except
for the account-level answers of :mod:`.account_answers` (every caller gets those, as on AWS).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from analytics_platform.local.endpoint.account_answers import AccountAnswers
from analytics_platform.local.endpoint.policy import is_allowed
from analytics_platform.local.endpoint.requests import ACCOUNT_ID, ALWAYS_ALLOWED, AwsRequest, describe_request

StartResponse = Callable[..., Any]
Response = tuple[str, list[tuple[str, str]], bytes]
FAULTED_SERVICES = frozenset({"s3", "dynamodb", "sqs"})
SLOW_REPLY_SECONDS = 2.0
FAULT_SEED_VARIABLE = "TAP_FAULT_SEED"


def role_of(access_key: str | None) -> str | None:
    """The role ARN behind an AssumeRole access key, or None for any other caller."""
    if not access_key or access_key == "test":
        return None
    from moto.sts.models import sts_backends

    assumed = sts_backends[ACCOUNT_ID]["global"].get_assumed_role_from_access_key(access_key)
    return str(assumed.role_arn) if assumed is not None else None


def role_documents(role_arn: str) -> list[str]:
    """The role's identity policy documents: inline ones and the default version of attached ones."""
    from moto.iam.models import iam_backends

    role = iam_backends[ACCOUNT_ID]["global"].get_role_by_arn(role_arn)
    documents = [str(document) for document in role.policies.values()]
    for policy in role.managed_policies.values():
        default = next((v for v in policy.versions if v.is_default), None)
        if default is not None:
            documents.append(str(default.document))
    return documents


def _cbor_text_map(entries: dict[str, str]) -> bytes:
    """A CBOR map of text strings (RFC 8949 major types 5 and 3): enough for an RPC v2 CBOR error body."""

    def head(major: int, length: int) -> bytes:
        if length < 24:
            return bytes([major << 5 | length])
        size = 1 if length < 0x100 else 2 if length < 0x10000 else 4
        return bytes([major << 5 | {1: 24, 2: 25, 4: 26}[size]]) + length.to_bytes(size, "big")

    out = head(5, len(entries))
    for text in (t for pair in entries.items() for t in pair):
        data = text.encode()
        out += head(3, len(data)) + data
    return out


def error_response(request: AwsRequest, status: int, code: str, message: str) -> Response:
    """An error in the protocol the request came in: XML (S3, query), JSON (``X-Amz-Target``) or RPC v2 CBOR."""
    reasons = {400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error", 503: "Service Unavailable"}
    namespace = {"dynamodb": "dynamodb.v20120810", "monitoring": "cloudwatch"}.get(request.service, request.service)
    error = {"__type": f"com.amazonaws.{namespace}#{code}", "message": message}
    # Services moved from the query protocol tell the client the query-era error code in this header.
    headers = [("x-amzn-query-error", f"{code};Sender")] if request.service in {"sqs", "monitoring"} else []
    if request.wire == "cbor":
        body = _cbor_text_map(error)
        headers += [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
    elif request.wire == "json":
        body = json.dumps(error).encode()
        headers += [("Content-Type", "application/x-amz-json-1.0")]
    else:
        fields = f"<Code>{code}</Code><Message>{escape(message)}</Message>"
        if request.service == "s3":  # REST XML
            document = f"<Error>{fields}<RequestId>local</RequestId></Error>"
        else:  # the query protocol wraps the error and names its type
            document = (
                f"<ErrorResponse><Error><Type>Sender</Type>{fields}</Error><RequestId>local</RequestId></ErrorResponse>"
            )
        body = f"<?xml version='1.0' encoding='UTF-8'?>{document}".encode()
        headers += [("Content-Type", "application/xml")]
    return f"{status} {reasons.get(status, 'Error')}", [*headers, ("Content-Length", str(len(body)))], body


#: How a service answers a call IAM denies, where it is not S3's / SQS's / CloudWatch's 403 ``AccessDenied``.
ACCESS_DENIED = {
    "dynamodb": (400, "AccessDeniedException"), "events": (400, "AccessDeniedException"),
    "glue": (400, "AccessDeniedException"),
}  # fmt: skip
#: Transient faults per service: (status, error code), one chosen at random; None is a slow reply.
FAULTS: dict[str, list[tuple[int, str] | None]] = {
    "s3": [(503, "SlowDown"), (500, "InternalError"), (503, "ServiceUnavailable"), None],
    "dynamodb": [
        (400, "ThrottlingException"),
        (400, "ProvisionedThroughputExceededException"),
        (500, "InternalServerError"),
        (503, "ServiceUnavailable"),
        None,
    ],
    "sqs": [(400, "RequestThrottled"), (500, "InternalError"), (503, "ServiceUnavailable"), None],
}


class AwsSemantics:
    """The WSGI middleware (see the module docstring); ``log_dir`` receives ``denied.jsonl`` / ``faults.jsonl``."""

    def __init__(
        self, app: Callable[..., Any], *, log_dir: Path, fault_rate: float = 0.0,
        slow_reply_seconds: float = SLOW_REPLY_SECONDS,
    ) -> None:  # fmt: skip
        self._app = app
        self._log_dir = log_dir
        self.fault_rate = fault_rate
        self.slow_reply_seconds = slow_reply_seconds
        seed = os.environ.get(FAULT_SEED_VARIABLE)
        self._random = random.Random(int(seed) if seed else None)
        self._lock = threading.Lock()
        # the runtime folder (log_dir) holds the constrained mode's file too
        self.account = AccountAnswers(log_dir, error_response)

    def _log(self, name: str, entry: dict[str, Any]) -> None:
        with self._lock, (self._log_dir / name).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({**entry, "at": time.time()}) + "\n")

    def _respond(self, start_response: StartResponse, response: Response) -> list[bytes]:
        status, headers, body = response
        start_response(status, headers)
        return [body]

    @staticmethod
    def _allowed(documents: list[str], request: AwsRequest, action: str, resource: str) -> bool:
        # The S3 listing keys (s3:prefix, ...) belong to the listing request only, not to the 403-or-404 check.
        context = request.context if action != "s3:ListBucket" or not request.list_bucket_arn else {
            k: v for k, v in request.context.items() if not k.startswith("s3:")}  # fmt: skip
        return action in ALWAYS_ALLOWED or is_allowed(documents, action, resource, context)

    def _fault(self, request: AwsRequest) -> tuple[bool, tuple[int, str] | None]:
        """Whether to inject a fault, and which: (status, code), or None for a slow reply."""
        if not self.fault_rate or request.service not in FAULTED_SERVICES:
            return False, None
        with self._lock:
            if self._random.random() >= self.fault_rate:
                return False, None
            return True, self._random.choice(FAULTS[request.service])

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = describe_request(environ)
        answered = self.account.answer(environ, request)
        if answered is not None:
            return self._respond(start_response, answered)
        role = role_of(request.access_key)
        if role is None:
            return self._app(environ, start_response)
        inject, fault = self._fault(request)
        if inject:
            self._log("faults.jsonl", {"role": role, "service": request.service, "fault": fault or "slow reply",
                                       "pairs": request.pairs})  # fmt: skip
            if fault is None:
                time.sleep(self.slow_reply_seconds)
            else:
                status, code = fault
                return self._respond(start_response, error_response(request, status, code, "injected fault"))
        documents = role_documents(role)
        request.context.update({"aws:principalarn": role, "aws:principalaccount": ACCOUNT_ID,
                                "aws:principaltype": "AssumedRole"})  # fmt: skip
        unmapped = (f"{request.service or 'unknown'}:<unmapped {environ.get('REQUEST_METHOD')} request>",
                    str(environ.get("PATH_INFO")))  # fmt: skip
        denied = (
            [p for p in request.pairs if not self._allowed(documents, request, *p)] if request.pairs else [unmapped]
        )
        if denied:
            action, resource = denied[0]
            message = f"User: {role} is not authorized to perform: {action} on resource: {resource}"
            self._log("denied.jsonl", {"role": role, "service": request.service, "action": action,
                                       "resource": resource})  # fmt: skip
            status, code = ACCESS_DENIED.get(request.service, (403, "AccessDenied"))
            return self._respond(start_response, error_response(request, status, code, message))
        if request.list_bucket_arn and not self._allowed(documents, request, "s3:ListBucket", request.list_bucket_arn):
            return self._missing_is_forbidden(environ, start_response, request, role)
        return self._app(environ, start_response)

    def _missing_is_forbidden(
        self, environ: dict[str, Any], start_response: StartResponse, request: AwsRequest, role: str
    ) -> Iterable[bytes]:
        """S3 without ``s3:ListBucket``: a missing key or version is 403, so the caller cannot tell it is gone."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured.update(status=status, headers=headers)
            return lambda _data: None

        body = self._app(environ, capture)
        if not str(captured.get("status", "")).startswith("404"):
            start_response(captured["status"], captured["headers"])
            return body
        if hasattr(body, "close"):
            body.close()
        return self._respond(start_response, error_response(request, 403, "AccessDenied", f"{role}: Access Denied"))
