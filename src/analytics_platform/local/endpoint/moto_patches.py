"""Adjustments of moto's own behaviour, so the local endpoint answers as AWS does (applied in its process only).

Each is a registered emulator fix (:mod:`.fixes`): what moto does, what AWS does and the test proving it are
declared on the function; the README's table is generated from them. S3's events are in :mod:`.s3_events`.
"""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from analytics_platform.local.endpoint.fixes import emulator_fix, install


@emulator_fix(
    moto="invokes the function in Docker on message arrival; without Docker that fails and uses up one receive",
    aws="the Lambda service polls the queue; a receive is spent only on a delivery",
    test="tests/e2e/test_local_platform.py::test_message_failing_every_attempt_reaches_the_dlq_after_exactly_three",
)
def disable_moto_event_source_invocation() -> None:
    """Stop moto from invoking functions itself when a message arrives.

    moto's SQS backend receives the new message for every enabled event source mapping and tries to run
    the function in Docker; without Docker that fails and silently uses up one receive of the message.
    The local runtime polls the queues instead, so moto's shortcut is switched off here.
    """
    from moto.sqs import models as sqs_models

    class PolledByLocalRuntime(dict[str, Any]):
        """Keeps moto's bookkeeping, but hands moto's send path nothing to invoke."""

        def items(self) -> Any:
            return iter(())

    original_init = sqs_models.Queue.__init__

    def patched_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.lambda_event_source_mappings = PolledByLocalRuntime()

    install(sqs_models.Queue, "__init__", patched_init)


def _is_transport_condition_only(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition") or {}
    return set(condition) == {"Bool"} and set(condition["Bool"]) == {"aws:SecureTransport"}


@emulator_fix(
    moto="ignores policy conditions: the TLS-only Deny denies every request",
    aws="the bucket policy's Deny applies only when aws:SecureTransport is false",
    test="tests/e2e/test_local_platform.py::test_good_file_succeeds_with_readable_parquet_in_its_region",
)
def honour_secure_transport_condition() -> None:
    """Evaluate the bucket's TLS-only statement as AWS does, instead of as an unconditional Deny.

    moto's bucket-policy check ignores ``Condition`` blocks, so the stack's ``DenyInsecureTransport``
    statement (deny when ``aws:SecureTransport`` is false) would deny every request. The local endpoint
    is loopback-only plain HTTP standing in for AWS's TLS front end, so statements conditioned only on
    ``aws:SecureTransport`` are left out of moto's evaluation; every other statement is evaluated as is.
    """
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3 import models as s3_models

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy.decode())
        statements = document.get("Statement", [])
        statements = [statements] if isinstance(statements, dict) else statements
        kept = [s for s in statements if not _is_transport_condition_only(s)]
        if not kept:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**document, "Statement": kept})).is_action_permitted(action, resource)

    install(s3_models.FakeBucket, "get_permission", get_permission)


class _EncodedKey:
    """An S3 key object whose ``name`` is the key as S3 encodes it in event notifications."""

    def __init__(self, key: Any) -> None:
        self._key = key
        self.name = encode_event_key(key.name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._key, attribute)


def encode_event_key(key: str) -> str:
    """Form encoding (space as ``+``, ``+`` as ``%2B``, non-ASCII as UTF-8 escapes), ``/`` kept: AWS's event key.

    Matches what S3 puts into its SQS / SNS / Lambda notifications (moto encodes those with ``quote_plus``) and
    what AWS's Powertools ``S3EventBridgeNotificationObject.key`` undoes with ``unquote_plus``.
    """
    return quote_plus(key, safe="/")


@emulator_fix(
    moto="ignores encoding-type=url; a control character in a key answers 500",
    aws="ListObjectVersions with encoding-type=url returns URL-encoded keys, prefix and markers",
    test="tests/functional/test_local_endpoint.py::test_version_listings_encode_keys_when_asked_so_a_bucket_can_be_emptied",
)
def encode_keys_in_version_listings() -> None:
    """ListObjectVersions with ``encoding-type=url`` returns URL-encoded keys (and prefix, markers), as S3 does.

    moto ignores the parameter. Terraform's force-destroy of a bucket lists versions that way and decodes the
    keys, so with moto a key such as ``a+b.csv`` or ``50%41off.csv`` came back as another key, was never
    deleted, and ``tap local down`` waited forever for the bucket to empty. A key holding a control character
    (which XML cannot carry raw) made moto answer 500 where S3 answers with the key encoded.
    """
    from moto.s3.models import S3Backend
    from moto.s3.responses import S3Response

    original = S3Response.list_object_versions
    listing = S3Backend.list_object_versions
    encoding = threading.local()  # set while one request thread renders an encoded listing

    def backend_list_object_versions(self: Any, bucket_name: str, **kwargs: Any) -> Any:
        if not getattr(encoding, "on", False):
            return listing(self, bucket_name, **kwargs)
        if kwargs.get("prefix"):
            kwargs["prefix"] = unquote_plus(kwargs["prefix"])  # the response handler passes it on encoded
        versions, prefixes, markers, next_key, next_version = listing(self, bucket_name, **kwargs)
        return (
            [_EncodedKey(v) for v in versions], [encode_event_key(p) for p in prefixes or []],
            [_EncodedKey(m) for m in markers], encode_event_key(next_key) if next_key else next_key, next_version,
        )  # fmt: skip

    def list_object_versions(self: Any) -> Any:
        if self.querystring.get("encoding-type", [None])[0] != "url":
            return original(self)
        real_query = self._get_querystring

        def encoded_query(request: Any, uri: Any) -> Any:
            query = dict(real_query(request, uri))
            if query.get("prefix"):
                query["prefix"] = [encode_event_key(query["prefix"][0])]
            return query

        self._get_querystring = encoded_query
        encoding.on = True
        try:
            status, headers, body = original(self)
        finally:
            encoding.on = False
            self.__dict__.pop("_get_querystring", None)
        text = body.decode() if isinstance(body, bytes) else str(body)
        if "<EncodingType>" not in text:
            text = text.replace("</Name>", "</Name><EncodingType>url</EncodingType>", 1)
        return status, headers, text

    install(S3Backend, "list_object_versions", backend_list_object_versions)
    install(S3Response, "list_object_versions", list_object_versions)


