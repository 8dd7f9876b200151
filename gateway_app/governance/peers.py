"""Who is calling on the internal channel: workload-identity-federated tokens, no shared secret.

Each gateway presents its own token (``governance.global.token_file``: a
projected Kubernetes ServiceAccount token with the audience
``aigw-governance``, rotated by the kubelet, re-read here whenever the file
changes) as ``Authorization: Bearer`` on every internal call. The receiver
accepts it only if it is a JWT signed by the **sending cluster's OIDC issuer**
(one of the configured peers), for the configured audience, with that peer's
gateway ServiceAccount as subject, and not expired (60 s leeway). The issuer's
public keys are either pinned in the config (``peers.<cloud>.jwks``) or read
from its discovery document (``/.well-known/openid-configuration`` ->
``jwks_uri``: EKS, AKS and GKE publish them), cached for 10 minutes and
re-read at once on an unknown ``kid`` (a key rotation).

Nothing here is a secret shared between clouds: each cloud can only sign as
itself, and every receiver checks whom it signed as.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
import orjson

from gateway_app.config.governance import GlobalConfig, PeerConfig
from gateway_app.errors import GatewayError

log = logging.getLogger("gateway_app.governance")

_LEEWAY_S = 60
_KEYS_MAX_AGE_S = 600.0
_REFETCH_S = 30.0  # an unknown kid re-reads an issuer's keys at most this often
_ALGORITHMS = ["RS256", "ES256", "PS256"]  # what Kubernetes issuers sign with


class PeerAuthError(Exception):
    """An internal call whose token does not prove a peer; ``reason`` is the metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    def as_error(self) -> GatewayError:
        """The 401 the caller gets (the reason only: never the token)."""
        return GatewayError(
            401,
            f"Internal governance call refused: {self}",
            code="peer_unauthenticated",
            headers={"www-authenticate": 'Bearer realm="aigw-governance"'},
        )


class OwnToken:
    """This gateway's token, read from its file and re-read when the kubelet rotates it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._token = ""
        self._stamp: tuple[float, int] | None = None

    def get(self) -> str:
        """The current token; a clear error when the file is missing or empty."""
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            raise RuntimeError(
                f"governance.global.token_file {self.path!r} cannot be read ({exc.strerror}): "
                "mount the projected ServiceAccount token with the audience "
                "aigw-governance there"
            ) from None
        stamp = (stat.st_mtime, stat.st_size)
        if stamp != self._stamp:
            with open(self.path) as handle:
                token = handle.read().strip()
            if not token:
                raise RuntimeError(f"governance.global.token_file {self.path!r} is empty")
            self._token, self._stamp = token, stamp
        return self._token

    def header(self) -> dict[str, str]:
        """The ``Authorization`` header of an internal call."""
        return {"authorization": f"Bearer {self.get()}"}


@dataclass
class _IssuerKeys:
    keys: dict[str | None, dict[str, Any]]
    read_at: float


class PeerVerifier:
    """Checks the token of an internal call: which peer sent it, or :class:`PeerAuthError`."""

    def __init__(
        self,
        config: GlobalConfig,
        local: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        # Every cloud but this one may call in.
        self.peers = {name: peer for name, peer in config.peers.items() if name != local}
        self._by_issuer = {peer.issuer.rstrip("/"): name for name, peer in self.peers.items()}
        self._keys: dict[str, _IssuerKeys] = {}
        self._lock = asyncio.Lock()
        self.failures: dict[tuple[str, str], int] = {}  # (peer or "unknown", reason) -> count

    def _fail(self, peer: str, reason: str, message: str) -> PeerAuthError:
        self.failures[peer, reason] = self.failures.get((peer, reason), 0) + 1
        log.warning("internal call refused (%s, peer %s): %s", reason, peer, message)
        return PeerAuthError(reason, message)

    async def verify(self, authorization: str | None) -> str:
        """The name of the peer that signed the bearer token in ``authorization``."""
        if not authorization or authorization[:7].lower() != "bearer ":
            raise self._fail("unknown", "missing_token", "send the peer's token as Bearer")
        token = authorization[7:].strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise self._fail("unknown", "malformed_token", "the token is not a JWT") from None
        issuer = str(unverified.get("iss") or "").rstrip("/")
        name = self._by_issuer.get(issuer)
        if name is None:
            raise self._fail("unknown", "unknown_issuer", f"issuer {issuer!r} is not a peer")
        peer = self.peers[name]
        algorithm = header.get("alg")
        if algorithm not in _ALGORITHMS:
            raise self._fail(name, "bad_algorithm", f"algorithm {algorithm!r} is not accepted")
        key = await self._key(name, peer, header.get("kid"))
        if key is None:
            raise self._fail(name, "unknown_key", f"no key {header.get('kid')!r} of {issuer}")
        try:
            claims = jwt.decode(
                token,
                jwt.PyJWK(key, algorithm=algorithm).key,
                algorithms=[algorithm],
                audience=self.config.audience,
                issuer=peer.issuer,
                leeway=_LEEWAY_S,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise self._fail(name, "expired", "the token has expired") from None
        except jwt.InvalidAudienceError:
            raise self._fail(name, "wrong_audience", "the token is for another audience") from None
        except jwt.PyJWTError as exc:
            raise self._fail(name, "invalid_token", f"the token is invalid ({exc})") from None
        if claims.get("sub") != peer.subject:
            raise self._fail(
                name, "wrong_subject", f"subject {claims.get('sub')!r} is not the gateway"
            )
        return name

    async def _key(self, name: str, peer: PeerConfig, kid: Any) -> dict[str, Any] | None:
        if peer.jwks is not None:
            return _pick(_index(peer.jwks), kid)
        async with self._lock:
            cached = self._keys.get(name)
            now = self.clock()
            if cached is None or now - cached.read_at > _KEYS_MAX_AGE_S:
                cached = await self._read(name, peer)
            found = _pick(cached.keys, kid)
            if found is None and now - cached.read_at >= _REFETCH_S:
                cached = await self._read(name, peer)  # the issuer may have rotated its keys
                found = _pick(cached.keys, kid)
        return found

    async def _read(self, name: str, peer: PeerConfig) -> _IssuerKeys:
        context = ssl.create_default_context(cafile=peer.ca_file)
        timeout = aiohttp.ClientTimeout(total=10)
        try:
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context), timeout=timeout, trust_env=True
            ) as http:
                url = peer.issuer.rstrip("/") + "/.well-known/openid-configuration"
                async with http.get(url) as response:
                    discovery = orjson.loads(await response.read())
                async with http.get(discovery["jwks_uri"]) as response:
                    document = orjson.loads(await response.read())
        except Exception as exc:
            raise self._fail(
                name, "issuer_unreachable", f"the keys of {peer.issuer} cannot be read ({exc})"
            ) from None
        keys = _index(document.get("keys") or [])
        self._keys[name] = found = _IssuerKeys(keys, self.clock())
        return found


def _index(keys: list[dict[str, Any]]) -> dict[str | None, dict[str, Any]]:
    return {key.get("kid"): key for key in keys if key.get("use", "sig") == "sig"}


def _pick(keys: dict[str | None, dict[str, Any]], kid: Any) -> dict[str, Any] | None:
    if kid in keys:
        return keys[kid]
    return next(iter(keys.values())) if kid is None and len(keys) == 1 else None
