"""A self-managed Pulumi state backend on AWS: an S3 bucket and a KMS key.

``aigw bootstrap-state aws --bucket NAME --region R`` calls :func:`bootstrap_aws`.
It converges an S3 bucket and a KMS key to a hardened baseline and reports, per
setting, whether it was ``created``, ``fixed`` (it existed with a weaker or
different value) or ``unchanged``:

* the bucket: versioning on (every state checkpoint is recoverable), SSE-KMS
  with the key below and the S3 bucket key on (fewer KMS calls), all four public
  access block flags, ACLs disabled (``BucketOwnerEnforced``), a bucket policy
  denying any request not made over TLS, and a lifecycle rule expiring
  noncurrent versions after a number of days (state history does not grow
  forever) and aborting stale multipart uploads;
* the KMS key: symmetric, automatic rotation on, reachable through an alias
  that the ``awskms://`` secrets provider names.

It never deletes anything and never removes a statement or lifecycle rule it
did not write: existing bucket policy statements and lifecycle rules are kept
and ours are added beside them. Re-running it on a converged backend changes
nothing.

This is deliberately not a Pulumi program: the state backend must exist before
any stack can be created (the chicken-and-egg every self-managed backend has).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

TLS_ONLY_SID = "DenyInsecureTransport"
"""Sid of the bucket policy statement this tool owns."""

LIFECYCLE_RULE_ID = "pulumi-state-noncurrent-versions"
"""Id of the lifecycle rule this tool owns."""

DEFAULT_NONCURRENT_VERSION_DAYS = 90
ABORT_MULTIPART_DAYS = 7
MANAGED_BY_TAG = ("managed-by", "aigw-bootstrap-state")

Action = Literal["created", "fixed", "unchanged"]


class BootstrapError(ValueError):
    """A problem the user must fix; ``str()`` names the input, the value and the fix."""


@dataclass(frozen=True)
class Change:
    """One setting of the backend and what this run did to it."""

    resource: str
    setting: str
    action: Action
    detail: str = ""

    def line(self) -> str:
        """The report line printed by ``aigw bootstrap-state``."""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.action:<9}  {self.resource}  {self.setting}{detail}"


@dataclass
class BootstrapResult:
    """What :func:`bootstrap_aws` did and the commands to run next."""

    bucket: str
    region: str
    kms_key_arn: str
    kms_alias: str
    changes: list[Change] = field(default_factory=list)

    @property
    def unchanged(self) -> bool:
        """True when the backend was already converged and nothing was written."""
        return all(change.action == "unchanged" for change in self.changes)

    @property
    def login_url(self) -> str:
        """The backend URL for ``pulumi login``."""
        return f"s3://{self.bucket}?region={self.region}"

    @property
    def secrets_provider(self) -> str:
        """The ``--secrets-provider`` value for ``pulumi stack init``."""
        return f"awskms://{self.kms_alias}?region={self.region}"

    def next_steps(self, stacks: Sequence[str] = ("dev", "staging", "prod")) -> list[str]:
        """The shell lines to run next (quoted: ``?`` and ``&`` are special to shells)."""
        lines = [f"pulumi login '{self.login_url}'"]
        lines += [
            f"pulumi stack init {stack} --secrets-provider '{self.secrets_provider}'"
            for stack in stacks
        ]
        return lines


# --- pure decisions ----------------------------------------------------------------

_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
_ALIAS = re.compile(r"^alias/[a-zA-Z0-9/_-]{1,250}$")


def validate_bucket_name(name: str) -> str:
    """Return ``name`` if S3 accepts it as a general purpose bucket name, else raise.

    The rules are S3's (3-63 characters; lowercase letters, digits, dots and
    hyphens; starts and ends with a letter or digit; no ``..``; not an IP
    address; no reserved prefix or suffix), checked here so the user gets the
    reason instead of S3's bare ``InvalidBucketName``.
    """
    fix = "use 3-63 lowercase letters, digits and hyphens, e.g. acme-pulumi-state-123456789012"
    problem = None
    if not 3 <= len(name) <= 63:
        problem = f"is {len(name)} characters long"
    elif not _BUCKET_CHARS.match(name):
        problem = (
            "may only contain lowercase letters, digits, '.' and '-', "
            "and must start and end with a letter or digit"
        )
    elif ".." in name:
        problem = "contains two adjacent periods"
    elif _is_ip_address(name):
        problem = "is formatted as an IP address"
    elif name.startswith(_RESERVED_PREFIXES):
        problem = f"starts with a reserved prefix ({', '.join(_RESERVED_PREFIXES)})"
    elif name.endswith(_RESERVED_SUFFIXES):
        problem = f"ends with a reserved suffix ({', '.join(_RESERVED_SUFFIXES)})"
    if problem:
        raise BootstrapError(
            f"--bucket {name!r} is not a valid S3 bucket name: it {problem}; {fix}"
        )
    return name


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def validate_region(region: str) -> str:
    """Return ``region`` if it looks like an AWS region code (``us-east-1``), else raise."""
    if not _REGION.match(region):
        raise BootstrapError(
            f"--region {region!r} is not an AWS region code; use one like us-east-1 or eu-west-1"
        )
    return region


def default_kms_alias(bucket: str) -> str:
    """The KMS alias used when none is given: ``alias/pulumi-<bucket>`` (dots become ``-``)."""
    return "alias/pulumi-" + bucket.replace(".", "-")


def validate_kms_alias(alias: str) -> str:
    """Return ``alias`` if KMS accepts it for a customer key, else raise."""
    if not _ALIAS.match(alias) or alias.startswith("alias/aws/"):
        raise BootstrapError(
            f"--kms-alias {alias!r} is not a valid KMS alias; use 'alias/' followed by letters, "
            "digits, '/', '_' or '-' (not 'alias/aws/...', which AWS reserves), "
            "e.g. alias/pulumi-state"
        )
    return alias


def tls_only_statement(bucket: str) -> dict[str, Any]:
    """The bucket policy statement denying every request not made over TLS."""
    return {
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def merge_policy(existing: dict[str, Any] | None, statement: dict[str, Any]) -> dict[str, Any]:
    """``existing`` with ``statement`` added, or replacing the statement with the same Sid.

    Statements the tool did not write are kept untouched, in their order.
    """
    policy = dict(existing or {"Version": "2012-10-17"})
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = [s for s in statements if s.get("Sid") != statement["Sid"]]
    policy["Statement"] = [*kept, statement]
    return policy


def policy_has_statement(policy: dict[str, Any] | None, statement: dict[str, Any]) -> bool:
    """True when ``policy`` holds ``statement`` exactly (compared as normalised JSON)."""
    if not policy:
        return False
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    return any(_normalise(s) == _normalise(statement) for s in statements)


def _normalise(value: Any) -> Any:
    # IAM accepts a string or a one-element list interchangeably, and S3 may
    # return lists in another order; compare meaning, not spelling.
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_normalise(v) for v in value]
        return items[0] if len(items) == 1 else sorted(items, key=json.dumps)
    return value


def lifecycle_rule(noncurrent_days: int) -> dict[str, Any]:
    """The lifecycle rule expiring noncurrent state versions after ``noncurrent_days``."""
    if not 1 <= noncurrent_days <= 36500:
        raise BootstrapError(
            f"--noncurrent-version-days {noncurrent_days} is out of range; "
            "use a number of days from 1 to 36500 (default 90)"
        )
    return {
        "ID": LIFECYCLE_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_MULTIPART_DAYS},
    }


def lifecycle_rule_matches(existing: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """True when an existing rule has every setting of ``wanted`` (S3 may add others).

    A whole-bucket filter comes back as ``{"Prefix": ""}``, ``{}`` or not at
    all depending on how the rule was written; all three mean the same.
    """
    whole_bucket: tuple[Any, ...] = (None, {}, {"Prefix": ""})
    for key, value in wanted.items():
        actual = existing.get(key)
        if key == "Filter" and value in whole_bucket and actual in whole_bucket:
            continue
        if _normalise(actual) != _normalise(value):
            return False
    return True


def merge_lifecycle(
    rules: Iterable[dict[str, Any]], wanted: dict[str, Any]
) -> list[dict[str, Any]]:
    """``rules`` with ``wanted`` added or replacing the rule with the same ID."""
    return [*(r for r in rules if r.get("ID") != wanted["ID"]), wanted]


def describe_encryption(rule: dict[str, Any] | None) -> str:
    """A short human description of a bucket's default encryption rule."""
    if not rule:
        return "no default encryption"
    default = rule.get("ApplyServerSideEncryptionByDefault", {})
    algorithm = default.get("SSEAlgorithm", "none")
    key = default.get("KMSMasterKeyID")
    bucket_key = "on" if rule.get("BucketKeyEnabled") else "off"
    return f"{algorithm}" + (f" with {key}" if key else "") + f", bucket key {bucket_key}"


