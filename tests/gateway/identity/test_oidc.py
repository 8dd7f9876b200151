"""Sign-in against a real OpenID Provider (oidc-provider on Node), through the gateway.

Each test drives the flow a browser takes (``/auth/login`` -> the provider's page
-> ``/auth/callback``) and then the admin API the console calls, asserting what a
security review of an admin plane checks: who the audit log names, the cookie's
attributes, CSRF and Origin checks, replayed and cross-browser sign-in responses,
the provider's key rotation, expired, foreign-audience and tampered ID tokens,
idle and absolute session expiry, logout and server-side revocation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

from gateway_app.identity.oidc import SignInError
from tests.gateway.identity.harness import (
    ADMIN,
    CLIENT_ID,
    CLIENT_SECRET,
    Browser,
    Console,
    console_gateway,
)
from tests.gateway.identity.provider import OpenIDProvider, client_registration

OTHER_APP = client_registration("other-app", "other-app-secret-0123456789", "http://127.0.0.1:9")


@pytest.fixture
def console(
    openid_provider: OpenIDProvider, fake_openai: Any, fake_anthropic: Any, tmp_path: Path
) -> Iterator[Console]:
    with console_gateway(
        openid_provider, fake_openai, fake_anthropic, tmp_path, extra_clients=[OTHER_APP]
    ) as running:
        yield running


def _detail(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["detail"])


def obtain_id_token(provider: OpenIDProvider, client: dict[str, Any], account: str) -> str:
    """An ID token the provider issues to ``client`` (code flow with PKCE, no gateway)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    redirect_uri = client["redirect_uris"][0]
    query = {
        "response_type": "code",
        "client_id": client["client_id"],
        "redirect_uri": redirect_uri,
        "scope": "openid email",
        "state": "s",
        "nonce": "nonce-of-this-test",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    browser = Browser("http://127.0.0.1:1")  # every hop is the provider's
    page = browser.follow(browser.request("GET", f"{provider.issuer}/auth?{urlencode(query)}"))
    location = browser.follow(
        browser.request("POST", str(page.url), data={"account": account}),
        stop=lambda url: url.startswith(redirect_uri),
    )
    code = parse_qs(urlsplit(location).query)["code"][0]
    answer = httpx.post(
        f"{provider.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(client["client_id"], client["client_secret"]),
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["id_token"]


def validate(console: Console, token: str, nonce: str = "nonce-of-this-test") -> Any:
    """The gateway's own ID token validation (on its event loop)."""
    return console.run(console.identity.oidc.validate_id_token(token, nonce))


def own_client(console: Console) -> dict[str, Any]:
    return client_registration(CLIENT_ID, CLIENT_SECRET, console.url)


def test_person_signs_in_is_mapped_by_group_and_the_audit_log_names_them(
    console: Console,
) -> None:
    browser = Browser(console.url)
    landing = browser.sign_in("bob")
    assert landing.status_code == 200 and str(landing.url).endswith("/console/#keys")
    # The session cookie: opaque, HttpOnly, Secure, SameSite, host-only (__Host-).
    cookie = next(c for c in browser.set_cookies if c.name == "__Host-aigw_session")
    assert len(cookie.value) >= 43
    assert {"httponly", "secure"} <= set(cookie.attributes)
    assert cookie.attributes["samesite"] == "Strict" and cookie.attributes["path"] == "/"
    assert "domain" not in cookie.attributes
    # The one-time sign-in cookie is cleared once used.
    assert "__Host-aigw_signin" not in browser.jar

    me = browser.request("GET", "/auth/session").json()
    assert me["person"]["subject"] == "bob" and me["person"]["email"] == "bob@example.com"
    assert (me["role"], me["team_id"]) == ("team_admin", "search")

    created = browser.api("POST", "/admin/keys", csrf=me["csrf_token"], json={"project_id": "p"})
    assert created.status_code == 201, created.text
    assert created.json()["team_id"] == "search"  # a team admin creates keys in its team only

    [event] = console.audit("key.create")
    assert event["actor"] == "person:bob"
    assert _detail(event)["actor"] == {
        "type": "person",
        "issuer": console.provider.issuer,
        "subject": "bob",
        "email": "bob@example.com",
        "name": "Bob Search",
        "role": "team_admin",
        "team_id": "search",
    }
    [login] = console.audit("auth.login")
    assert login["actor"] == "person:bob" and _detail(login)["rule"] == 1


def test_team_admin_sees_only_its_team_and_viewer_reads_only(console: Console) -> None:
    ads = console.admin("POST", "/admin/keys", json={"team_id": "ads", "project_id": "ads-p"})
    search = console.admin("POST", "/admin/keys", json={"team_id": "search", "project_id": "s"})
    bob = Browser(console.url)
    bob.sign_in("bob")
    listed = bob.request("GET", "/admin/keys").json()["data"]
    assert [k["id"] for k in listed] == [search.json()["id"]]
    assert bob.request("GET", "/admin/keys?team_id=ads").status_code == 404
    assert bob.request("GET", f"/admin/keys/{ads.json()['id']}").status_code == 404
    revoke = bob.api("POST", f"/admin/keys/{ads.json()['id']}/revoke", csrf=bob.csrf())
    assert revoke.status_code == 404

    victor = Browser(console.url)  # matched by the e-mail domain rule: viewer of search
    victor.sign_in("victor")
    assert [k["id"] for k in victor.request("GET", "/admin/keys").json()["data"]] == [
        search.json()["id"]
    ]
    refused = victor.api("POST", "/admin/keys", csrf=victor.csrf(), json={"project_id": "s"})
    assert refused.status_code == 403 and "read only" in refused.json()["error"]["message"]


def test_unmapped_person_cannot_sign_in(console: Console) -> None:
    browser = Browser(console.url)
    page = browser.sign_in("mallory")
    assert page.status_code == 403
    assert "mallory@elsewhere.test" in page.text and "identity.roles" in page.text
    assert "__Host-aigw_session" not in browser.jar
    [refused] = console.audit("auth.login_refused")
    assert _detail(refused)["actor"]["email"] == "mallory@elsewhere.test"


def test_changes_without_csrf_token_or_from_another_origin_are_refused(console: Console) -> None:
    browser = Browser(console.url)
    browser.sign_in("alice")
    token = browser.csrf()
    body = {"team_id": "search", "project_id": "p"}
    cases = {
        "no token": browser.api("POST", "/admin/keys", json=body),
        "wrong token": browser.api("POST", "/admin/keys", csrf="x" * 43, json=body),
        "other origin": browser.api(
            "POST", "/admin/keys", csrf=token, origin="https://evil.example", json=body
        ),
        "no origin": browser.api("POST", "/admin/keys", csrf=token, origin=None, json=body),
        "limit, no token": browser.api("PUT", "/admin/limits/team/search", json={"rpm": 1}),
    }
    for case, response in cases.items():
        assert response.status_code == 403, case
        assert response.json()["error"]["code"] == "csrf_failed", case
    assert console.admin("GET", "/admin/keys").json()["data"] == []
    assert console.admin("GET", "/admin/limits").json()["data"] == []
    # Reads need no token; the same change with token and origin goes through.
    assert browser.request("GET", "/admin/keys").status_code == 200
    assert browser.api("POST", "/admin/keys", csrf=token, json=body).status_code == 201


def test_replayed_or_foreign_sign_in_response_is_refused(console: Console) -> None:
    victim = Browser(console.url)
    callback = victim.sign_in("bob", stop=lambda url: "/auth/callback" in url)
    assert "state=" in callback and "code=" in callback
    # Another browser presenting this response (login CSRF / a stolen link): refused,
    # and the state is used up.
    attacker = Browser(console.url)
    foreign = attacker.follow(attacker.request("GET", callback))
    assert foreign.status_code == 400 and "another browser" in foreign.text
    assert "__Host-aigw_session" not in attacker.jar
    replay = victim.request("GET", callback)
    assert replay.status_code == 400 and "already used" in replay.text
    assert "__Host-aigw_session" not in victim.jar

    # A complete sign-in, then its response replayed in the same browser: refused.
    fresh = Browser(console.url)
    callback = fresh.sign_in("bob", stop=lambda url: "/auth/callback" in url)
    assert fresh.follow(fresh.request("GET", callback)).status_code == 200
    assert fresh.request("GET", callback).status_code == 400
    reasons = [_detail(r)["reason"] for r in console.audit("auth.login_failed", 3)]
    assert reasons.count("unknown_state") == 2 and "browser_mismatch" in reasons


def test_key_rotation_at_the_provider(console: Console) -> None:
    before = Browser(console.url)
    before.sign_in("bob")
    first = console.identity.oidc._keys.copy()
    old_token = obtain_id_token(console.provider, own_client(console), "bob")

    kids = console.provider.rotate()  # a new key signs; the old one stays published
    console.clock.offset += 11  # past jwks_refetch_interval_s since the last read
    after = Browser(console.url)
    assert after.sign_in("bob").status_code == 200
    assert set(console.identity.oidc._keys) == set(kids) and kids[0] not in first

    console.provider.rotate(retire=True)  # only a brand-new key remains
    console.clock.offset += 11
    assert Browser(console.url).sign_in("alice").status_code == 200
    with pytest.raises(SignInError) as refused:  # signed with a key no longer published
        validate(console, old_token)
    assert refused.value.reason == "unknown_signing_key"
    # Sessions opened before the rotation stay valid (they are the gateway's, not tokens).
    assert before.request("GET", "/admin/keys").status_code == 200


def test_expired_id_token_is_refused(
    openid_provider: OpenIDProvider, fake_openai: Any, fake_anthropic: Any, tmp_path: Path
) -> None:
    with console_gateway(
        openid_provider, fake_openai, fake_anthropic, tmp_path, id_token_ttl=60
    ) as console:
        browser = Browser(console.url)
        callback = browser.sign_in("bob", stop=lambda url: "/auth/callback" in url)
        # The provider's ID tokens live 60 s here; the gateway allows 60 s of clock skew.
        console.clock.offset = 60 + 60 + 1
        page = browser.follow(browser.request("GET", callback))
        assert page.status_code == 401 and "expired" in page.text
        assert "__Host-aigw_session" not in browser.jar
        assert [_detail(r)["reason"] for r in console.audit("auth.login_failed")] == [
            "expired_id_token"
        ]
        # Within the skew, the same kind of token is accepted (the control).
        console.clock.offset = 60 + 30
        assert Browser(console.url).sign_in("bob").status_code == 200


def test_id_token_for_another_audience_or_tampered_is_refused(console: Console) -> None:
    mine = obtain_id_token(console.provider, own_client(console), "bob")
    assert validate(console, mine)["sub"] == "bob"  # the control: a good token passes

    theirs = obtain_id_token(console.provider, OTHER_APP, "bob")
    with pytest.raises(SignInError) as wrong:
        validate(console, theirs)
    assert wrong.value.reason == "wrong_audience"

    header, payload, signature = mine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "alice"  # claim to be someone else, keep the signature
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(SignInError) as tampered:
        validate(console, f"{header}.{forged}.{signature}")
    assert tampered.value.reason == "bad_signature"

    unsigned = jwt.encode(claims, key=None, algorithm="none")
    with pytest.raises(SignInError) as none:
        validate(console, unsigned)
    assert none.value.reason == "algorithm_not_allowed"
    with pytest.raises(SignInError) as nonce:
        validate(console, mine, nonce="another-sign-in")
    assert nonce.value.reason == "nonce_mismatch"


def test_session_idle_and_absolute_timeouts(console: Console) -> None:
    idle = console.identity.sessions.idle_timeout_s
    absolute = console.identity.sessions.absolute_timeout_s
    lazy, busy = Browser(console.url), Browser(console.url)
    lazy.sign_in("bob")
    busy.sign_in("alice")
    start = console.clock.offset
    # Busy keeps using the console every half idle period; lazy does not.
    while console.clock.offset - start < idle + 1:
        console.clock.offset += idle / 2
        assert busy.request("GET", "/admin/keys").status_code == 200
    expired = lazy.request("GET", "/admin/keys")
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "session_expired"
    assert lazy.request("GET", "/auth/session").status_code == 401
    # However active, a session ends absolute_timeout_s after sign-in.
    while console.clock.offset - start < absolute - idle / 2:
        console.clock.offset += idle / 2
        assert busy.request("GET", "/admin/keys").status_code == 200
    console.clock.offset = start + absolute + 1
    assert busy.request("GET", "/admin/keys").status_code == 401


def test_logout_ends_the_session_on_the_server_and_at_the_provider(console: Console) -> None:
    browser = Browser(console.url)
    browser.sign_in("bob")
    kept = dict(browser.jar)  # a copy of the cookie, as a thief would keep it
    token = browser.csrf()
    assert browser.api("POST", "/auth/logout").status_code == 403  # CSRF applies here too
    out = browser.api("POST", "/auth/logout", csrf=token)
    assert out.status_code == 200 and "__Host-aigw_session" not in browser.jar
    # RP-initiated logout at the provider (it advertises end_session_endpoint).
    target = urlsplit(out.json()["redirect"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == (
        f"{console.provider.issuer}/session/end"
    )
    params = parse_qs(target.query)
    assert params["post_logout_redirect_uri"] == [f"{console.url}/console/"]
    assert jwt.decode(params["id_token_hint"][0], options={"verify_signature": False})["sub"] == (
        "bob"
    )
    # The provider's confirmation page, then back to the console.
    confirm = browser.follow(browser.request("GET", out.json()["redirect"]))
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', confirm.text))
    action = re.search(r'<form[^>]*action="([^"]+)"', confirm.text).group(1)
    back = browser.follow(
        browser.request("POST", str(confirm.url.join(action)), data={**form, "logout": "yes"}),
        stop=lambda url: url.startswith(console.url),
    )
    assert back.startswith(f"{console.url}/console/")
    # The kept cookie is worthless: the session is gone on the server.
    thief = Browser(console.url, jar=kept)
    assert thief.request("GET", "/admin/keys").status_code == 401
    [event] = console.audit("auth.logout")
    assert event["actor"] == "person:bob"


def test_sign_out_everywhere_and_revocation_by_an_org_admin(console: Console) -> None:
    laptop, phone = Browser(console.url), Browser(console.url)
    laptop.sign_in("bob")
    phone.sign_in("bob")
    ended = laptop.api("POST", "/auth/logout", csrf=laptop.csrf(), json={"everywhere": True})
    assert ended.json()["sessions_ended"] == 2
    assert phone.request("GET", "/admin/keys").status_code == 401

    carol = Browser(console.url)
    carol.sign_in("carol")
    # A team admin may not end other people's sessions; the org admin (admin key) may.
    bob = Browser(console.url)
    bob.sign_in("bob")
    denied = bob.api("POST", "/auth/sessions/revoke", csrf=bob.csrf(), json={"subject": "carol"})
    assert denied.status_code == 403
    revoked = httpx.post(
        f"{console.url}/auth/sessions/revoke",
        json={"subject": "carol"},
        headers={"authorization": f"Bearer {ADMIN}"},
    )
    assert revoked.json()["sessions_ended"] == 1
    assert carol.request("GET", "/admin/keys").status_code == 401
    assert bob.request("GET", "/admin/keys").status_code == 200
    [event] = console.audit("auth.sessions_revoked")
    assert event["actor"] == "admin_key" and _detail(event)["subject"] == "carol"


def test_sign_in_again_rotates_the_session_id(console: Console) -> None:
    browser = Browser(console.url)
    browser.sign_in("bob")
    first = browser.jar["__Host-aigw_session"]
    browser.sign_in("bob")
    second = browser.jar["__Host-aigw_session"]
    assert second != first
    stale = Browser(console.url, jar={"__Host-aigw_session": first})
    assert stale.request("GET", "/auth/session").status_code == 401


def test_break_glass_sign_in_with_the_admin_key_is_audited_as_such(
    openid_provider: OpenIDProvider, fake_openai: Any, fake_anthropic: Any, tmp_path: Path
) -> None:
    with console_gateway(
        openid_provider, fake_openai, fake_anthropic, tmp_path, identity={"admin_key_login": True}
    ) as console:
        browser = Browser(console.url)
        cross_site = browser.api(
            "POST", "/auth/admin-key", origin="https://evil.example", json={"admin_key": ADMIN}
        )
        assert cross_site.status_code == 403
        signed = browser.api("POST", "/auth/admin-key", json={"admin_key": ADMIN})
        assert signed.status_code == 200 and "__Host-aigw_session" in browser.jar
        me = browser.request("GET", "/auth/session").json()
        assert me["break_glass"] is True and me["role"] == "admin" and me["person"] is None
        made = browser.api(
            "POST", "/admin/keys", csrf=me["csrf_token"], json={"team_id": "t", "project_id": "p"}
        )
        assert made.status_code == 201
        [login] = console.audit("auth.break_glass_login")
        assert login["actor"] == "admin_key" and _detail(login)["client"] == "127.0.0.1"
        [event] = console.audit("key.create")
        assert event["actor"] == "admin_key"
        assert _detail(event)["actor"] == {"type": "admin_key", "break_glass": True}
        # Guessing is bounded: five wrong keys a minute, then 429 even for the right one.
        guesser = Browser(console.url)
        codes = [
            guesser.api("POST", "/auth/admin-key", json={"admin_key": f"guess-{i}"}).status_code
            for i in range(5)
        ]
        assert codes == [401] * 5
        locked = guesser.api("POST", "/auth/admin-key", json={"admin_key": ADMIN})
        assert locked.status_code == 429
        assert len(console.audit("auth.break_glass_failed", 5)) == 5


def test_admin_key_sign_in_is_off_by_default(console: Console) -> None:
    browser = Browser(console.url)
    refused = browser.api("POST", "/auth/admin-key", json={"admin_key": ADMIN})
    assert refused.status_code == 404 and "__Host-aigw_session" not in browser.jar


def test_console_only_from_the_allowed_networks_behind_a_trusted_proxy(
    openid_provider: OpenIDProvider, fake_openai: Any, fake_anthropic: Any, tmp_path: Path
) -> None:
    """``console_allowed_cidrs`` judged on the client's address: the loopback peer stands in
    for the edge's Envoy proxy (trusted), which appends the address it saw to X-Forwarded-For."""
    section = {
        "admin_key_login": True,
        "console_allowed_cidrs": ["10.0.0.0/8"],
        "trusted_proxies": ["127.0.0.1/32"],
    }
    with console_gateway(
        openid_provider, fake_openai, fake_anthropic, tmp_path, identity=section, sso=False
    ) as console:
        inside = {"x-forwarded-for": "10.1.2.3"}
        # A client outside the list that forges an inside address on the left: the proxy
        # appends the real one, which is judged.
        forged = {"x-forwarded-for": "10.1.2.3, 203.0.113.9"}
        assert Browser(console.url).request("GET", "/console/", headers=inside).status_code == 200
        page = Browser(console.url).request("GET", "/console/", headers=forged)
        assert page.status_code == 403 and "203.0.113.9" in page.text
        # No X-Forwarded-For: the trusted proxy itself is the client, outside the list.
        assert Browser(console.url).request("GET", "/auth/session").status_code == 403

        browser = Browser(console.url)
        signed = browser.api("POST", "/auth/admin-key", json={"admin_key": ADMIN}, headers=inside)
        assert signed.status_code == 200
        [login] = console.audit("auth.break_glass_login")
        assert _detail(login)["client"] == "10.1.2.3"  # the person's address, not the proxy's
        csrf = browser.request("GET", "/auth/session", headers=inside).json()["csrf_token"]
        assert browser.api("GET", "/admin/keys", headers=inside).status_code == 200
        # The same session cookie from outside the list: refused, even on the admin API.
        stolen = browser.api("GET", "/admin/keys", headers=forged)
        assert stolen.status_code == 403
        assert stolen.json()["error"]["code"] == "network_not_allowed"
        made = browser.api("POST", "/admin/keys", csrf=csrf, headers=forged, json={"team_id": "t"})
        assert made.status_code == 403
        # Automation with a key is not the console's: the allow-list does not apply to it.
        keyed = httpx.get(
            f"{console.url}/admin/keys", headers={"authorization": f"Bearer {ADMIN}", **forged}
        )
        assert keyed.status_code == 200
