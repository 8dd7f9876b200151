"""The gateway benchmark: every target side by side in one run, on loopback.

Started by ``bench/run`` (which installs the tools first). Writes
``bench/results.json``; ``bench/report.py`` turns it into ``bench/RESULTS.md``.

Pinned mode (the headline): the target process runs on CPU 1; nginx (the fake
upstream), wrk (the load), redis-server and PostgreSQL share CPU 0. The
"floor" target is an nginx reverse proxy pinned like a gateway: what the
pinned topology itself costs per request (cross-CPU wake-ups) before any
gateway code runs.

Phases per target: start, warm up, RSS, then wrk at 1 connection (overhead,
no queueing), 16 and 64 connections (throughput), streams at 1 and 16
connections (added time to first byte; every stream must end with
``data: [DONE]``), RSS again, stop. Then, unless ``--overhead-cpu pinned``:
the 1-connection chat and stream runs of direct, floor, the default gateway
and the governance path again with every process on CPU 0 (at one connection
the path is serial, so this removes cross-CPU wake-ups). Then the
multi-process scaling targets (not pinned) at 16 and 64 connections. The
fixed-rate soak is a separate mode (``--soak SECONDS``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
CACHE = Path(os.environ.get("AIGW_BENCH_CACHE", Path.home() / ".cache" / "aigw" / "bench"))
CPU_LOAD, CPU_TARGET = "0", "1"
# The gateway targets' interpreter: the interpreter the gateway image ships (Debian
# bookworm's python3, PGO + LTO) with the locked gateway dependencies, built by
# bench/setup.sh; LiteLLM runs on the same interpreter. ``--python`` measures another.
SHIPPED = CACHE / "variants/bin/python"
TARGET_PYTHON = [str(SHIPPED)]  # set from --python in main()
# The stores' scheduling on the load CPU (--stores): "shared" (the default: normal
# priority, competing with wrk and the upstream) or "idle" (SCHED_IDLE: they run when
# wrk and the upstream wait, roughly as stores on hosts of their own would).
STORES = ["shared"]


def _store_cmd(cmd: list[str]) -> list[str]:
    return ["chrt", "--idle", "0", *cmd] if STORES[0] == "idle" else cmd


DIRECT = "direct (nginx)"
FLOOR = "floor: nginx reverse proxy (pinned like the gateway)"
DEFAULT = "gateway: own server + raw client (default)"
GOVERNED = (
    "gateway: full governance path (virtual key + limits + budget + audit; Redis + PostgreSQL)"
)
UNPINNED = "gateway: 1 process (unpinned)"
WORKERS = "gateway: 2 workers (unpinned)"
# The targets measured again with every process on one CPU (--overhead-cpu).
SAME_CPU = (DIRECT, FLOOR, DEFAULT, GOVERNED)
CACHED = "gateway: exact cache hits (in-process store)"
# LiteLLM refuses to start without a strong master key.
LITELLM_KEY = "sk-" + secrets.token_hex(32)
CHAT = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "bench-model",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 11, "completion_tokens": 9, "total_tokens": 20},
}


def _sse() -> str:
    chunks = []
    for i, piece in enumerate(["Hello", "!", " How", " can", " I", " help", "?"]):
        delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
        chunks.append(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": "bench-model",
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }
        )
    chunks.append(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "bench-model",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
    )
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


REQUEST = {
    "model": "bench-chat",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Say hello."},
    ],
    "max_tokens": 32,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (LiteLLM, node, granian and 2-worker gateways fork)."""
    found: list[int] = []
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        found.append(current)
        pids.extend(int(c) for c in children)
    return found


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants."""
    total = 0
    for current in _tree(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of ``pid`` and its live descendants."""
    ticks = 0
    for current in _tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def spawn(
    cmd: list[str], cpu: str | None, env: dict[str, str], log: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """``cmd`` on CPU ``cpu`` (None: unpinned), in its own process group."""
    return subprocess.Popen(
        ["taskset", "-c", cpu, *cmd] if cpu is not None else cmd,
        env=env,
        cwd=cwd,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped by pgid, nothing else
    )


# ----------------------------------------------------------------------- upstream


def start_nginx(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    (work / "chat.json").write_text(json.dumps(CHAT))
    (work / "stream.sse").write_text(_sse())
    conf = work / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
worker_processes 1;
error_log {work}/nginx-error.log warn;
pid {work}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fcgi; uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
  keepalive_requests 1000000; keepalive_timeout 300s;
  server {{
    listen 127.0.0.1:{port};
    client_body_buffer_size 64k;
    location = /v1/chat/completions {{
      default_type application/json;
      alias {work}/chat.json;
      error_page 405 =200 $uri;
    }}
    location = /stream/v1/chat/completions {{
      default_type text/event-stream;
      alias {work}/stream.sse;
      error_page 405 =200 $uri;
    }}
  }}
}}
"""
    )
    proc = spawn(
        ["nginx", "-p", str(work), "-c", str(conf)], CPU_LOAD, dict(os.environ), work / "nginx.log"
    )
    wait_port(port)
    return proc, port


def start_floor(work: Path, upstream: int, cpu: str | None) -> tuple[subprocess.Popen[bytes], int]:
    """nginx as a reverse proxy (C, next to no CPU per request), placed like a gateway.

    Its latency above direct is what the placement itself costs (loopback hops and
    cross-CPU wake-ups); a gateway's own cost is its latency above this floor.
    """
    port = free_port()
    home = work / f"floor-{port}"
    home.mkdir()
    conf = home / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
worker_processes 1;
error_log {home}/error.log warn;
pid {home}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {home}/body; proxy_temp_path {home}/proxy;
  fastcgi_temp_path {home}/fcgi; uwsgi_temp_path {home}/uwsgi; scgi_temp_path {home}/scgi;
  keepalive_requests 1000000; keepalive_timeout 300s;
  upstream bench_upstream {{
    server 127.0.0.1:{upstream};
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }}
  server {{
    listen 127.0.0.1:{port};
    client_body_buffer_size 64k;
    location / {{
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }}
  }}
}}
"""
    )
    proc = spawn(["nginx", "-p", str(home), "-c", str(conf)], cpu, dict(os.environ), home / "log")
    wait_port(port)
    return proc, port


