"""Fakes for pulumi-random: deterministic, well-formed values."""

from __future__ import annotations

import base64
import string
from typing import Any

from infra.offline.fakes import FakeContext, fake_hex, resource


def _password(name: str, length: int, special: bool) -> str:
    alphabet = string.ascii_letters + string.digits + ("!#%*-_=+" if special else "")
    # sha256 gives 64 hex digits (32 characters); chain blocks for longer passwords.
    digest = "".join(
        fake_hex("password", name, str(block), length=64) for block in range(length // 32 + 1)
    )
    chars = [alphabet[int(digest[i : i + 2], 16) % len(alphabet)] for i in range(0, 2 * length, 2)]
    return "".join(chars)[:length]


@resource("random:index/randomPassword:RandomPassword", "random:index/randomString:RandomString")
def _random_password(
    ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    length = int(inputs.get("length", 16))
    value = _password(name, length, bool(inputs.get("special", True)))
    return {"id": "none", "result": value}


@resource("random:index/randomId:RandomId")
def _random_id(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    raw = bytes.fromhex(fake_hex("id", name, length=2 * int(inputs.get("byteLength", 8))))
    return {
        "id": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "hex": raw.hex(),
        "b64Url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "b64Std": base64.b64encode(raw).decode(),
        "dec": str(int.from_bytes(raw, "big")),
    }


@resource("random:index/randomPet:RandomPet")
def _random_pet(ctx: FakeContext, token: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"offline-{fake_hex(name, length=6)}"}
