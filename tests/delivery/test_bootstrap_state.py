"""``aigw bootstrap-state aws``: the S3 state bucket and KMS key, under moto's ``mock_aws``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.bootstrap.state import (
    LIFECYCLE_RULE_ID,
    TLS_ONLY_SID,
    BootstrapError,
    bootstrap_aws,
    default_kms_alias,
    lifecycle_rule,
    lifecycle_rule_matches,
    merge_policy,
    policy_has_statement,
    suggest_bucket_name,
    tls_only_statement,
    validate_bucket_name,
    validate_kms_alias,
    validate_region,
)
from infra.cli import EXIT_ERROR, EXIT_OK, main

BUCKET = "acme-pulumi-state"
REGION = "eu-west-1"
ALIAS = default_kms_alias(BUCKET)
WRITE_PREFIXES = ("Create", "Put", "Enable", "Delete", "Update", "Schedule", "Disable")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    """A moto-backed AWS account; the session it yields records every API call made."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def _recording(session: boto3.Session) -> tuple[boto3.Session, list[str]]:
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    session.events.register("before-call", record)
    return session, calls


def _writes(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith(WRITE_PREFIXES)]


def _assert_baseline(session: boto3.Session, key_arn: str) -> None:
    """The bucket and key as the baseline wants them, read back from the (mocked) API."""
    s3 = session.client("s3")
    kms = session.client("kms")
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key_arn,
    }
    assert rule["BucketKeyEnabled"] is True
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    ownership = s3.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    tls = next(s for s in policy["Statement"] if s.get("Sid") == TLS_ONLY_SID)
    assert tls["Effect"] == "Deny"
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(tls["Resource"]) == {f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"}
    rules = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    ours = next(r for r in rules if r["ID"] == LIFECYCLE_RULE_ID)
    assert ours["Status"] == "Enabled"
    assert ours["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90
    key = kms.describe_key(KeyId=ALIAS)["KeyMetadata"]
    assert key["Arn"] == key_arn
    assert key["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True


# --- against the mocked account ------------------------------------------------------


def test_first_run_creates_a_hardened_bucket_and_key(aws: boto3.Session) -> None:
    result = bootstrap_aws(BUCKET, REGION, session=aws)

    _assert_baseline(aws, result.kms_key_arn)
    assert aws.client("s3").get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == REGION
    actions = {(c.resource, c.setting): c.action for c in result.changes}
    assert actions[(f"s3://{BUCKET}", "bucket")] == "created"
    assert actions[(f"kms:{ALIAS}", "key")] == "created"
    assert "fixed" not in actions.values()
    assert not result.unchanged


def test_rerun_changes_nothing_and_reports_unchanged(aws: boto3.Session) -> None:
    first = bootstrap_aws(BUCKET, REGION, session=aws)
    session, calls = _recording(aws)

    again = bootstrap_aws(BUCKET, REGION, session=session)

    assert again.unchanged
    assert {c.action for c in again.changes} == {"unchanged"}
    assert again.kms_key_arn == first.kms_key_arn
    assert calls, "the re-run must read the current settings"
    assert _writes(calls) == []
    assert len(aws.client("kms").list_keys()["Keys"]) == 1


def test_weak_existing_bucket_is_reported_and_fixed_never_deleted(aws: boto3.Session) -> None:
    s3 = aws.client("s3")
    kms = aws.client("kms")
    s3.create_bucket(
        Bucket=BUCKET,
        CreateBucketConfiguration={"LocationConstraint": REGION},
        ObjectOwnership="ObjectWriter",
    )
    s3.put_object(Bucket=BUCKET, Key=".pulumi/stacks/ai-gateway/dev.json", Body=b"{}")
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    s3.put_bucket_encryption(
        Bucket=BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=BUCKET,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": False,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": False,
        },
    )
    audit = {
        "Sid": "AllowAuditRead",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    }
    s3.put_bucket_policy(
        Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [audit]})
    )
    other_rule = {
        "ID": "expire-tmp",
        "Status": "Enabled",
        "Filter": {"Prefix": "tmp/"},
        "Expiration": {"Days": 1},
    }
    s3.put_bucket_lifecycle_configuration(
        Bucket=BUCKET, LifecycleConfiguration={"Rules": [other_rule]}
    )
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=key_id)  # rotation is off by default

    result = bootstrap_aws(BUCKET, REGION, session=aws)

    fixed = {c.setting: c.detail for c in result.changes if c.action == "fixed"}
    assert set(fixed) == {
        "rotation",
        "object ownership",
        "public access block",
        "versioning",
        "encryption",
        "bucket policy",
        "lifecycle",
    }
    assert fixed["versioning"] == "Suspended -> Enabled"
    assert fixed["object ownership"] == "ObjectWriter -> BucketOwnerEnforced"
    assert fixed["public access block"] == "turned on IgnorePublicAcls, RestrictPublicBuckets"
    assert fixed["encryption"].startswith("AES256, bucket key off -> aws:kms with ")
    assert result.kms_key_arn.endswith(key_id), "the existing key behind the alias is reused"
    _assert_baseline(aws, result.kms_key_arn)
    # Nothing of the user's is removed: objects, foreign policy statements, other rules.
    listed = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    assert [o["Key"] for o in listed] == [".pulumi/stacks/ai-gateway/dev.json"]
    statements = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    assert any(s.get("Sid") == "AllowAuditRead" for s in statements)
    rules = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert {r["ID"] for r in rules} == {"expire-tmp", LIFECYCLE_RULE_ID}

    assert bootstrap_aws(BUCKET, REGION, session=aws).unchanged


