"""AWS IAM and key policies: no administrator grants, no trust or key policy open to anyone.

An IAM policy document can reach a role in four ways (a ``RolePolicy``, a
``Policy`` attached with a ``*PolicyAttachment``, the role's own
``inlinePolicies`` and ``managedPolicyArns``); every one is judged. Resource
policies (KMS key policies inline or as a ``KeyPolicy``, bucket, topic, queue,
repository and secret policies) must not admit ``*`` without a condition that
names the caller. (The GCP and Azure identity rules are in ``gcp.py`` and
``azure.py``.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationPolicy, Severity

from policies.config import Category
from policies.framework import get, items, resource_policy

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
POLICY = "aws:iam/policy:Policy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
USER_POLICY_ATTACHMENT = "aws:iam/userPolicyAttachment:UserPolicyAttachment"
GROUP_POLICY_ATTACHMENT = "aws:iam/groupPolicyAttachment:GroupPolicyAttachment"
POLICY_ATTACHMENT = "aws:iam/policyAttachment:PolicyAttachment"
KMS_KEY = "aws:kms/key:Key"
KMS_KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
ECR_REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"

ADMIN_POLICY_ARNS = (
    "arn:aws:iam::aws:policy/AdministratorAccess",
    "arn:aws:iam::aws:policy/IAMFullAccess",
    "arn:aws:iam::aws:policy/PowerUserAccess",
)
"""AWS-managed policies that grant (or can grant themselves) everything."""

# Condition keys that pin who may act (a specific account, organization, source
# or OIDC subject); any of them turns a "*" principal into a named one.
_IDENTIFYING_KEYS = (
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceowner",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "kms:calleraccount",
    "kms:viaservice",
)


def document(value: Any) -> dict[str, Any]:
    """A policy document from a JSON string or an already-parsed mapping ({} if unreadable)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip():
        try:
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The statements of a policy document (a single statement may be an object)."""
    found = doc.get("Statement", [])
    if isinstance(found, Mapping):
        return [found]
    return [s for s in found if isinstance(s, Mapping)] if isinstance(found, list) else []


def _listed(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def _admin_statements(doc: Mapping[str, Any]) -> Iterable[str]:
    for index, statement in enumerate(statements(doc)):
        if statement.get("Effect") != "Allow":
            continue
        actions = _listed(statement.get("Action"))
        resources = _listed(statement.get("Resource"))
        if "NotAction" in statement:
            yield f"Statement[{index}] allows NotAction (everything but a list): list the actions"
        elif any(a in {"*", "*:*"} for a in actions):
            on = "Resource '*' (administrator)" if "*" in resources else f"{resources}"
            yield (
                f"Statement[{index}] allows Action '*' on {on}: list the actions and resources "
                "the role needs"
            )
        elif ("iam:*" in actions or "iam:PassRole" in actions) and "*" in resources:
            yield (
                f"Statement[{index}] allows {[a for a in actions if a.startswith('iam:')]} on "
                f"{resources}: privilege escalation; name the roles it may pass or manage"
            )


def _admin_document(prop: str) -> Any:
    def check(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
        for message in _admin_statements(document(get(props, prop))):
            yield f"{prop}: {message}"

    return check


def _role_inline(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    for index, inline in enumerate(items(props, "inlinePolicies")):
        for message in _admin_statements(document(get(inline, "policy"))):
            yield f"inlinePolicies[{index}].policy: {message}"
    for arn in items(props, "managedPolicyArns"):
        if arn in ADMIN_POLICY_ARNS:
            yield f"managedPolicyArns contains {arn}: attach a least-privilege policy instead"


def _attachment(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    if get(props, "policyArn") in ADMIN_POLICY_ARNS:
        yield f"policyArn is {get(props, 'policyArn')}: attach a least-privilege policy instead"


def _public_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any("*" in _listed(principal.get(k)) for k in ("AWS", "CanonicalUser", "Service"))
    return False


def _condition_keys(statement: Mapping[str, Any]) -> set[str]:
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return set()
    return {
        str(key).lower()
        for operator in condition.values()
        if isinstance(operator, Mapping)
        for key in operator
    }


def _open_statements(doc: Mapping[str, Any]) -> Iterable[str]:
    for index, statement in enumerate(statements(doc)):
        if statement.get("Effect") != "Allow" or not _public_principal(statement.get("Principal")):
            continue
        if not any(k in _IDENTIFYING_KEYS for k in _condition_keys(statement)):
            yield (
                f"Statement[{index}] allows Principal '*' without a condition on the caller's "
                "account, organization or source: name the principals (or add aws:PrincipalOrgID)"
            )


def _resource_policy(prop: str) -> Any:
    def check(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
        for message in _open_statements(document(get(props, prop))):
            yield f"{prop}: {message}"

    return check


def _key_policy(props: Mapping[str, Any], config: Mapping[str, Any]) -> Iterable[str]:
    if not get(props, "policy"):
        yield (
            "policy is not set, so the key gets the default policy (every IAM principal of the "
            "account the account allows): write the key policy explicitly"
        )
    yield from _resource_policy("policy")(props, config)


def _trust_policy(props: Mapping[str, Any], _: Mapping[str, Any]) -> Iterable[str]:
    doc = document(get(props, "assumeRolePolicy"))
    for message in _open_statements(doc):
        yield f"assumeRolePolicy: {message}"
    for index, statement in enumerate(statements(doc)):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        federated = _listed(principal.get("Federated")) if isinstance(principal, Mapping) else []
        if not federated or "sts:AssumeRoleWithWebIdentity" not in _listed(statement.get("Action")):
            continue
        keys = _condition_keys(statement)
        if not any(k.endswith(":sub") for k in keys):
            yield (
                f"assumeRolePolicy: Statement[{index}] lets any identity of {federated} assume "
                "the role: add a condition on the token's ':sub' (the one service account or "
                "repository that may)"
            )


def policies() -> list[ResourceValidationPolicy]:
    """The AWS identity and key-policy policies."""
    ident = Category.IDENTITY
    return [
        resource_policy(
            "aws-iam-policy-no-administrator",
            "No IAM policy may grant administrator rights (Action '*' on Resource '*', "
            "NotAction, iam:* or iam:PassRole on '*', or an AWS-managed administrator policy), "
            "however it reaches the principal. Fix: list the actions and resources needed.",
            types=[
                POLICY,
                ROLE_POLICY,
                USER_POLICY,
                GROUP_POLICY,
                ROLE,
                ROLE_POLICY_ATTACHMENT,
                USER_POLICY_ATTACHMENT,
                GROUP_POLICY_ATTACHMENT,
                POLICY_ATTACHMENT,
            ],
            check={
                POLICY: _admin_document("policy"),
                ROLE_POLICY: _admin_document("policy"),
                USER_POLICY: _admin_document("policy"),
                GROUP_POLICY: _admin_document("policy"),
                ROLE: _role_inline,
                ROLE_POLICY_ATTACHMENT: _attachment,
                USER_POLICY_ATTACHMENT: _attachment,
                GROUP_POLICY_ATTACHMENT: _attachment,
                POLICY_ATTACHMENT: _attachment,
            },
            category=ident,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "aws-iam-role-trust-not-public",
            "A role's trust policy must name who may assume it: never Principal '*' without a "
            "condition, and a web-identity (OIDC) trust must pin the token's subject. Fix: name "
            "the principal, or add a StringEquals condition on '<issuer>:sub'.",
            types=[ROLE],
            check=_trust_policy,
            category=ident,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "aws-kms-key-policy-not-public",
            "A KMS key policy (inline or a KeyPolicy) must be written out and must not let "
            "anyone use the key. Fix: set policy, naming the principals (or add a condition on "
            "aws:PrincipalOrgID/kms:CallerAccount).",
            types=[KMS_KEY, KMS_KEY_POLICY],
            check=_key_policy,
            category=Category.ENCRYPTION,
            severity=Severity.CRITICAL,
        ),
        resource_policy(
            "aws-iam-resourcepolicy-not-public",
            "Bucket, topic, queue, repository and secret policies must not admit anyone. Fix: "
            "name the principals, or add a condition on the caller's account or organization.",
            types=[BUCKET_POLICY, TOPIC_POLICY, QUEUE_POLICY, ECR_REPOSITORY_POLICY, SECRET_POLICY],
            check=_resource_policy("policy"),
            category=Category.EXPOSURE,
            severity=Severity.CRITICAL,
        ),
    ]
