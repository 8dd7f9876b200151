"""The OpenID Connect relying party: discovery, the code flow with PKCE, ID tokens.

Follows OpenID Connect Core 1.0 (section 3.1: authorization code flow; 3.1.3.7:
ID token validation), RFC 7636 (PKCE, S256 only), RFC 9207 (the ``iss``
authorization response parameter, against mix-up attacks) and RP-Initiated
Logout 1.0. Signatures are checked by PyJWT against the provider's JWKS; the
keys are cached, re-read every ``jwks_max_age_s``, and re-read at once (at most
every ``jwks_refetch_interval_s``) when a token names an unknown ``kid``: that
is how a key rotation at the provider is picked up without a restart.

The provider is contacted only during sign-in and logout, never on the model
request path, and discovery happens at the first sign-in, so a provider outage
affects nobody but the people trying to sign in.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import jwt
import orjson

from gateway_app.config.identity import OIDCConfig

log = logging.getLogger("gateway_app.identity")

_MAX_BODY = 1 << 20  # a discovery document, JWKS or token response is a few KiB


# PyJWT's refusals, as the audit log's reason and the person's message.
_DECODE_ERRORS: tuple[tuple[type[jwt.PyJWTError], str, str], ...] = (
    (jwt.InvalidSignatureError, "bad_signature", "The ID token's signature is invalid."),
    (jwt.InvalidAudienceError, "wrong_audience", "The ID token was issued to another application."),
    (jwt.InvalidIssuerError, "wrong_issuer", "The ID token comes from another issuer."),
    (
        jwt.InvalidAlgorithmError,
        "algorithm_not_allowed",
        "The ID token's algorithm does not match its key's.",
    ),
)


class SignInError(Exception):
    """Sign-in failed; ``reason`` is a short code for the audit log, the message is for people."""

    def __init__(self, reason: str, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The fields of the provider's discovery document the relying party uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    iss_parameter_supported: bool

    @classmethod
    def parse(cls, document: Mapping[str, Any], expected_issuer: str) -> ProviderMetadata:
        """Validate a discovery document (OpenID Connect Discovery 1.0, section 4.3:
        its ``issuer`` must be exactly the one configured)."""
        if document.get("issuer") != expected_issuer:
            raise SignInError(
                "discovery_issuer_mismatch",
                f"The identity provider's discovery document names issuer "
                f"{document.get('issuer')!r}, not the configured {expected_issuer!r}; fix "
                "identity.oidc.issuer (trailing slashes count).",
                502,
            )
        missing = [
            name
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")
            if not isinstance(document.get(name), str)
        ]
        if missing:
            raise SignInError(
                "discovery_incomplete",
                f"The identity provider's discovery document lacks {missing}.",
                502,
            )
        methods = document.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise SignInError(
                "pkce_unsupported",
                "The identity provider does not support PKCE with S256; the gateway requires it.",
                502,
            )
        return cls(
            issuer=document["issuer"],
            authorization_endpoint=document["authorization_endpoint"],
            token_endpoint=document["token_endpoint"],
            jwks_uri=document["jwks_uri"],
            userinfo_endpoint=document.get("userinfo_endpoint"),
            end_session_endpoint=document.get("end_session_endpoint"),
            iss_parameter_supported=document.get("authorization_response_iss_parameter_supported")
            is True,
        )


@dataclass(frozen=True, slots=True)
class Tokens:
    """What the token endpoint returned (the ID token already validated)."""

    id_token: str
    claims: dict[str, Any]
    access_token: str | None


def code_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OIDCClient:
    """One relying party registration at one provider."""

    def __init__(
        self,
        config: OIDCConfig,
        redirect_uri: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.redirect_uri = redirect_uri
        self.clock = clock
        self._metadata: ProviderMetadata | None = None
        # The provider's signing keys as published (JWK objects), by kid.
        self._keys: dict[str, dict[str, Any]] = {}
        self._unnamed: list[dict[str, Any]] = []
        self._keys_read_at = float("-inf")
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------ HTTP

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            context = ssl.create_default_context(cafile=self.config.ca_file)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context),
                timeout=aiohttp.ClientTimeout(total=self.config.http_timeout_s),
                trust_env=True,  # HTTPS_PROXY / NO_PROXY, as the upstream calls
            )
        return self._session

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _json(self, method: str, url: str, what: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self._http().request(method, url, allow_redirects=False, **kwargs) as resp:
                body = await resp.content.read(_MAX_BODY + 1)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SignInError(
                "provider_unreachable",
                f"The identity provider could not be reached ({what}): {type(exc).__name__}.",
                502,
            ) from None
        if len(body) > _MAX_BODY:
            raise SignInError("provider_bad_response", f"The {what} response is too large.", 502)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if status != 200 or not isinstance(data, dict):
            # The provider's error code only (RFC 6749 5.2); its description may echo input.
            code = data.get("error") if isinstance(data, dict) else None
            raise SignInError(
                f"{what.replace(' ', '_')}_failed",
                f"The identity provider refused the {what} (HTTP {status}"
                + (f", {code}" if isinstance(code, str) else "")
                + ").",
                502 if status >= 500 or code is None else 401,
            )
        return data

    # ------------------------------------------------------------ discovery, keys

    async def metadata(self) -> ProviderMetadata:
        """The discovery document, read at first use (a failed read is retried next time)."""
        if self._metadata is None:
            url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
            document = await self._json("GET", url, "discovery")
            self._metadata = ProviderMetadata.parse(document, self.config.issuer)
        return self._metadata

    async def _read_keys(self) -> None:
        metadata = await self.metadata()
        document = await self._json("GET", metadata.jwks_uri, "key set")
        keys: dict[str, dict[str, Any]] = {}
        unnamed: list[dict[str, Any]] = []
        for entry in document.get("keys") or []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # a key type PyJWT cannot use: skip that key, not the whole set
            if isinstance(entry.get("kid"), str):
                keys[entry["kid"]] = entry
            else:
                unnamed.append(entry)
        self._keys, self._unnamed = keys, unnamed
        self._keys_read_at = self.clock()
        log.info("identity provider signing keys read: %s", sorted(keys) or "(no kid)")

    async def _signing_key(self, kid: str | None, algorithm: str) -> jwt.PyJWK:
        async with self._lock:
            now = self.clock()
            if now - self._keys_read_at > self.config.jwks_max_age_s:
                await self._read_keys()
            key = self._pick(kid)
            if key is None and now - self._keys_read_at >= self.config.jwks_refetch_interval_s:
                # An unknown kid: the provider may have rotated its keys since the last read.
                await self._read_keys()
                key = self._pick(kid)
        if key is None:
            raise SignInError(
                "unknown_signing_key",
                f"The ID token is signed with a key the identity provider does not publish "
                f"(kid {kid!r}).",
            )
        try:
            # Bound to one algorithm: the key's own `alg`, else the token's (checked
            # against identity.oidc.algorithms already).
            return jwt.PyJWK(key, algorithm=None if key.get("alg") else algorithm)
        except jwt.PyJWTError as exc:
            raise SignInError(
                "unusable_signing_key", f"The signing key is unusable: {exc}."
            ) from None

    def _pick(self, kid: str | None) -> dict[str, Any] | None:
        if kid is not None:
            return self._keys.get(kid)
        candidates = [*self._keys.values(), *self._unnamed]
        return candidates[0] if len(candidates) == 1 else None

    # ------------------------------------------------------------ the flow

    async def authorization_url(self, state: str, nonce: str, verifier: str) -> str:
        """Where to send the browser to sign in (response_type=code, PKCE S256)."""
        metadata = await self.metadata()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.config.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": " ".join(self.config.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": code_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in metadata.authorization_endpoint else "?"
        return f"{metadata.authorization_endpoint}{separator}{query}"

    async def check_response_issuer(self, iss: str | None) -> None:
        """RFC 9207: a returned ``iss`` must be our provider's; required when it says so."""
        metadata = await self.metadata()
        if iss is None and metadata.iss_parameter_supported:
            raise SignInError(
                "issuer_missing", "The sign-in response lacks the issuer it must carry."
            )
        if iss is not None and iss != metadata.issuer:
            raise SignInError(
                "issuer_mismatch", "The sign-in response comes from another identity provider."
            )

    async def exchange(self, code: str, verifier: str, nonce: str) -> Tokens:
        """Redeem the authorization code and validate the ID token it returns."""
        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
        }
        headers = {"accept": "application/json"}
        method = self.config.token_auth_method
        if method == "client_secret_basic":
            # RFC 6749 2.3.1: the id and secret are form-urlencoded, then Basic-encoded.
            pair = f"{_form_escape(self.config.client_id)}:"
            pair += _form_escape(self.config.secret or "")
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = self.config.client_id
            if method == "client_secret_post":
                form["client_secret"] = self.config.secret or ""
        answer = await self._json(
            "POST", metadata.token_endpoint, "code exchange", data=form, headers=headers
        )
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise SignInError("no_id_token", "The identity provider returned no ID token.")
        claims = await self.validate_id_token(id_token, nonce)
        access = answer.get("access_token")
        return Tokens(id_token, claims, access if isinstance(access, str) else None)

    async def validate_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """OpenID Connect Core 3.1.3.7: signature (JWKS), ``iss``, ``aud``/``azp``, ``exp``
        and ``iat`` (with ``clock_skew_s``), and ``nonce``. Raises :class:`SignInError`."""
        metadata = await self.metadata()
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise SignInError("malformed_id_token", "The ID token is not a JWT.") from None
        algorithm = header.get("alg")
        if algorithm not in self.config.algorithms:
            raise SignInError(
                "algorithm_not_allowed",
                f"The ID token's algorithm {algorithm!r} is not accepted "
                f"(identity.oidc.algorithms: {self.config.algorithms}).",
            )
        kid = header.get("kid")
        key = await self._signing_key(kid if isinstance(kid, str) else None, algorithm)
        try:
            # Times are checked below against self.clock (PyJWT reads the wall clock).
            claims = jwt.decode(
                id_token,
                key=key,
                algorithms=[algorithm],
                audience=self.config.client_id,
                issuer=metadata.issuer,
                options={
                    "require": ["iss", "sub", "aud", "exp", "iat"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            for kind, reason, message in _DECODE_ERRORS:
                if isinstance(exc, kind):
                    raise SignInError(reason, message) from None
            raise SignInError("invalid_id_token", f"The ID token is invalid: {exc}.") from None
        self._check_claims(claims, nonce)
        return claims

    def _check_claims(self, claims: dict[str, Any], nonce: str) -> None:
        audience = claims["aud"]
        audiences = audience if isinstance(audience, list) else [audience]
        if any(a != self.config.client_id for a in audiences):
            # 3.1.3.7 item 3: reject tokens that also name audiences we do not trust.
            raise SignInError(
                "wrong_audience", "The ID token is also issued to other applications."
            )
        if "azp" in claims and claims["azp"] != self.config.client_id:
            raise SignInError("wrong_audience", "The ID token was issued to another application.")
        now = self.clock()
        skew = self.config.clock_skew_s
        for name in ("exp", "iat"):
            if not isinstance(claims.get(name), int | float) or isinstance(claims[name], bool):
                raise SignInError("invalid_id_token", f"The ID token's `{name}` is not a time.")
        if now >= claims["exp"] + skew:
            raise SignInError("expired_id_token", "The ID token has expired.")
        if claims["iat"] > now + skew:
            raise SignInError("future_id_token", "The ID token is issued in the future.")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now + skew:
            raise SignInError("future_id_token", "The ID token is not valid yet.")
        if not isinstance(claims.get("nonce"), str) or not _equal(claims["nonce"], nonce):
            raise SignInError("nonce_mismatch", "The ID token does not answer this sign-in.")

    async def userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """The UserInfo endpoint's claims, if the provider has one (its ``sub`` must match:
        OpenID Connect Core 5.3.2)."""
        metadata = await self.metadata()
        if metadata.userinfo_endpoint is None:
            return {}
        claims = await self._json(
            "GET",
            metadata.userinfo_endpoint,
            "user info",
            headers={"authorization": f"Bearer {access_token}", "accept": "application/json"},
        )
        if claims.get("sub") != subject:
            raise SignInError("userinfo_subject_mismatch", "The user info names another person.")
        return claims

    async def end_session_url(self, id_token: str | None, state: str, return_to: str) -> str | None:
        """RP-Initiated Logout: the provider's logout URL, or None if it advertises none."""
        try:
            metadata = await self.metadata()
        except SignInError:
            return None
        if metadata.end_session_endpoint is None:
            return None
        params = {
            "client_id": self.config.client_id,
            "post_logout_redirect_uri": return_to,
            "state": state,
        }
        if id_token:
            params["id_token_hint"] = id_token
        separator = "&" if "?" in metadata.end_session_endpoint else "?"
        return f"{metadata.end_session_endpoint}{separator}{urlencode(params)}"


def _form_escape(value: str) -> str:
    return quote(value, safe="")


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
