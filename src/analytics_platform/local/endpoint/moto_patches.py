"""Adjustments of moto's own behaviour, so the local endpoint answers as AWS does (applied in its process only).

* moto's Docker-based Lambda invocation on message arrival is switched off (it would use up a receive);
* a bucket policy statement conditioned only on ``aws:SecureTransport`` is evaluated as AWS does (moto
  ignores conditions, which would make the TLS-only ``Deny`` deny everything on the plain-HTTP loopback);
* S3's EventBridge events carry the object key URL-encoded in form encoding, as AWS sends them (moto puts the
  raw key there, so a worker that decodes keys as it must on AWS would fetch ``a b.csv`` for ``a+b.csv``);
* ListObjectVersions honours ``encoding-type=url`` (Terraform's bucket force-destroy relies on it);
* a schedule rule matches no event (moto sent every S3 event to the dead-letter sweep's function too), and a
  disabled rule delivers nothing (moto delivered S3's events through disabled rules);
* SetQueueAttributes changes only the attributes it names (moto dropped the queue's policy on any other change);
* deleting a key that has a delete marker from a bucket whose versioning is suspended answers as S3 does (moto
  failed with a 500 on the marker, so a bucket with a superseded output could never be force-destroyed).
"""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import quote_plus, unquote_plus


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
    if getattr(original_init, "_tap_patched", False):
        return

    def patched_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.lambda_event_source_mappings = PolledByLocalRuntime()

    patched_init._tap_patched = True  # type: ignore[attr-defined]  # marks the patch so it is applied once
    sqs_models.Queue.__init__ = patched_init  # type: ignore[method-assign]  # the patch itself


def _is_transport_condition_only(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition") or {}
    return set(condition) == {"Bool"} and set(condition["Bool"]) == {"aws:SecureTransport"}


def honour_secure_transport_condition() -> None:
    """Evaluate the bucket's TLS-only statement as AWS does, instead of as an unconditional Deny.

    moto's bucket-policy check ignores ``Condition`` blocks, so the stack's ``DenyInsecureTransport``
    statement (deny when ``aws:SecureTransport`` is false) would deny every request. The local endpoint
    is loopback-only plain HTTP standing in for AWS's TLS front end, so statements conditioned only on
    ``aws:SecureTransport`` are left out of moto's evaluation; every other statement is evaluated as is.
    """
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3 import models as s3_models

    if getattr(s3_models.FakeBucket.get_permission, "_tap_patched", False):
        return

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

    get_permission._tap_patched = True  # type: ignore[attr-defined]  # marks the patch so it is applied once
    s3_models.FakeBucket.get_permission = get_permission  # type: ignore[method-assign]  # the patch itself


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
    if getattr(original, "_tap_patched", False):
        return
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

    backend_list_object_versions._tap_patched = True  # type: ignore[attr-defined]  # applied once
    S3Backend.list_object_versions = backend_list_object_versions  # type: ignore[method-assign,assignment]  # the patch itself
    list_object_versions._tap_patched = True  # type: ignore[attr-defined]  # marks the patch so it is applied once
    S3Response.list_object_versions = list_object_versions  # type: ignore[method-assign]  # the patch itself


def schedule_rules_match_no_events() -> None:
    """A rule with a schedule and no event pattern matches no event, as on AWS.

    moto treats its missing pattern as "match everything" and hands every S3 event to its Lambda target, which
    fails (no Docker); that failure aborted moto's delivery loop, so depending on which rule Terraform created
    first, a region's uploads never reached its queue. A DISABLED rule delivers nothing, as on AWS (moto's S3
    notifications went through every rule whatever its state).
    """
    from moto.events.models import Rule

    original = Rule.send_to_targets
    if getattr(original, "_tap_patched", False):
        return

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        if self.state != "ENABLED" or (self.scheduled_expression and not self.event_pattern._raw_pattern):
            return
        try:
            original(self, original_event, transform_input)
        except Exception:  # one rule's failing target must not stop delivery to the other rules, as on AWS
            return

    send_to_targets._tap_patched = True  # type: ignore[attr-defined]  # marks the patch so it is applied once
    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]  # the patch itself


