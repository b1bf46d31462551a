"""The local endpoint as an AWS account: the account-level answers moto lacks, and an optional constrained mode.

moto answers like a new account for most account-level reads ``tap preflight`` makes (``DescribeRegions`` with each
region's opt-in status, the VPC quotas of Service Quotas, Lake Formation's IAM-only defaults, ``HeadBucket`` 200 /
404). Where it does not, this layer answers as AWS does, for every caller:

* Lambda ``GetAccountSettings`` (moto: 404 "Not yet implemented"): a new account's limits, ``ConcurrentExecutions``
  1,000 and ``UnreservedConcurrentExecutions`` what the region's functions leave unreserved;
* Lambda ``PutFunctionConcurrency`` is refused when it would leave fewer than 100 executions unreserved (moto checks
  that only when ``MOTO_LAMBDA_CONCURRENCY_QUOTA`` is set in its process);
* S3 requests with ``x-amz-expected-bucket-owner`` naming another account answer 403 (moto ignores the header).

The constrained mode makes the endpoint play an account with less room, so each refusal of ``tap preflight`` (and
of a deploy without it) can be shown locally. It is read from ``constraints.json`` in the endpoint's runtime folder
(``tap local constrain`` writes it; re-read whenever it changes, so it switches without a restart):
``{"concurrent_executions": 10, "foreign_buckets": ["name", ...]}``. A foreign bucket answers as a bucket of another
account does: 403 to every request, 409 ``BucketAlreadyExists`` to CreateBucket.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from analytics_platform.local.endpoint.requests import ACCOUNT_ID, AwsRequest, read_body

Response = tuple[str, list[tuple[str, str]], bytes]
ErrorResponse = Callable[[AwsRequest, int, str, str], Response]

CONSTRAINTS_FILE = "constraints.json"
#: Lambda's default concurrent executions quota per region (AWS may start a new account lower; see the README).
DEFAULT_CONCURRENT_EXECUTIONS = 1000
#: What Lambda always keeps unreserved for functions without a reservation.
UNRESERVED_MINIMUM = 100
#: A new account's code storage and package limits, as GetAccountSettings reports them.
CODE_LIMITS = {"TotalCodeSize": 80_530_636_800, "CodeSizeUnzipped": 262_144_000, "CodeSizeZipped": 52_428_800}

_ACCOUNT_SETTINGS = re.compile(r"^/\d{4}-\d{2}-\d{2}/account-settings/?$")
_CONCURRENCY = re.compile(r"^/\d{4}-\d{2}-\d{2}/functions/(?P<function>[^/]+)/concurrency/?$")


@dataclass(frozen=True)
class AccountConstraints:
    """How constrained the local account is; the defaults are a new account's."""

    concurrent_executions: int = DEFAULT_CONCURRENT_EXECUTIONS
    foreign_buckets: frozenset[str] = field(default_factory=frozenset)

    def to_json(self) -> str:
        """The ``constraints.json`` document."""
        document = {
            "concurrent_executions": self.concurrent_executions,
            "foreign_buckets": sorted(self.foreign_buckets),
        }
        return json.dumps(document, indent=2)

    @classmethod
    def from_json(cls, text: str) -> AccountConstraints:
        """Parse a ``constraints.json`` document (missing keys keep their defaults)."""
        document = json.loads(text)
        limit = int(document.get("concurrent_executions", DEFAULT_CONCURRENT_EXECUTIONS))
        return cls(limit, frozenset(str(name) for name in document.get("foreign_buckets", [])))


def write_constraints(runtime_dir: Path, constraints: AccountConstraints) -> Path:
    """Put ``constraints`` in force for the endpoint serving ``runtime_dir`` (atomically: it reads on each request)."""
    path = runtime_dir / CONSTRAINTS_FILE
    partial = path.with_suffix(".tmp")
    partial.write_text(constraints.to_json())
    os.replace(partial, path)
    return path


def _reserved(region: str, leave_out: str | None = None) -> tuple[int, int, int]:
    """(reserved concurrency, function count, code size) of the functions moto holds in ``region``."""
    from moto.awslambda.models import lambda_backends

    functions = list(lambda_backends[ACCOUNT_ID][region].list_functions())
    reserved = sum(int(f.reserved_concurrency or 0) for f in functions if f.function_name != leave_out)
    return reserved, len(functions), sum(int(getattr(f, "code_size", 0) or 0) for f in functions)