@emulator_fix(
    moto="a schedule rule matches every event; a disabled rule still delivers; one failing target stops the others",
    aws="a schedule rule matches no event; a disabled rule delivers nothing",
    test="tests/functional/test_local_endpoint.py::test_a_schedule_rule_does_not_swallow_s3_events_meant_for_other_rules",
)
def schedule_rules_match_no_events() -> None:
    """A rule with a schedule and no event pattern matches no event, as on AWS.

    moto treats its missing pattern as "match everything" and hands every S3 event to its Lambda target, which
    fails (no Docker); that failure aborted moto's delivery loop, so depending on which rule Terraform created
    first, a region's uploads never reached its queue. A DISABLED rule delivers nothing, as on AWS (moto's S3
    notifications went through every rule whatever its state).
    """
    from moto.events.models import Rule

    original = Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        if self.state != "ENABLED" or (self.scheduled_expression and not self.event_pattern._raw_pattern):
            return
        try:
            original(self, original_event, transform_input)
        except Exception:  # one rule's failing target must not stop delivery to the other rules, as on AWS
            return

    install(Rule, "send_to_targets", send_to_targets)


@emulator_fix(
    moto="an ARN without the account finds no workgroup; an untagged workgroup has no tag list",
    aws="tag calls find the workgroup; an untagged workgroup lists no tags",
    test="tests/e2e/test_local_platform.py::test_good_file_succeeds_with_readable_parquet_in_its_region",
)
def athena_tags_by_workgroup_arn() -> None:
    """Athena's tag calls find a workgroup by the ARN Terraform builds, and an untagged workgroup has no tags.

    Terraform builds the workgroup ARN from the account id, which it does not look up against the local endpoint
    (``skip_requesting_account_id``), so the ARN's account field is empty; moto then answered "Does Not Exist",
    also for a workgroup that exists without tags, and the apply failed. AWS lists an existing workgroup's tags.
    """
    from moto.athena.models import AthenaBackend

    original = AthenaBackend.list_tags_for_resource
    tag, untag = AthenaBackend.tag_resource, AthenaBackend.untag_resource

    def full_arn(backend: Any, arn: str) -> str:
        parts = arn.split(":", 5)
        if len(parts) == 6 and not parts[4]:
            parts[4] = backend.account_id
        return ":".join(parts)

    def list_tags_for_resource(self: Any, resource_arn: str) -> Any:
        arn = full_arn(self, resource_arn)
        found = original(self, arn)
        resource = arn.split(":", 5)[-1]
        if found is None and resource.startswith("workgroup/") and resource.split("/", 1)[1] in self.work_groups:
            return {"Tags": []}
        return found

    install(AthenaBackend, "list_tags_for_resource", list_tags_for_resource)

    def tag_resource(self: Any, resource_arn: str, tags: Any) -> Any:
        return tag(self, full_arn(self, resource_arn), tags)

    def untag_resource(self: Any, resource_arn: str, tag_keys: Any) -> Any:
        return untag(self, full_arn(self, resource_arn), tag_keys)

    install(AthenaBackend, "tag_resource", tag_resource)
    install(AthenaBackend, "untag_resource", untag_resource)


@emulator_fix(
    moto="SetQueueAttributes without Policy drops the queue policy",
    aws="SetQueueAttributes changes only the attributes it names",
    test="tests/functional/test_local_endpoint.py::test_changing_one_queue_attribute_keeps_the_queue_policy",
)
def queue_attributes_keep_the_policy() -> None:
    """SetQueueAttributes without ``Policy`` leaves the queue's policy as it is, as SQS does.

    moto set the policy to whatever the request held, so changing only the visibility timeout removed the policy
    that lets EventBridge deliver: uploads stopped arriving and ``tap drift`` saw a deleted policy nobody deleted.
    """
    from moto.sqs.models import Queue

    original = Queue._set_attributes

    def set_attributes(self: Any, attributes: dict[str, Any], now: Any = None) -> None:
        policy = getattr(self, "policy", None)
        if now is None:
            original(self, attributes)
        else:
            original(self, attributes, now)
        if "Policy" not in attributes:
            self.policy = policy

    install(Queue, "_set_attributes", set_attributes)


@emulator_fix(
    moto="deleting a key with a delete marker answers 500 once versioning is suspended",
    aws="the key and its marker are deleted",
    test="tests/functional/test_local_endpoint.py::test_a_key_with_a_delete_marker_can_be_deleted_after_versioning_is_suspended",
)
def delete_markers_can_be_disposed() -> None:
    """A delete marker can be dropped with its key, as every other version can.

    Destroying the stack suspends the bucket's versioning (``aws_s3_bucket_versioning`` goes first); moto then
    deletes a key with all its versions and calls ``dispose()`` on each, which its ``FakeDeleteMarker`` lacks: every
    DeleteObjects of a key with a marker (a superseded output) answered 500, and force-destroy retried for ever.
    A marker holds no data, so there is nothing to release.
    """
    from moto.s3.models import FakeDeleteMarker

    def dispose(self: Any, garbage: bool = False) -> None:
        return None

    install(FakeDeleteMarker, "dispose", dispose)
