"""Physical names of GCP resources that fit each service's rules: pure functions, no Pulumi.

Most GCP names follow RFC 1035 (lowercase letters, digits and hyphens, starting
with a letter, not ending with a hyphen) but the length limits differ: a GKE
cluster or a Memorystore instance takes 40 characters, a service account id
6 to 30. :func:`resource_name` builds ``<prefix>-<role>`` and, when that is too
long, shortens the prefix and adds a stable 4-character hash so two long
prefixes still give different names.
"""

from __future__ import annotations

import hashlib
import re

LIMITS: dict[str, tuple[int, int]] = {
    # kind: (min length, max length)
    "network": (1, 63),
    "subnetwork": (1, 63),
    "router": (1, 63),
    "router_nat": (1, 63),
    "firewall": (1, 63),
    "global_address": (1, 63),
    "cluster": (1, 40),
    "node_pool": (1, 40),
    "redis_instance": (1, 40),
    # Cloud SQL allows 98 characters for "<project>:<instance>"; a project id
    # takes up to 30, so 63 always fits.
    "sql_instance": (1, 63),
    "service_account": (6, 30),
    "artifact_repository": (1, 63),
    "key_ring": (1, 63),
    "crypto_key": (1, 63),
    "dns_zone": (1, 63),
    "health_check": (1, 63),
    "workload_identity_pool": (4, 32),
    # Secret Manager allows 255; kept to the RFC 1035 label length like the rest.
    "secret": (1, 63),
}
"""Name length limits of each kind of resource the footprint names."""

_PART = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_HASH_LENGTH = 4


def resource_name(prefix: str, role: str, kind: str, reserve: int = 0) -> str:
    """``<prefix>-<role>``, valid and within the limit of ``kind``.

    ``reserve`` keeps room for a suffix appended later (for example ``-1a2b``
    from a random id, 5 characters). When the name does not fit, the prefix is
    shortened and a hash of the full name is added, so the name stays unique
    and stable. Raises ValueError naming the bad input and the fix.
    """
    if kind not in LIMITS:
        raise ValueError(f"kind {kind!r} is unknown; use one of {', '.join(sorted(LIMITS))}")
    for what, value in (("prefix", prefix), ("role", role)):
        if not _PART.fullmatch(value):
            raise ValueError(
                f"{what} {value!r} cannot be part of a GCP name; use lowercase letters, "
                "digits and hyphens, starting with a letter and not ending with a hyphen"
            )
    minimum, maximum = LIMITS[kind]
    if reserve < 0:
        raise ValueError(f"reserve {reserve} is negative; use 0 or more")
    limit = maximum - reserve
    name = f"{prefix}-{role}"
    if len(name) <= limit:
        if len(name) + reserve < minimum:
            raise ValueError(
                f"{kind} name {name!r} is shorter than {minimum} characters; use a longer role"
            )
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LENGTH]
    keep = limit - len(role) - len(digest) - 2
    if keep < 1:
        raise ValueError(
            f"role {role!r} is too long for a {kind} name (at most {maximum} characters, "
            f"{reserve} reserved); use a role of at most {limit - len(digest) - 3} characters"
        )
    short = prefix[:keep].rstrip("-")
    return f"{short}-{role}-{digest}"