def _json_response(status: str, document: dict[str, Any], headers: list[tuple[str, str]] | None = None) -> Response:
    """Lambda's REST-JSON answer (an error names its code in ``x-amzn-ErrorType``)."""
    body = json.dumps(document).encode()
    return status, [*(headers or []), ("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body


class AccountAnswers:
    """Answers account-level requests (see the module docstring); :meth:`answer` returns None for any other."""

    def __init__(self, runtime_dir: Path | None, error_response: ErrorResponse) -> None:
        self._path = runtime_dir / CONSTRAINTS_FILE if runtime_dir else None
        self._error = error_response
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._constraints = AccountConstraints()

    def constraints(self) -> AccountConstraints:
        """The constraints in force now (the file is parsed again only when it changed)."""
        try:
            stat = self._path.stat() if self._path else None
        except FileNotFoundError:
            stat = None
        key = (stat.st_mtime_ns, stat.st_size) if stat else None
        with self._lock:
            if key != self._seen:
                text = self._path.read_text() if key and self._path else None
                self._constraints = AccountConstraints.from_json(text) if text else AccountConstraints()
                self._seen = key
            return self._constraints

    def answer(self, environ: dict[str, Any], request: AwsRequest) -> Response | None:
        """This layer's answer to the request, or None to pass it on."""
        if request.service == "lambda":
            return self._lambda(environ, request)
        if request.service == "s3":
            return self._s3(environ, request)
        return None

    def _lambda(self, environ: dict[str, Any], request: AwsRequest) -> Response | None:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        limit = self.constraints().concurrent_executions
        if method == "GET" and _ACCOUNT_SETTINGS.match(path):
            reserved, count, code_size = _reserved(request.region)
            document = {
                "AccountLimit": {**CODE_LIMITS, "ConcurrentExecutions": limit,
                                 "UnreservedConcurrentExecutions": limit - reserved},
                "AccountUsage": {"FunctionCount": count, "TotalCodeSize": code_size},
            }  # fmt: skip
            return _json_response("200 OK", document)
        match = _CONCURRENCY.match(path)
        if method != "PUT" or not match:
            return None
        function = unquote(match.group("function")).split(":")
        name = function[6] if len(function) > 6 else function[-1]  # a function ARN or a plain name
        wanted = int(json.loads(read_body(environ) or b"{}").get("ReservedConcurrentExecutions", 0))
        if limit - _reserved(request.region, leave_out=name)[0] - wanted >= UNRESERVED_MINIMUM:
            return None
        message = (
            "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
            f"below its minimum value of [{UNRESERVED_MINIMUM}]."
        )
        return _json_response("400 Bad Request", {"Type": "User", "message": message},
                              [("x-amzn-ErrorType", "InvalidParameterValueException")])  # fmt: skip

    def _s3(self, environ: dict[str, Any], request: AwsRequest) -> Response | None:
        raw_path = environ.get("REQUEST_URI") or environ.get("RAW_URI") or environ.get("PATH_INFO", "")
        bucket, _, key = raw_path.split("?", 1)[0].lstrip("/").partition("/")
        if not bucket:
            return None
        method = environ.get("REQUEST_METHOD", "GET")
        expected = environ.get("HTTP_X_AMZ_EXPECTED_BUCKET_OWNER")
        if bucket in self.constraints().foreign_buckets:
            if method == "PUT" and not key and not environ.get("QUERY_STRING"):
                message = "The requested bucket name is not available. Select a different name and try again."
                return self._error(request, 409, "BucketAlreadyExists", message)
            return self._forbidden(request, method)
        if expected and expected != ACCOUNT_ID:
            return self._forbidden(request, method)
        return None

    def _forbidden(self, request: AwsRequest, method: str) -> Response:
        status, headers, body = self._error(request, 403, "AccessDenied", "Access Denied")
        if method == "HEAD":  # a HEAD answer has no body; S3 tells the status alone
            headers = [(k, "0" if k == "Content-Length" else v) for k, v in headers]
            return status, headers, b""
        return status, headers, body
