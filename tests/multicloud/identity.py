"""Each simulated cloud's workload identity: an OIDC issuer's signing key and its tokens.

In a deployment, each cluster's OIDC issuer signs the projected ServiceAccount
token a gateway pod mounts (audience ``aigw-governance``) and publishes its
public keys; the other clouds verify the token against them
(``gateway_app.governance.peers``). Here each cloud gets its own EC P-256 key
standing in for its issuer: the token file the gateway reads is signed with it,
and the other clouds' configs pin its public key (``peers.<cloud>.jwks``). No
cloud holds another's private key, so nothing is shared.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec

AUDIENCE = "aigw-governance"
SUBJECT = "system:serviceaccount:aigw:gateway"


class CloudIdentity:
    """One cloud's issuer key, its public JWK and the gateway's token file."""

    def __init__(self, cloud: str) -> None:
        self.cloud = cloud
        self.issuer = f"https://oidc.{cloud}.example.invalid/id/sim"
        self.kid = f"{cloud}-1"
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.dir = tempfile.mkdtemp(prefix=f"aigw-id-{cloud}-")
        self.token_file = os.path.join(self.dir, "token")
        self.write_token()

    def jwk(self) -> dict[str, Any]:
        """The public key as the issuer publishes it."""
        public = orjson.loads(jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": "ES256"}

    def mint(self, *, lifetime_s: float = 3600, **claims: Any) -> str:
        """A token as the kubelet would project it (claims may be overridden, for tests)."""
        now = int(time.time())
        body = {
            "iss": self.issuer,
            "sub": SUBJECT,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime_s),
            **claims,
        }
        return jwt.encode(body, self._key, algorithm="ES256", headers={"kid": self.kid})

    def write_token(self) -> None:
        """(Re)write the gateway's token file (the kubelet rotates it the same way)."""
        with open(self.token_file, "w") as handle:
            handle.write(self.mint())

    def peer(self, url: str) -> dict[str, Any]:
        """This cloud as another cloud's config names it (``governance.global.peers``)."""
        return {"url": url, "issuer": self.issuer, "subject": SUBJECT, "jwks": [self.jwk()]}

    def remove(self) -> None:
        """Delete the token file's directory."""
        shutil.rmtree(self.dir, ignore_errors=True)