def test_us_east_1_bucket_has_no_location_constraint_and_reruns_clean(
    aws: boto3.Session,
) -> None:
    first = bootstrap_aws(BUCKET, "us-east-1", session=aws)
    location = aws.client("s3").get_bucket_location(Bucket=BUCKET)["LocationConstraint"]
    assert location is None  # S3's spelling of us-east-1
    assert first.secrets_provider == f"awskms://{ALIAS}?region=us-east-1"
    assert bootstrap_aws(BUCKET, "us-east-1", session=aws).unchanged


def test_bucket_of_another_account_is_refused_with_a_free_name(aws: boto3.Session) -> None:
    creds = aws.client("sts").assume_role(
        RoleArn="arn:aws:iam::111111111111:role/other", RoleSessionName="other-account"
    )["Credentials"]
    other = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )
    other.client("s3").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )

    with pytest.raises(BootstrapError) as error:
        bootstrap_aws(BUCKET, REGION, session=aws)

    message = str(error.value)
    assert f"--bucket '{BUCKET}' already exists and belongs to another AWS account" in message
    assert f"e.g. {BUCKET}-123456789012" in message


def test_bucket_in_another_region_names_the_right_region(aws: boto3.Session) -> None:
    aws.client("s3", region_name="us-west-2").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
    )

    with pytest.raises(BootstrapError, match="is in us-west-2; re-run with --region us-west-2"):
        bootstrap_aws(BUCKET, REGION, session=aws)


def test_key_pending_deletion_is_refused_not_replaced(aws: boto3.Session) -> None:
    kms = aws.client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=ALIAS, TargetKeyId=key_id)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)

    with pytest.raises(BootstrapError, match="PendingDeletion; re-enable it"):
        bootstrap_aws(BUCKET, REGION, session=aws)
    assert aws.client("s3").list_buckets()["Buckets"] == []


