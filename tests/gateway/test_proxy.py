"""Upstream calls through an enterprise egress proxy: HTTPS_PROXY, HTTP_PROXY, NO_PROXY.

A small proxy on loopback (CONNECT tunnels and absolute-form forwarding, the two
ways HTTP clients use one) records what it was asked; the gateway's upstream
client reaches a fake provider through it over plain HTTP and, through a
CONNECT tunnel, over TLS verified end to end against a private CA.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from gateway_app.transport import ProxySettings, RawUpstreamClient
from tests.fakes import FakeUpstream
from tests.gateway.conftest import run_async
from tests.gateway.governance.services import make_ca

CHAT = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "via"}]})


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


class Loopback:
    """A thread running an event loop for the proxy and the TLS front."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.seen: list[str] = []

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        line = head.split(b"\r\n", 1)[0].decode()
        self.seen.append(line)
        method, target, _ = line.split(" ")
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:  # absolute-form: forward to the origin with an origin-form request line
            url = urlsplit(target)
            up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port)
            path = url.path + (f"?{url.query}" if url.query else "")
            up_writer.write(head.replace(target.encode(), path.encode(), 1))
        await _splice(reader, writer, up_reader, up_writer)

    async def start_proxy(self) -> int:
        server = await asyncio.start_server(self._proxy, "127.0.0.1", 0)
        return server.sockets[0].getsockname()[1]

    async def start_tls_front(self, upstream_port: int, context: ssl.SSLContext) -> int:
        async def front(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
            await _splice(reader, writer, up_reader, up_writer)

        server = await asyncio.start_server(front, "127.0.0.1", 0, ssl=context)
        return server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def network() -> Iterator[dict[str, Any]]:
    """A fake provider over HTTP, the same behind TLS (private CA), and a proxy."""
    certs = tempfile.mkdtemp(prefix="aigw-proxy-ca-")
    ca, cert, key = make_ca(certs)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    side = Loopback()
    with FakeUpstream("openai") as fake:
        try:
            yield {
                "fake": fake,
                "ca": ca,
                "side": side,
                "proxy": side.run(side.start_proxy()),
                "tls": side.run(side.start_tls_front(fake.port, context)),
            }
        finally:
            side.stop()


def _post(client: RawUpstreamClient, url: str) -> tuple[int, bytes]:
    async def call() -> tuple[int, bytes]:
        await client.start()
        try:
            status, _, body = await client.post(
                url, {"content-type": "application/json"}, CHAT, timeout=10
            )
            return status, body
        finally:
            await client.close()

    return run_async(call())


def test_plain_http_upstream_goes_through_the_forward_proxy(network: dict[str, Any]) -> None:
    side, fake = network["side"], network["fake"]
    side.seen.clear()
    proxies = ProxySettings({"HTTP_PROXY": f"http://127.0.0.1:{network['proxy']}"})
    status, body = _post(RawUpstreamClient(proxies), fake.url + "/chat/completions")
    assert status == 200 and b"echo: via" in body
    assert side.seen == [f"POST http://127.0.0.1:{fake.port}/v1/chat/completions HTTP/1.1"]


def test_https_upstream_is_tunnelled_with_connect_and_verified_end_to_end(
    network: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    side = network["side"]
    side.seen.clear()
    monkeypatch.setenv("SSL_CERT_FILE", network["ca"])  # the upstream's private CA
    proxies = ProxySettings({"https_proxy": f"http://127.0.0.1:{network['proxy']}"})
    url = f"https://127.0.0.1:{network['tls']}/v1/chat/completions"
    status, body = _post(RawUpstreamClient(proxies), url)
    assert status == 200 and b"echo: via" in body
    assert side.seen == [f"CONNECT 127.0.0.1:{network['tls']} HTTP/1.1"]


def test_no_proxy_hosts_are_reached_directly(network: dict[str, Any]) -> None:
    side, fake = network["side"], network["fake"]
    side.seen.clear()
    proxies = ProxySettings(
        {"HTTP_PROXY": f"http://127.0.0.1:{network['proxy']}", "NO_PROXY": "localhost,127.0.0.0/8"}
    )
    status, _ = _post(RawUpstreamClient(proxies), fake.url + "/chat/completions")
    assert status == 200 and side.seen == []


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "direct"),
    [
        ("*", "api.openai.com", 443, True),
        ("openai.com", "api.openai.com", 443, True),
        (".openai.com", "api.openai.com", 443, True),
        ("openai.com", "notopenai.com", 443, False),
        ("10.0.0.0/8", "10.1.2.3", 443, True),
        ("10.0.0.0/8", "11.1.2.3", 443, False),
        ("internal.example:8443", "internal.example", 8443, True),
        ("internal.example:8443", "internal.example", 443, False),
        ("", "api.openai.com", 443, False),
    ],
)
def test_no_proxy_matching(no_proxy: str, host: str, port: int, direct: bool) -> None:
    proxies = ProxySettings({"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": no_proxy})
    assert (proxies.for_origin("https", host, port) is None) is direct


def test_proxy_settings_are_read_like_curl_and_checked() -> None:
    both = ProxySettings({"https_proxy": "http://u:p%40ss@low:1", "HTTPS_PROXY": "http://up:2"})
    proxy = both.for_origin("https", "api.openai.com", 443)
    assert proxy is not None and (proxy.host, proxy.port) == ("low", 1)
    assert proxy.authorization == "Basic dTpwQHNz"  # u:p@ss
    assert ProxySettings({}).for_origin("https", "api.openai.com", 443) is None
    with pytest.raises(ValueError, match="HTTPS_PROXY='socks5://p:1080'"):
        ProxySettings({"HTTPS_PROXY": "socks5://p:1080"})


def test_the_gateway_calls_its_providers_through_the_proxy(
    network: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As an operator sets it: HTTP_PROXY in the gateway's environment, nothing in the config."""
    from tests.gateway.conftest import serve

    side, fake = network["side"], network["fake"]
    side.seen.clear()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{network['proxy']}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    raw = {
        "providers": {"openai": {"type": "openai", "api_key": "sk-fake", "base_url": fake.url}},
        "models": {"m": {"deployments": [{"provider": "openai", "model": "gpt-4o-mini"}]}},
    }
    with serve(raw) as running:
        # The test's own client talks to the gateway directly (httpx would use the proxy too).
        direct = running.client(http_client=httpx.Client(trust_env=False))
        reply = direct.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "proxied"}]
        )
    assert reply.choices[0].message.content == "echo: proxied"
    assert side.seen == [f"POST http://127.0.0.1:{fake.port}/v1/chat/completions HTTP/1.1"]