def encryption_matches(rule: dict[str, Any] | None, key_ids: set[str]) -> bool:
    """True when ``rule`` is SSE-KMS with one of ``key_ids`` (id, ARN or alias) and bucket key on."""
    if not rule:
        return False
    default = rule.get("ApplyServerSideEncryptionByDefault", {})
    return (
        default.get("SSEAlgorithm") == "aws:kms"
        and default.get("KMSMasterKeyID") in key_ids
        and bool(rule.get("BucketKeyEnabled"))
    )


def suggest_bucket_name(bucket: str, account: str) -> str:
    """A likely-free variant of ``bucket``: the account id appended, within 63 characters."""
    return f"{bucket[: 63 - len(account) - 1].rstrip('.-')}-{account}"


def bucket_region(location_constraint: str | None) -> str:
    """The region of a bucket from ``GetBucketLocation`` (``None`` is us-east-1, ``EU`` eu-west-1)."""
    if not location_constraint:
        return "us-east-1"
    return "eu-west-1" if location_constraint == "EU" else location_constraint


# --- the converging steps ----------------------------------------------------------


def bootstrap_aws(
    bucket: str,
    region: str,
    *,
    kms_alias: str | None = None,
    noncurrent_version_days: int = DEFAULT_NONCURRENT_VERSION_DAYS,
    session: Any = None,
) -> BootstrapResult:
    """Create or converge the S3 state bucket and its KMS key; return what changed.

    ``session`` is a ``boto3.Session`` (default: the standard credential chain
    in ``region``). Raises :class:`BootstrapError` for anything the user must
    fix: an invalid name, a bucket owned by another account or in another
    region, a key pending deletion, missing credentials.
    """
    validate_bucket_name(bucket)
    validate_region(region)
    alias = validate_kms_alias(kms_alias or default_kms_alias(bucket))
    wanted_rule = lifecycle_rule(noncurrent_version_days)

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    session = session or boto3.Session(region_name=region)
    try:
        account = session.client("sts", region_name=region).get_caller_identity()["Account"]
        backend = _AwsBackend(session, region, account)
        key_arn, changes = backend.ensure_kms_key(alias, bucket)
        changes += backend.ensure_bucket(bucket, key_arn, alias, wanted_rule)
    except NoCredentialsError as exc:
        raise BootstrapError(
            "no AWS credentials found: sign in first (`aws sso login --profile NAME` and "
            "AWS_PROFILE=NAME, or `aws configure`), then re-run"
        ) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise BootstrapError(
            f"AWS refused {exc.operation_name} ({error.get('Code')}: {error.get('Message')}); "
            "check that your credentials allow s3:* on the bucket and kms:* on the key"
        ) from exc
    except BotoCoreError as exc:
        raise BootstrapError(f"AWS call failed: {exc}") from exc
    return BootstrapResult(bucket, region, key_arn, alias, changes)


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class _AwsBackend:
    """The S3 and KMS calls, one method per converged thing."""

    def __init__(self, session: Any, region: str, account: str) -> None:
        self.s3 = session.client("s3", region_name=region)
        self.kms = session.client("kms", region_name=region)
        self.region = region
        self.account = account

    # KMS ---------------------------------------------------------------------------

    def ensure_kms_key(self, alias: str, bucket: str) -> tuple[str, list[Change]]:
        from botocore.exceptions import ClientError

        what = f"kms:{alias}"
        try:
            metadata = self.kms.describe_key(KeyId=alias)["KeyMetadata"]
        except ClientError as exc:
            if _error_code(exc) != "NotFoundException":
                raise
            metadata = None
        if metadata is None:
            metadata = self.kms.create_key(
                Description=f"Pulumi secrets provider and state encryption for s3://{bucket}",
                KeyUsage="ENCRYPT_DECRYPT",
                KeySpec="SYMMETRIC_DEFAULT",
                Tags=[{"TagKey": MANAGED_BY_TAG[0], "TagValue": MANAGED_BY_TAG[1]}],
            )["KeyMetadata"]
            self.kms.enable_key_rotation(KeyId=metadata["KeyId"])
            self.kms.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
            return metadata["Arn"], [
                Change(what, "key", "created", f"{metadata['Arn']}, rotation on")
            ]

        changes: list[Change] = [Change(what, "key", "unchanged", metadata["Arn"])]
        if metadata.get("KeyState") != "Enabled":
            raise BootstrapError(
                f"--kms-alias {alias!r} points at key {metadata['KeyId']} in state "
                f"{metadata.get('KeyState')}; re-enable it (`aws kms cancel-key-deletion` then "
                "`aws kms enable-key`) or pass another --kms-alias"
            )
        if metadata.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
            raise BootstrapError(
                f"--kms-alias {alias!r} points at a {metadata.get('KeySpec')} key; the awskms:// "
                "secrets provider and SSE-KMS need a symmetric key: pass another --kms-alias"
            )
        if self.kms.get_key_rotation_status(KeyId=metadata["KeyId"])["KeyRotationEnabled"]:
            changes.append(Change(what, "rotation", "unchanged", "on"))
        else:
            self.kms.enable_key_rotation(KeyId=metadata["KeyId"])
            changes.append(Change(what, "rotation", "fixed", "off -> on"))
        return metadata["Arn"], changes

    # S3 ----------------------------------------------------------------------------

    def ensure_bucket(
        self, bucket: str, key_arn: str, alias: str, wanted_rule: dict[str, Any]
    ) -> list[Change]:
        what = f"s3://{bucket}"
        changes = [self._ensure_exists(bucket, what)]
        changes.append(self._ensure_ownership(bucket, what))
        changes.append(self._ensure_public_access_block(bucket, what))
        changes.append(self._ensure_versioning(bucket, what))
        changes.append(self._ensure_encryption(bucket, what, key_arn, alias))
        changes.append(self._ensure_tls_only(bucket, what))
        changes.append(self._ensure_lifecycle(bucket, what, wanted_rule))
        if changes[0].action == "created":
            # Settings written onto a bucket this run created are part of creating it.
            changes = [
                Change(c.resource, c.setting, "created", c.detail) if c.action == "fixed" else c
                for c in changes
            ]
        return changes

    def _ensure_exists(self, bucket: str, what: str) -> Change:
        from botocore.exceptions import ClientError

        taken = BootstrapError(
            f"--bucket {bucket!r} already exists and belongs to another AWS account (bucket "
            f"names are global), or account {self.account} may not read it; choose another "
            f"name, e.g. {suggest_bucket_name(bucket, self.account)}"
        )
        try:
            self.s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            code = _error_code(exc)
            if code in {"403", "AccessDenied", "Forbidden"}:
                raise taken from exc
            if code not in {"404", "NoSuchBucket", "NotFound"}:
                raise
            return self._create_bucket(bucket, what, taken)
        if not self._owned(bucket):
            raise taken
        location = self.s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
        if (actual := bucket_region(location)) != self.region:
            raise BootstrapError(
                f"--region {self.region!r} does not match bucket {bucket!r}, which is in "
                f"{actual}; re-run with --region {actual}"
            )
        return Change(what, "bucket", "unchanged", f"exists in {self.region}")

    def _owned(self, bucket: str) -> bool:
        # HeadBucket succeeds for a bucket another account shares with us; the
        # state backend must be ours, so check it is in our own bucket list.
        paginator = self.s3.get_paginator("list_buckets")
        return any(
            b["Name"] == bucket for page in paginator.paginate() for b in page.get("Buckets", [])
        )

    def _create_bucket(self, bucket: str, what: str, taken: BootstrapError) -> Change:
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"Bucket": bucket, "ObjectOwnership": "BucketOwnerEnforced"}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.s3.create_bucket(**kwargs)
        except ClientError as exc:
            if _error_code(exc) == "BucketAlreadyExists":
                raise taken from exc
            raise
        self.s3.put_bucket_tagging(
            Bucket=bucket,
            Tagging={"TagSet": [{"Key": MANAGED_BY_TAG[0], "Value": MANAGED_BY_TAG[1]}]},
        )
        return Change(what, "bucket", "created", f"in {self.region}")

    def _ensure_ownership(self, bucket: str, what: str) -> Change:
        from botocore.exceptions import ClientError

        try:
            rules = self.s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"][
                "Rules"
            ]
            actual = rules[0]["ObjectOwnership"] if rules else "none"
        except ClientError as exc:
            if _error_code(exc) != "OwnershipControlsNotFoundError":
                raise
            actual = "none"
        if actual == "BucketOwnerEnforced":
            return Change(what, "object ownership", "unchanged", actual)
        self.s3.put_bucket_ownership_controls(
            Bucket=bucket,
            OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        )
        return Change(what, "object ownership", "fixed", f"{actual} -> BucketOwnerEnforced")

    def _ensure_public_access_block(self, bucket: str, what: str) -> Change:
        from botocore.exceptions import ClientError

        flags = (
            "BlockPublicAcls",
            "IgnorePublicAcls",
            "BlockPublicPolicy",
            "RestrictPublicBuckets",
        )
        try:
            actual = self.s3.get_public_access_block(Bucket=bucket)[
                "PublicAccessBlockConfiguration"
            ]
        except ClientError as exc:
            if _error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
                raise
            actual = {}
        off = [flag for flag in flags if not actual.get(flag)]
        if not off:
            return Change(what, "public access block", "unchanged", "all four on")
        self.s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=dict.fromkeys(flags, True)
        )
        return Change(what, "public access block", "fixed", f"turned on {', '.join(off)}")

    def _ensure_versioning(self, bucket: str, what: str) -> Change:
        actual = self.s3.get_bucket_versioning(Bucket=bucket).get("Status", "Disabled")
        if actual == "Enabled":
            return Change(what, "versioning", "unchanged", "Enabled")
        self.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        return Change(what, "versioning", "fixed", f"{actual} -> Enabled")

    def _ensure_encryption(self, bucket: str, what: str, key_arn: str, alias: str) -> Change:
        from botocore.exceptions import ClientError

        try:
            rules = self.s3.get_bucket_encryption(Bucket=bucket)[
                "ServerSideEncryptionConfiguration"
            ]["Rules"]
            actual = rules[0] if rules else None
        except ClientError as exc:
            if _error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            actual = None
        key_id = key_arn.rsplit("/", 1)[-1]
        alias_arn = f"arn:aws:kms:{self.region}:{self.account}:{alias}"
        if encryption_matches(actual, {key_arn, key_id, alias, alias_arn}):
            return Change(what, "encryption", "unchanged", describe_encryption(actual))
        wanted = {
            "ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": key_arn,
            },
            "BucketKeyEnabled": True,
        }
        self.s3.put_bucket_encryption(
            Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [wanted]}
        )
        return Change(
            what,
            "encryption",
            "fixed",
            f"{describe_encryption(actual)} -> {describe_encryption(wanted)}",
        )

    def _ensure_tls_only(self, bucket: str, what: str) -> Change:
        from botocore.exceptions import ClientError

        try:
            existing = json.loads(self.s3.get_bucket_policy(Bucket=bucket)["Policy"])
        except ClientError as exc:
            if _error_code(exc) != "NoSuchBucketPolicy":
                raise
            existing = None
        statement = tls_only_statement(bucket)
        if policy_has_statement(existing, statement):
            return Change(what, "bucket policy", "unchanged", "TLS-only statement present")
        self.s3.put_bucket_policy(
            Bucket=bucket, Policy=json.dumps(merge_policy(existing, statement))
        )
        kept = len(merge_policy(existing, statement)["Statement"]) - 1
        return Change(
            what,
            "bucket policy",
            "fixed",
            f"added {TLS_ONLY_SID} (deny aws:SecureTransport false); kept {kept} other statement(s)",
        )

    def _ensure_lifecycle(self, bucket: str, what: str, wanted: dict[str, Any]) -> Change:
        from botocore.exceptions import ClientError

        try:
            rules = self.s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        except ClientError as exc:
            if _error_code(exc) != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        ours = next((r for r in rules if r.get("ID") == wanted["ID"]), None)
        days = wanted["NoncurrentVersionExpiration"]["NoncurrentDays"]
        if ours is not None and lifecycle_rule_matches(ours, wanted):
            return Change(
                what, "lifecycle", "unchanged", f"noncurrent versions expire after {days} days"
            )
        self.s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": merge_lifecycle(rules, wanted)}
        )
        before = "rule differed" if ours is not None else "rule missing"
        return Change(
            what, "lifecycle", "fixed", f"{before} -> noncurrent versions expire after {days} days"
        )