def athena_tags_by_workgroup_arn() -> None:
    """Athena's tag calls find a workgroup by the ARN Terraform builds, and an untagged workgroup has no tags.

    Terraform builds the workgroup ARN from the account id, which it does not look up against the local endpoint
    (``skip_requesting_account_id``), so the ARN's account field is empty; moto then answered "Does Not Exist",
    also for a workgroup that exists without tags, and the apply failed. AWS lists an existing workgroup's tags.
    """
    from moto.athena.models import AthenaBackend

    original = AthenaBackend.list_tags_for_resource
    if getattr(original, "_tap_patched", False):
        return
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

    list_tags_for_resource._tap_patched = True  # type: ignore[attr-defined]  # marks the patch so it is applied once
    AthenaBackend.list_tags_for_resource = list_tags_for_resource  # type: ignore[method-assign]  # the patch itself

    def tag_resource(self: Any, resource_arn: str, tags: Any) -> Any:
        return tag(self, full_arn(self, resource_arn), tags)

    def untag_resource(self: Any, resource_arn: str, tag_keys: Any) -> Any:
        return untag(self, full_arn(self, resource_arn), tag_keys)

    AthenaBackend.tag_resource = tag_resource  # type: ignore[method-assign]  # the same ARN fix
    AthenaBackend.untag_resource = untag_resource  # type: ignore[method-assign]  # the same ARN fix


def queue_attributes_keep_the_policy() -> None:
    """SetQueueAttributes without ``Policy`` leaves the queue's policy as it is, as SQS does.

    moto set the policy to whatever the request held, so changing only the visibility timeout removed the policy
    that lets EventBridge deliver: uploads stopped arriving and ``tap drift`` saw a deleted policy nobody deleted.
    """
    from moto.sqs.models import Queue

    original = Queue._set_attributes
    if getattr(original, "_tap_patched", False):
        return

    def set_attributes(self: Any, attributes: dict[str, Any], now: Any = None) -> None:
        policy = getattr(self, "policy", None)
        if now is None:
            original(self, attributes)
        else:
            original(self, attributes, now)
        if "Policy" not in attributes:
            self.policy = policy

    set_attributes._tap_patched = True  # type: ignore[attr-defined]  # marks the patch so it is applied once
    Queue._set_attributes = set_attributes  # type: ignore[method-assign]  # the patch itself


def delete_markers_can_be_disposed() -> None:
    """A delete marker can be dropped with its key, as every other version can.

    Destroying the stack suspends the bucket's versioning (``aws_s3_bucket_versioning`` goes first); moto then
    deletes a key with all its versions and calls ``dispose()`` on each, which its ``FakeDeleteMarker`` lacks: every
    DeleteObjects of a key with a marker (a superseded output) answered 500, and force-destroy retried for ever.
    A marker holds no data, so there is nothing to release.
    """
    from moto.s3.models import FakeDeleteMarker

    if hasattr(FakeDeleteMarker, "dispose"):
        return

    def dispose(self: Any, garbage: bool = False) -> None:
        return None

    FakeDeleteMarker.dispose = dispose  # type: ignore[attr-defined]  # the patch itself


def apply_all() -> None:
    """Every adjustment above, and S3's EventBridge events (:mod:`.s3_events`)."""
    from analytics_platform.local.endpoint.s3_events import patch_s3_events

    athena_tags_by_workgroup_arn()
    disable_moto_event_source_invocation()
    honour_secure_transport_condition()
    patch_s3_events()
    encode_keys_in_version_listings()
    schedule_rules_match_no_events()
    queue_attributes_keep_the_policy()
    delete_markers_can_be_disposed()