# ----------------------------------------------------------------------- targets

# Governance and caching are configured by YAML appended to the gateway config
# (--gateway-extra-config) and env (--gateway-env NAME=VALUE) for the Redis targets.
EXTRA_CONFIG = ""
EXTRA_ENV: dict[str, str] = {}
_REDIS: dict[str, Any] = {}
_PG: dict[str, Any] = {}


def start_redis(work: Path) -> int:
    """One redis-server on loopback for the whole run (on the load CPU)."""
    if "port" not in _REDIS:
        port = free_port()
        cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
        cmd += ["--appendonly", "no", "--dir", str(work)]
        _REDIS["proc"] = spawn(_store_cmd(cmd), CPU_LOAD, dict(os.environ), work / "redis.log")
        _REDIS["port"] = port
        wait_port(port)
    return int(_REDIS["port"])


def redis_cli(*args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-p", str(_REDIS["port"]), *args], capture_output=True, text=True, timeout=10
    ).stdout


def _pg_bin(name: str) -> str:
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / name).exists():
            return str(root / name)
    return name  # on PATH, or the error names what is missing


def start_postgres(work: Path) -> str:
    """One private PostgreSQL for the run (on the load CPU); a fresh database per call.

    As tests/gateway/governance/services.py: initdb in a temp dir (as the ``postgres``
    user when we are root), trust auth, no fsync, loopback on a free port.
    """
    import psycopg

    if "port" not in _PG:
        home = work / "pg"
        home.mkdir()
        data = home / "data"
        as_user: list[str] = []
        if os.geteuid() == 0:
            import shutil

            shutil.chown(home, "postgres")
            as_user = ["runuser", "-u", "postgres", "--"]
        initdb = [*as_user, _pg_bin("initdb"), "-D", str(data), "-U", "postgres"]
        initdb += ["-A", "trust", "--no-sync"]
        subprocess.run(initdb, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = free_port()
        cmd = [*as_user, _pg_bin("postgres"), "-D", str(data), "-p", str(port)]
        for setting in (
            "listen_addresses=127.0.0.1",
            f"unix_socket_directories={home}",
            "fsync=off",
            "full_page_writes=off",
            "synchronous_commit=off",
        ):
            cmd += ["-c", setting]
        log = work / "postgres.log"
        _PG.update(proc=spawn(_store_cmd(cmd), CPU_LOAD, dict(os.environ), log), data=data)
        wait_port(port)
        _PG["port"] = port
        _PG["count"] = 0
        deadline = time.monotonic() + 30
        while True:  # the port opens before recovery finishes: wait until queries work
            try:
                psycopg.connect(_pg_url("postgres"), connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    _PG["count"] += 1
    name = f"aigw{_PG['count']}"
    with psycopg.connect(_pg_url("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    _PG["url"] = _pg_url(name)
    return str(_PG["url"])


def _pg_url(database: str) -> str:
    return f"postgresql://postgres@127.0.0.1:{_PG['port']}/{database}"


def stop_postgres() -> None:
    """Fast shutdown (SIGINT) of the postmaster by its PID (runuser forwards no signal)."""
    proc = _PG.pop("proc", None)
    if proc is None:
        return
    pid_file = Path(_PG["data"]) / "postmaster.pid"
    if pid_file.exists():
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        stop(proc)


@dataclass
class Target:
    name: str
    # start(work dir, upstream port, CPU list for taskset or None) -> (process, port)
    start: Callable[[Path, int, str | None], tuple[subprocess.Popen[bytes] | None, int]]
    headers: dict[str, str] = field(default_factory=dict)
    stream_headers: dict[str, str] = field(default_factory=dict)
    path: str = "/v1/chat/completions"
    stream_path: str = "/v1/chat/completions"
    # Called once the target listens, before any load: may set up keys and headers.
    prepare: Callable[[Target, int], None] | None = None
    # Called after the load: what the target recorded (e.g. audit events), for the results.
    check: Callable[[int], dict] | None = None
    alias: str = ""  # short name for --targets
    cpu: str | None = CPU_TARGET  # where the target runs (None: unpinned)


# A price for the fake model, so governance computes a real (non-zero) cost per request.
PRICE = "{input_per_mtok: 0.15, output_per_mtok: 0.6}"


def gateway_config(work: Path, upstream: int, extra: str = "") -> Path:
    config = work / "gateway.yaml"
    config.write_text(
        f"""
router:
  retry: {{max_retries: 2, backoff_base_s: 0.25, backoff_max_s: 8, deadline_s: 120}}
providers:
  bench:
    type: openai
    api_key: sk-bench
    base_url: http://127.0.0.1:{upstream}/v1
  bench-stream:
    type: openai
    api_key: sk-bench
    base_url: http://127.0.0.1:{upstream}/stream/v1
models:
  bench-chat:
    deployments: [{{provider: bench, model: bench-model, timeout_s: 30, price: {PRICE}}}]
  bench-stream:
    deployments: [{{provider: bench-stream, model: bench-model, timeout_s: 30, price: {PRICE}}}]
{extra}"""
    )
    return config


def gateway(
    server: str = "uvicorn",
    client: str | None = None,
    python: str | None = None,
    redis: bool = False,
    extra_config: str = "",
    extra_env: dict[str, str] | None = None,
    postgres: bool = False,
    workers: int = 1,
) -> Callable[[Path, int, str | None], tuple[subprocess.Popen[bytes], int]]:
    def start(work: Path, upstream: int, cpu: str | None) -> tuple[subprocess.Popen[bytes], int]:
        interpreter = python or TARGET_PYTHON[0]
        port = free_port()
        extra = Path(EXTRA_CONFIG).read_text() if EXTRA_CONFIG else ""
        extra = extra_config.replace("{work}", str(work)) + extra
        env = dict(os.environ, AIGW_CONFIG=str(gateway_config(work, upstream, extra)))
        env.update(extra_env or {})
        if redis:
            env["AIGW_REDIS_URL"] = f"redis://127.0.0.1:{start_redis(work)}/0"
            env.update(EXTRA_ENV)
        # ``python -m`` puts the working directory first on sys.path, ahead of PYTHONPATH:
        # run from ROOT so the tree measured is this file's, wherever the bench is started
        # (bench/partial-native.md: runs started elsewhere measured that checkout instead).
        env["PYTHONPATH"] = str(ROOT)
        if postgres:
            env["AIGW_DATABASE_URL"] = start_postgres(work)
            migrate = subprocess.run(
                [interpreter, "-m", "gateway_app", "migrate"],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if migrate.returncode:
                raise RuntimeError(f"migrate failed: {migrate.stdout}{migrate.stderr}")
        if client:
            env["AIGW_UPSTREAM_CLIENT"] = client
        if server == "granian":
            cmd = [
                str(Path(interpreter).parent / "granian"),
                "--interface",
                "asgi",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--loop",
                "uvloop",
                "--no-ws",
                "--log-level",
                "warning",
                "gateway_app.app:create_app",
            ]
        else:
            cmd = [interpreter, "-m", "gateway_app", "serve", "--port", str(port)]
            cmd += ["--log-level", "warning", "--server", server, "--workers", str(workers)]
        proc = spawn(cmd, cpu, env, work / f"gateway-{server}-{client}-{port}.log", cwd=ROOT)
        wait_port(port)
        return proc, port

    return start


def litellm(work: Path, upstream: int, cpu: str | None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = work / "litellm.yaml"
    config.write_text(
        f"""
model_list:
  - model_name: bench-chat
    litellm_params: {{model: openai/bench-model, api_base: "http://127.0.0.1:{upstream}/v1", api_key: sk-bench}}
  - model_name: bench-stream
    litellm_params: {{model: openai/bench-model, api_base: "http://127.0.0.1:{upstream}/stream/v1", api_key: sk-bench}}
litellm_settings: {{telemetry: false, drop_params: true}}
"""
    )
    env = dict(
        os.environ,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_TELEMETRY="False",
        LITELLM_LOG="ERROR",
        LITELLM_MASTER_KEY=LITELLM_KEY,
    )
    cmd = [str(CACHE / "litellm/bin/litellm"), "--config", str(config)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    proc = spawn(cmd, cpu, env, work / "litellm.log")
    wait_port(port, 180)
    return proc, port


def portkey(work: Path, upstream: int, cpu: str | None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    entry = CACHE / "portkey/node_modules/@portkey-ai/gateway/build/start-server.js"
    cmd = [
        "node",
        "--import",
        str(BENCH / "loopback.mjs"),
        str(entry),
        f"--port={port}",
        "--headless",
    ]
    proc = spawn(cmd, cpu, dict(os.environ), work / "portkey.log")
    wait_port(port, 60)
    return proc, port


# ----------------------------------------------------------------------- governance, cache

ADMIN_KEY = "aigw-admin-" + secrets.token_hex(16)
# Durable records (keys, limits, audit) in the run's PostgreSQL (AIGW_DATABASE_URL).
GOVERNANCE_CONFIG = """
governance:
  enabled: true
"""
# Limits far above what one core can serve in a run: every check runs, none rejects.
HIGH_LIMITS = {"daily_usd": 1e6, "monthly_usd": 1e7, "rpm": 10_000_000, "tpm": 10_000_000_000}
CACHE_CONFIG = """
cache:
  enabled: true
"""


def _call(port: int, method: str, path: str, body: dict | None, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **headers},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), json.loads(response.read() or b"null")


def prepare_governance(target: Target, port: int) -> None:
    """A virtual key through the admin API, high limits at every level, the key as Bearer."""
    redis_cli("config", "resetstat")  # commandstats of this target only
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    body = {"team_id": "bench-team", "project_id": "bench-project", "name": "bench"}
    _, _, created = _call(port, "POST", "/admin/keys", body, admin)
    for scope, scope_id in (
        ("org", "*"),
        ("team", "bench-team"),
        ("project", "bench-project"),
        ("key", created["id"]),
        ("customer", "*"),
    ):
        _call(port, "PUT", f"/admin/limits/{scope}/{scope_id}", HIGH_LIMITS, admin)
    bearer = {"Authorization": f"Bearer {created['key']}"}
    target.headers.update(bearer)
    target.stream_headers.update(bearer)
    status, headers, _ = _call(port, "POST", "/v1/chat/completions", REQUEST, bearer)
    shown = {k: v for k, v in headers.items() if k.lower().startswith("x-ratelimit")}
    print(f"   governance: key {created['id']}, first request {status}, {shown}", flush=True)
    try:
        _call(port, "POST", "/v1/chat/completions", REQUEST, {"Authorization": "Bearer sk-nope"})
        raise RuntimeError("governance is not on: an unknown key was accepted")
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            raise


def check_governance(port: int) -> dict:
    """Audit rows in PostgreSQL and Redis commands after the load (audit flushes every 0.2 s)."""
    import psycopg

    time.sleep(1.5)
    with psycopg.connect(_PG["url"]) as conn:
        rows = conn.execute("SELECT kind, count(*) FROM audit_events GROUP BY kind").fetchall()
        requests = conn.execute(
            "SELECT model, count(*) FROM audit_events WHERE kind = 'request' GROUP BY model"
        ).fetchall()
    # A private server whose stats were reset before this target's first request.
    calls = {
        line.split(":")[0].removeprefix("cmdstat_"): int(line.split("calls=")[1].split(",")[0])
        for line in redis_cli("info", "commandstats").splitlines()
        if line.startswith("cmdstat_")
    }
    return {
        "audit_rows": dict(rows),
        "audit_requests_by_model": dict(requests),
        "redis_calls": calls,
    }


def prepare_cache(target: Target, port: int) -> None:
    """Fill the cache with the one request body, then check the next answer is a hit."""
    _call(port, "POST", "/v1/chat/completions", REQUEST, target.headers)
    _, headers, _ = _call(port, "POST", "/v1/chat/completions", REQUEST, target.headers)
    outcome = {k.lower(): v for k, v in headers.items()}.get("x-cache")
    if outcome != "hit":
        raise RuntimeError(f"the second identical request was not a cache hit: x-cache={outcome}")
    print("   cache: x-cache: hit on the second identical request", flush=True)


# ----------------------------------------------------------------------- load


def wrk(
    port: int,
    path: str,
    headers: dict[str, str],
    body: dict,
    conns: int,
    seconds: int,
    work: Path,
    check_done: bool = False,
) -> dict:
    request = work / "request.txt"
    lines = [f"{k}: {v}" for k, v in {"Content-Type": "application/json", **headers}.items()]
    request.write_text("\n".join(lines) + "\n\n" + json.dumps(body))
    env = dict(os.environ, WRK_REQUEST=str(request), WRK_CHECK_DONE="1" if check_done else "0")
    cmd = ["taskset", "-c", CPU_LOAD, "wrk", "-t1", f"-c{conns}", f"-d{seconds}s"]
    cmd += ["--timeout", "10s", "-s", str(BENCH / "wrk.lua"), f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 30)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            result = json.loads(line[8:])
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
            result["errors"] = sum(
                result[k] for k in ("connect", "read", "write", "status", "timeout", "broken")
            )
            return result
    raise RuntimeError(f"wrk gave no result: {out.stdout}{out.stderr}")


def sample_stream(port: int, path: str, headers: dict[str, str]) -> str:
    """The head and tail of one streamed response (to show why a stream counts as broken)."""
    body = json.dumps(dict(REQUEST, model="bench-stream", stream=True)).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode(errors="replace")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return text if len(text) < 400 else text[:200] + " ... " + text[-200:]


def cpu_pairs(
    plain: Target,
    governed: Target,
    work: Path,
    upstream: int,
    seconds: int,
    rounds: int,
    conns: int = 16,
) -> dict:
    """CPU per request of the plain and governed paths measured in alternating rounds.

    The targets' own runs are a minute or more apart, and on a shared VM the speed moves
    within minutes: the same code's governance/plain ratio read 1.16x-1.63x in eight runs
    of the targets within 50 minutes (``bench/partial-cpu-pairs.md``). Here both gateways
    run at once, pinned alike, and ``rounds`` rounds of ``seconds`` at ``conns``
    connections alternate between them in the order plain, governed, governed, plain, ...
    (ABBA: a steady drift weighs on both alike). Each window's CPU is the measured
    process's own; the idle one's in the same window is recorded too
    (``idle_cpu_us_per_s``: its timers, on the same CPU)."""
    sides = {"plain": plain, "governed": governed}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    ports: dict[str, int] = {}
    chat = dict(REQUEST)
    try:
        for side, target in sides.items():
            home = work / f"pairs-{side}"
            home.mkdir(exist_ok=True)
            proc, port = target.start(home, upstream, target.cpu)
            assert proc is not None, f"{target.name} runs no process of its own"
            procs[side], ports[side] = proc, port
            if target.prepare:
                target.prepare(target, port)
            wrk(port, target.path, target.headers, chat, conns, 2, work)  # warm-up
        runs: list[dict] = []
        for index in range(rounds):
            order = ("plain", "governed") if index % 2 == 0 else ("governed", "plain")
            row: dict = {}
            for side in order:
                target, other = sides[side], "governed" if side == "plain" else "plain"
                cpu, idle = cpu_seconds(procs[side].pid), cpu_seconds(procs[other].pid)
                began = time.monotonic()
                run = wrk(ports[side], target.path, target.headers, chat, conns, seconds, work)
                spent = time.monotonic() - began
                run["cpu_s"] = cpu_seconds(procs[side].pid) - cpu
                run["cpu_us_per_req"] = 1e6 * run["cpu_s"] / max(run["requests"], 1)
                run["idle_cpu_us_per_s"] = 1e6 * (cpu_seconds(procs[other].pid) - idle) / spent
                row[side] = run
            row["ratio"] = row["governed"]["cpu_us_per_req"] / row["plain"]["cpu_us_per_req"]
            runs.append(row)
            print(
                f"   round {index + 1}: plain {row['plain']['cpu_us_per_req']:.1f} µs, "
                f"governed {row['governed']['cpu_us_per_req']:.1f} µs: {row['ratio']:.3f}x",
                flush=True,
            )
        totals = {
            side: 1e6
            * sum(r[side]["cpu_s"] for r in runs)
            / max(sum(r[side]["requests"] for r in runs), 1)
            for side in sides
        }
        ratios = sorted(r["ratio"] for r in runs)
        result = {
            "conns": conns,
            "seconds": seconds,
            "rounds": runs,
            "plain_cpu_us_per_req": totals["plain"],
            "governed_cpu_us_per_req": totals["governed"],
            "ratio": totals["governed"] / totals["plain"],
            "ratio_min": ratios[0],
            "ratio_median": statistics.median(ratios),
            "ratio_max": ratios[-1],
            "errors": sum(r[side]["errors"] for r in runs for side in sides),
        }
        if governed.check:
            result["check"] = governed.check(ports["governed"])
        return result
    finally:
        for proc in procs.values():
            stop(proc)


def measure(
    target: Target,
    work: Path,
    upstream: int,
    seconds: int,
    conns_list: tuple[int, ...] = (1, 16, 64),
    stream_conns: tuple[int, ...] = (1, 16),
) -> dict:
    proc, port = target.start(work, upstream, target.cpu)
    try:
        if target.prepare:
            target.prepare(target, port)
        chat = dict(REQUEST)
        stream = dict(REQUEST, model="bench-stream", stream=True)
        wrk(port, target.path, target.headers, chat, 16, 2, work)  # warm-up
        wrk(port, target.stream_path, target.stream_headers, stream, 4, 1, work)
        pid = proc.pid if proc else None
        before = rss_kib(pid) if pid else 0
        result: dict = {"rss_before_kib": before}
        if proc:
            result["cpu"] = target.cpu or "unpinned"
        for conns in conns_list:
            cpu = cpu_seconds(pid) if pid else 0.0
            run = wrk(port, target.path, target.headers, chat, conns, seconds, work)
            if pid and run["requests"]:
                # The target's process and its children (workers, LiteLLM's and node's forks).
                run["cpu_us_per_req"] = 1e6 * (cpu_seconds(pid) - cpu) / run["requests"]
            result[f"chat_c{conns}"] = run
        for conns in stream_conns:
            result[f"stream_c{conns}"] = wrk(
                port, target.stream_path, target.stream_headers, stream, conns, seconds, work, True
            )
        result["rss_after_kib"] = rss_kib(pid) if pid else 0
        if target.check:
            result["check"] = target.check(port)
        if stream_conns:
            result["stream_sample"] = sample_stream(port, target.stream_path, target.stream_headers)
        return result
    finally:
        if proc:
            stop(proc)


# ----------------------------------------------------------------------- soak


async def _soak_load(
    port: int, rate: float, seconds: float, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"{extra}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    ok = errors = 0
    interval = 1.0 / rate
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        if head.startswith(b"HTTP/1.1 200"):
            ok += 1
        else:
            errors += 1
        n += 1
        delay = start + n * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    writer.close()
    return ok, errors


def soak(work: Path, upstream: int, seconds: int, rate: float, target: Target) -> dict:
    """``rate`` req/s on one connection for ``seconds`` against ``target``; RSS every 10 s."""
    proc, port = target.start(work, upstream, target.cpu)
    assert proc is not None
    samples: list[tuple[float, int]] = []
    try:
        if target.prepare:
            target.prepare(target, port)
        body = json.dumps(REQUEST).encode()
        asyncio.run(_soak_load(port, rate, 20, body, target.headers))  # warm-up
        loads = []

        async def run() -> None:
            task = asyncio.create_task(_soak_load(port, rate, seconds, body, target.headers))
            begin = time.monotonic()
            while not task.done():
                samples.append((time.monotonic() - begin, rss_kib(proc.pid)))
                await asyncio.wait({task}, timeout=10)
            loads.append(task.result())

        asyncio.run(run())
        samples.append((float(seconds), rss_kib(proc.pid)))
    finally:
        stop(proc)
    ok, errors = loads[0]
    first = samples[0][1]
    return {
        "target": target.name,
        "seconds": seconds,
        "rate": rate,
        "ok": ok,
        "errors": errors,
        "samples": samples,
        "growth_pct": 100.0 * (samples[-1][1] - first) / first,
        "max_growth_pct": 100.0 * (max(s for _, s in samples) - first) / first,
    }


# ----------------------------------------------------------------------- profile


def profile(
    work: Path,
    upstream: int,
    seconds: int,
    target: Target | None = None,
    conns: int = 1,
    raw: Path | None = None,
) -> dict:
    """py-spy samples of a gateway target (default: the default gateway) under ``conns``.

    ``raw``: where to keep py-spy's collapsed stacks (for a flame graph or a diff of two
    targets' stacks).
    """
    if target is None:
        target = Target(DEFAULT, gateway("httptools", "raw"))
    proc, port = target.start(work, upstream, target.cpu)
    assert proc is not None
    try:
        if target.prepare:
            target.prepare(target, port)
        chat = dict(REQUEST)
        wrk(port, "/v1/chat/completions", target.headers, chat, 1, 2, work)
        out = work / "profile.txt"
        spy = subprocess.Popen(
            [
                str(CACHE / "variants/bin/py-spy"),
                "record",
                "--pid",
                str(proc.pid),
                "--duration",
                str(seconds),
                "--rate",
                "2000",
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        load = wrk(port, "/v1/chat/completions", target.headers, chat, conns, seconds + 1, work)
        spy.wait(60)
        if raw is not None:
            shutil.copyfile(out, raw)
    finally:
        stop(proc)
    inclusive: dict[str, int] = {}
    leaf: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
            if " (" in f
            else f
            for f in stack.split(";")
        ]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
        leaf[frames[-1]] = leaf.get(frames[-1], 0) + n

    def top(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:25]
        return [(name, round(100 * n / total, 1)) for name, n in ranked]

    return {
        "samples": total,
        "conns": conns,
        "rps": load["rps"],
        "self": top(leaf),
        "inclusive": top(inclusive),
    }


# ----------------------------------------------------------------------- json


def json_comparison() -> dict[str, float]:
    """Microseconds to parse a chat request and serialize a chat response."""
    import timeit

    import orjson

    request, response = json.dumps(REQUEST).encode(), CHAT
    n = 20000
    return {
        "json (stdlib)": 1e6
        * timeit.timeit(lambda: (json.loads(request), json.dumps(response).encode()), number=n)
        / n,
        "orjson": 1e6
        * timeit.timeit(lambda: (orjson.loads(request), orjson.dumps(response)), number=n)
        / n,
    }


# ----------------------------------------------------------------------- report


def versions() -> dict[str, str]:
    def cmd(*args: str) -> str:
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=60)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "n/a"

    import importlib.metadata as md

    target_python = cmd(
        TARGET_PYTHON[0], "-c", "import sys; print(sys.version.split()[0], sys.base_prefix)"
    )
    found = {
        # The gateway targets' interpreter (version, installation) and the harness's.
        "python": target_python,
        "python (harness)": platform.python_version(),
        "nginx": cmd("nginx", "-v"),
        "wrk": cmd("wrk", "-v"),
    }
    for pkg in ("uvicorn", "uvloop", "httptools", "aiohttp", "orjson"):
        found[pkg] = md.version(pkg)
    found["litellm"] = cmd(
        str(CACHE / "litellm/bin/python"),
        "-c",
        "import importlib.metadata as m; print(m.version('litellm'))",
    )
    pkg = CACHE / "portkey/node_modules/@portkey-ai/gateway/package.json"
    found["@portkey-ai/gateway"] = json.loads(pkg.read_text())["version"] if pkg.exists() else "n/a"
    found["node"] = cmd("node", "--version")
    return found


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return f"{cpu}, {os.cpu_count()} CPUs, {int(mem) // 1024} MiB RAM, {platform.platform()}"


def governed(server: str, python: str | None, name: str, alias: str) -> Target:
    """The full governance path (Redis + PostgreSQL, a virtual key with limits) on ``server``."""
    return Target(
        name,
        gateway(
            server,
            "raw",
            python,
            redis=True,
            postgres=True,
            extra_config=GOVERNANCE_CONFIG,
            extra_env={"AIGW_ADMIN_KEY": ADMIN_KEY},
        ),
        prepare=prepare_governance,
        check=check_governance,
        alias=alias,
    )


def build_targets() -> tuple[list[Target], list[Target]]:
    """(pinned targets, multi-process scaling targets); header values may name {u}."""
    portkey_headers = {"x-portkey-provider": "openai", "Authorization": "Bearer sk-bench"}
    pinned = [
        Target(
            DIRECT,
            lambda w, u, c: (None, u),
            stream_path="/stream/v1/chat/completions",
            alias="direct",  # no process of its own: wrk talks to the upstream on CPU 0
        ),
        Target(FLOOR, start_floor, stream_path="/stream/v1/chat/completions", alias="floor"),
        Target(DEFAULT, gateway("httptools", "raw"), alias="default"),
        Target(
            "gateway + Redis (circuit state)",
            gateway("httptools", "raw", redis=True),
            alias="redis",
        ),
        # The server decision (issue 20): the same full governance path on each server.
        governed("httptools", None, GOVERNED, "governance"),
        governed("uvicorn", None, f"{GOVERNED}, on uvicorn", "governance-uvicorn"),
        governed(
            "granian",
            str(SHIPPED),
            f"{GOVERNED}, on granian",
            "governance-granian",
        ),
        Target(
            CACHED,
            gateway("httptools", "raw", extra_config=CACHE_CONFIG),
            prepare=prepare_cache,
            alias="cache",
        ),
        Target("gateway: uvicorn + raw client", gateway("uvicorn", "raw"), alias="uvicorn"),
        Target(
            "gateway: uvicorn + aiohttp (before)",
            gateway("uvicorn", "aiohttp"),
            alias="uvicorn-aiohttp",
        ),
        Target("gateway: own server + aiohttp", gateway("httptools", "aiohttp"), alias="aiohttp"),
        Target(
            "gateway: granian + raw client",
            gateway("granian", "raw", str(SHIPPED)),
            alias="granian",
        ),
        Target(
            "LiteLLM proxy",
            litellm,
            {"Authorization": f"Bearer {LITELLM_KEY}"},
            {"Authorization": f"Bearer {LITELLM_KEY}"},
            alias="litellm",
        ),
        Target(
            "Portkey gateway",
            portkey,
            {**portkey_headers, "x-portkey-custom-host": "http://127.0.0.1:{u}/v1"},
            {**portkey_headers, "x-portkey-custom-host": "http://127.0.0.1:{u}/stream/v1"},
            alias="portkey",
        ),
    ]
    scaling = [
        Target(UNPINNED, gateway("httptools", "raw"), alias="unpinned", cpu=None),
        Target(WORKERS, gateway("httptools", "raw", workers=2), alias="workers", cpu=None),
    ]
    return pinned, scaling


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5, help="per wrk run")
    parser.add_argument(
        "--targets",
        default="all",
        help="comma-separated target names or aliases (direct, floor, default, redis, "
        "governance, governance-uvicorn, governance-granian, cache, uvicorn, uvicorn-aiohttp, "
        "aiohttp, granian, litellm, portkey, "
        "unpinned, workers), 'all' or 'none'",
    )
    parser.add_argument(
        "--overhead-cpu",
        choices=("pinned", "same", "both"),
        default="both",
        help="pinned: the pinned runs only; same: only the 1-connection runs of direct, floor, "
        "default and governance with every process on CPU 0; both (default): pinned, then same",
    )
    parser.add_argument("--soak", type=int, default=0, help="soak seconds (0: skip)")
    parser.add_argument("--soak-rate", type=float, default=200.0)
    parser.add_argument(
        "--soak-target", default="governance", help="target name or alias for the soak"
    )
    parser.add_argument("--profile", type=int, default=0, help="py-spy seconds (0: skip)")
    parser.add_argument("--profile-target", default=DEFAULT, help="target name or alias")
    parser.add_argument("--profile-out", default=str(BENCH / "profile.json"))
    parser.add_argument("--profile-conns", type=int, default=1, help="wrk connections profiled")
    parser.add_argument(
        "--profile-raw", default="", help="keep py-spy's collapsed stacks in this file"
    )
    parser.add_argument("--out", default=str(BENCH / "results.json"))
    parser.add_argument("--gateway-extra-config", default="", help="YAML appended (Redis targets)")
    parser.add_argument("--gateway-env", action="append", default=[], help="NAME=VALUE")
    parser.add_argument("--conns", default="1,16,64", help="chat wrk connection counts")
    parser.add_argument(
        "--cpu-pairs",
        type=int,
        default=6,
        help="rounds of the plain and governance paths' CPU per request measured alternately, "
        "both gateways running (each round --seconds per path at 16 connections; 0: skip); "
        "run when both the default and governance targets are chosen",
    )
    parser.add_argument("--no-streams", action="store_true", help="skip the stream runs")
    parser.add_argument(
        "--python",
        default=str(SHIPPED),
        help="the gateway targets' interpreter (default: the shipped one, from bench/setup.sh: "
        "Debian's python3 with the locked gateway dependencies); granian targets keep it",
    )
    parser.add_argument(
        "--stores",
        choices=("shared", "idle"),
        default="shared",
        help="redis-server's and PostgreSQL's scheduling on the load CPU: shared (default, "
        "normal priority beside wrk and the upstream) or idle (SCHED_IDLE: as stores on "
        "hosts of their own would, they do not delay the load or the upstream)",
    )
    args = parser.parse_args()
    STORES[0] = args.stores
    if not Path(args.python).exists():
        parser.error(f"--python {args.python}: not found; run bench/setup.sh (it builds it)")
    TARGET_PYTHON[0] = args.python
    global EXTRA_CONFIG
    EXTRA_CONFIG = args.gateway_extra_config
    EXTRA_ENV.update(item.split("=", 1) for item in args.gateway_env)

    pinned, scaling = build_targets()
    every = pinned + scaling
    known = {t.name for t in every} | {t.alias for t in every}
    wanted = None if args.targets == "all" else set(args.targets.split(",")) - {"none", ""}
    unknown = (wanted or set()) - known
    if unknown:
        parser.error(
            f"unknown targets {sorted(unknown)}; known aliases: "
            + ", ".join(t.alias for t in every)
        )

    def chosen(target: Target) -> bool:
        return wanted is None or target.name in wanted or target.alias in wanted

    conns_list = tuple(int(c) for c in args.conns.split(","))
    stream_conns: tuple[int, ...] = () if args.no_streams else (1, 16)
    # (section, target as run, chat connection counts, stream connection counts)
    plan: list[tuple[str, Target, tuple[int, ...], tuple[int, ...]]] = []
    if args.overhead_cpu != "same":
        plan += [("targets", t, conns_list, stream_conns) for t in pinned if chosen(t)]
    if args.overhead_cpu != "pinned":
        plan += [
            ("same_cpu", replace(t, cpu=CPU_LOAD), (1,), stream_conns[:1])
            for t in pinned
            if t.name in SAME_CPU and chosen(t)
        ]
    if args.overhead_cpu != "same":
        plan += [("scaling", t, (16, 64), ()) for t in scaling if chosen(t)]

    results: dict = {
        "machine": machine(),
        "versions": versions(),
        "seconds": args.seconds,
        "json_us": json_comparison(),
        "load": os.getloadavg(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "cpus": {"load": CPU_LOAD, "target": CPU_TARGET, "stores": STORES[0]},
        "targets": {},
        "same_cpu": {},
        "scaling": {},
    }
    by_alias = {t.alias: t for t in pinned}
    pairs = (
        args.cpu_pairs > 0
        and args.overhead_cpu != "same"
        and chosen(by_alias["default"])
        and chosen(by_alias["governance"])
    )
    with tempfile.TemporaryDirectory(prefix="aigw-bench-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # nginx workers run as an unprivileged user
        nginx, upstream = start_nginx(work)
        try:
            for section, template, conns, streams in plan:
                # Fresh header dicts per run: prepare (governance) adds the key to them.
                target = replace(
                    template,
                    headers={k: v.format(u=upstream) for k, v in template.headers.items()},
                    stream_headers={
                        k: v.format(u=upstream) for k, v in template.stream_headers.items()
                    },
                )
                where = "unpinned" if target.cpu is None else f"CPU {target.cpu}"
                print(f"== [{section}] {target.name} ({where})", flush=True)
                try:
                    results[section][target.name] = measure(
                        target, work, upstream, args.seconds, conns, streams
                    )
                except Exception as exc:  # a peer failing to start must not lose the run
                    results[section][target.name] = {"error": f"{type(exc).__name__}: {exc}"}
                    print(f"   failed: {exc}", flush=True)
            if pairs:
                print(
                    f"== [cpu_pairs] {DEFAULT} and {GOVERNED}: {args.cpu_pairs} alternating "
                    f"rounds of {args.seconds}s at 16 connections (CPU {CPU_TARGET})",
                    flush=True,
                )
                plain, governed = (
                    replace(by_alias[a], headers={}, stream_headers={})
                    for a in ("default", "governance")
                )
                try:
                    results["cpu_pairs"] = cpu_pairs(
                        plain, governed, work, upstream, args.seconds, args.cpu_pairs
                    )
                except Exception as exc:
                    results["cpu_pairs"] = {"error": f"{type(exc).__name__}: {exc}"}
                    print(f"   failed: {exc}", flush=True)
            if args.profile:
                print(f"== profile {args.profile}s", flush=True)
                target = next(t for t in every if args.profile_target in (t.name, t.alias))
                results["profile"] = profile(
                    work,
                    upstream,
                    args.profile,
                    target,
                    conns=args.profile_conns,
                    raw=Path(args.profile_raw) if args.profile_raw else None,
                )
                results["profile"]["target"] = target.name
            if args.soak:
                print(f"== soak {args.soak}s at {args.soak_rate} req/s", flush=True)
                template = next(t for t in every if args.soak_target in (t.name, t.alias))
                target = replace(template, headers=dict(template.headers))
                results["soak"] = soak(work, upstream, args.soak, args.soak_rate, target)
        finally:
            stop(nginx)
            if "proc" in _REDIS:
                stop(_REDIS.pop("proc"))
            stop_postgres()
    # Each part has its own file, so a soak or profile run keeps the last full comparison.
    if results["targets"] or results["same_cpu"] or results["scaling"]:
        Path(args.out).write_text(json.dumps(results, indent=1))
        print(f"wrote {args.out}")
    for part in ("soak", "profile"):
        if part in results:
            path = Path(args.profile_out) if part == "profile" else BENCH / f"{part}.json"
            path.write_text(json.dumps({part: results[part], "started": results["started"]}))
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