def test_cli_prints_changes_and_the_login_lines(
    aws: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bootstrap-state", "aws", "--bucket", BUCKET, "--region", REGION]
    assert main(args) == EXIT_OK
    first = capsys.readouterr().out
    assert f"created    s3://{BUCKET}  bucket: in {REGION}" in first
    assert f"pulumi login 's3://{BUCKET}?region={REGION}'" in first
    for stack in ("dev", "staging", "prod"):
        assert (
            f"pulumi stack init {stack} --secrets-provider 'awskms://{ALIAS}?region={REGION}'"
            in first
        )

    assert main(args) == EXIT_OK
    again = capsys.readouterr().out
    assert f"unchanged: s3://{BUCKET} and {ALIAS} already meet the baseline" in again
    assert "created " not in again and "fixed " not in again


def test_cli_bad_bucket_name_exits_two_before_any_call(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No mock_aws here: a name check that reached AWS would fail differently.
    code = main(["bootstrap-state", "aws", "--bucket", "Pulumi_State", "--region", REGION])
    assert code == EXIT_ERROR
    err = capsys.readouterr().err
    assert "--bucket 'Pulumi_State' is not a valid S3 bucket name" in err
    assert "use 3-63 lowercase letters, digits and hyphens" in err


# --- pure decisions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("ab", "is 2 characters long"),
        ("a" * 64, "is 64 characters long"),
        ("Upper-case", "may only contain lowercase letters"),
        ("under_score", "may only contain lowercase letters"),
        ("-leading-hyphen", "must start and end with a letter or digit"),
        ("trailing.", "must start and end with a letter or digit"),
        ("two..dots", "contains two adjacent periods"),
        ("192.168.5.4", "is formatted as an IP address"),
        ("xn--state", "starts with a reserved prefix"),
        ("state-s3alias", "ends with a reserved suffix"),
    ],
)
def test_invalid_bucket_names_are_rejected_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(BootstrapError) as error:
        validate_bucket_name(name)
    assert f"--bucket {name!r}" in str(error.value)
    assert reason in str(error.value)


@pytest.mark.parametrize("name", ["abc", "acme-pulumi-state", "acme.state.2026", "a" * 63])
def test_valid_bucket_names_pass(name: str) -> None:
    assert validate_bucket_name(name) == name


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-2", "us-gov-west-1", "ap-south-1"])
def test_region_codes_pass(region: str) -> None:
    assert validate_region(region) == region


@pytest.mark.parametrize("region", ["US-EAST-1", "useast1", "eu-west", "Frankfurt"])
def test_bad_regions_name_the_value(region: str) -> None:
    with pytest.raises(BootstrapError, match=f"--region '{region}' is not an AWS region code"):
        validate_region(region)


def test_default_alias_is_a_valid_alias_even_for_dotted_buckets() -> None:
    assert default_kms_alias("acme.state") == "alias/pulumi-acme-state"
    assert validate_kms_alias(default_kms_alias("acme.state"))
    with pytest.raises(BootstrapError, match="reserves"):
        validate_kms_alias("alias/aws/s3")


def test_suggested_name_is_valid_and_fits() -> None:
    suggestion = suggest_bucket_name("x" * 63, "123456789012")
    assert len(suggestion) == 63
    assert validate_bucket_name(suggestion).endswith("-123456789012")


def test_merge_policy_keeps_foreign_statements_and_replaces_its_own() -> None:
    ours = tls_only_statement(BUCKET)
    foreign = {"Sid": "Audit", "Effect": "Allow", "Action": "s3:GetObject"}
    stale = {**ours, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
    merged = merge_policy({"Version": "2012-10-17", "Statement": [foreign, stale]}, ours)
    assert merged["Statement"] == [foreign, ours]
    assert policy_has_statement(merged, ours)
    assert not policy_has_statement({"Statement": [stale]}, ours)


def test_policy_comparison_ignores_list_spelling() -> None:
    ours = tls_only_statement(BUCKET)
    respelled = {**ours, "Action": ["s3:*"], "Resource": list(reversed(ours["Resource"]))}
    assert policy_has_statement({"Statement": respelled}, ours)


@pytest.mark.parametrize("spelling", [{"Prefix": ""}, {}, None])
def test_whole_bucket_lifecycle_filter_spellings_match(spelling: dict[str, str] | None) -> None:
    wanted = lifecycle_rule(90)
    existing = {k: v for k, v in wanted.items() if k != "Filter"}
    if spelling is not None:
        existing["Filter"] = spelling
    assert lifecycle_rule_matches(existing, wanted)
    assert not lifecycle_rule_matches({**existing, "Filter": {"Prefix": "tmp/"}}, wanted)
    assert not lifecycle_rule_matches(
        {**existing, "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}, wanted
    )


def test_noncurrent_days_out_of_range_names_the_flag() -> None:
    with pytest.raises(BootstrapError, match="--noncurrent-version-days 0 is out of range"):
        lifecycle_rule(0)


def test_missing_credentials_say_how_to_sign_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)

    code = main(["bootstrap-state", "aws", "--bucket", BUCKET, "--region", REGION])

    assert code == EXIT_ERROR
    assert "no AWS credentials found: sign in first (`aws sso login" in capsys.readouterr().err
