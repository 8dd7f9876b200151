"""``aigw admin`` against a running gateway: the installed command, its settings, its output.

The gateway is the real app with governance (SQLite, in-process state) on a
loopback port; the CLI runs as the user runs it (the ``aigw`` console script in a
subprocess) for the issue's two commands, and in-process for the rest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from gateway_app.cli import main
from tests.fakes.fakes import ok
from tests.gateway.governance.test_gateway_governance import ADMIN, Admin, governed

AIGW = Path(sys.executable).with_name("aigw")


@pytest.fixture
def gateway(fake_openai: Any, fake_anthropic: Any, tmp_path: Path) -> Iterator[Any]:
    with governed(fake_openai, fake_anthropic, tmp_path) as (running, _gov):
        yield running


@pytest.fixture
def env(gateway: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    values = {"AIGW_URL": gateway.url, "AIGW_ADMIN_TOKEN": ADMIN}
    for name in ("AIGW_URL", "AIGW_ADMIN_TOKEN", "AIGW_CA_FILE", "AIGW_ADMIN_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/aigw/admin.toml of the machine's
    return values


def aigw(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AIGW), "admin", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def eventually(read: Any, timeout: float = 10.0) -> Any:
    """``read()`` once it returns something (the audit drainer writes within moments)."""
    deadline = time.monotonic() + timeout
    while not (found := read()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["admin", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_create_a_team_key_with_a_budget_then_read_the_team_spend(
    gateway: Any, env: dict[str, str], fake_openai: Any
) -> None:
    created = aigw(env, "keys", "create", "--team", "t", "--budget-monthly", "100", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["key"].startswith("sk-aigw-") and key["team_id"] == "t"
    assert key["limit"]["monthly_usd"] == 100.0
    assert "shown once" in created.stderr
    assert Admin(gateway.url)("GET", f"/admin/limits/key/{key['id']}").json()["monthly_usd"] == 100

    fake_openai.script(*[ok(usage=(1_000_000, 100_000))] * 2)  # $0.15 + $0.06 each
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key["key"], max_retries=0)
    for _ in range(2):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )

    usage = Admin(gateway.url)
    eventually(
        lambda: (
            sum(r["requests"] for r in usage("GET", "/admin/analytics/usage").json()["data"]) == 2
        )
    )
    spent = aigw(env, "spend", "--team", "t", "--json")
    assert spent.returncode == 0, spent.stderr
    report = json.loads(spent.stdout)
    assert report["total"]["cost_usd"] == pytest.approx(2 * (0.15 + 0.06))
    assert report["team_id"] == "t" and report["group_by"] == ["day"]
    assert [row["requests"] for row in report["data"]] == [2]
    assert report["budget"] is None  # the key has a budget; the team has none

    text = aigw(env, "spend", "--team", "t", "--by", "model")
    assert text.returncode == 0 and "gpt-4o-mini" in text.stdout and "total $0.42" in text.stdout


def test_settings_from_a_config_file_and_the_commands(
    gateway: Any, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tmp_path / "token"
    token.write_text(ADMIN + "\n")
    config = tmp_path / "admin.toml"
    config.write_text(f'[prod]\nurl = "{gateway.url}"\ntoken_file = "{token}"\n')
    where = ["--config", str(config), "--profile", "prod"]

    code, out, _ = cli(
        capsys,
        "keys",
        "create",
        "--team",
        "t2",
        "--project",
        "p2",
        "--name",
        "svc",
        "--role",
        "team_admin",
        "--json",
        *where,
    )
    assert code == 0
    team_key = json.loads(out)
    code, out, _ = cli(capsys, "keys", "list", *where)
    assert code == 0 and "svc" in out and team_key["id"] in out and team_key["key"] not in out

    # `limits set` changes only what it is given.
    assert cli(capsys, "limits", "set", "team", "t2", "--budget-monthly", "50", *where)[0] == 0
    code, out, _ = cli(capsys, "limits", "set", "team", "t2", "--rpm", "10", "--json", *where)
    saved = json.loads(out)
    assert (saved["monthly_usd"], saved["rpm"]) == (50.0, 10)
    code, out, _ = cli(capsys, "limits", "set", "team", "t2", "--clear", "rpm", "--json", *where)
    assert json.loads(out)["rpm"] is None and json.loads(out)["monthly_usd"] == 50.0

    code, out, _ = cli(capsys, "keys", "rotate", team_key["id"], "--json", *where)
    rotated = json.loads(out)["key"]
    assert code == 0 and rotated != team_key["key"]

    # A team admin's key: its own team only.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIGW_URL", gateway.url)
        patch.setenv("AIGW_ADMIN_TOKEN", rotated)
        code, out, _ = cli(capsys, "keys", "list", "--json")
        assert code == 0 and {k["team_id"] for k in json.loads(out)} == {"t2"}
        code, _, err = cli(capsys, "spend", "--team", "t")
        assert code == 1 and "HTTP 404" in err and "Team 't' was not found" in err

    [event] = eventually(
        lambda: json.loads(cli(capsys, "audit", "--action", "key.rotate", "--json", *where)[1])
    )
    assert event["actor"] == "admin_key" and event["key_id"] == team_key["id"]
    code, out, _ = cli(capsys, "audit", "--kind", "admin", *where)
    assert "limit.put" in out and "key.create" in out

    code, out, _ = cli(capsys, "keys", "revoke", team_key["id"], *where)
    assert code == 0 and "revoked" in out
    code, out, _ = cli(capsys, "budget", "team", "t2", *where)
    assert code == 0 and "of $50.00" in out


def test_errors_name_what_to_fix(
    gateway: Any, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "keys", "list")
    assert code == 2 and "AIGW_URL and AIGW_ADMIN_TOKEN" in err
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIGW_URL", gateway.url)
        patch.setenv("AIGW_ADMIN_TOKEN", "not-a-key")
        code, _, err = cli(capsys, "keys", "list")
        assert code == 1 and "HTTP 401" in err
        patch.setenv("AIGW_URL", "http://127.0.0.1:9")
        code, _, err = cli(capsys, "keys", "list")
        assert code == 1 and "cannot reach the gateway at http://127.0.0.1:9" in err
    code, _, err = cli(capsys, "keys", "list", "--config", str(tmp_path / "missing.toml"))
    assert code == 2 and "does not exist" in err
    loose = tmp_path / "loose.toml"
    loose.write_text(f'[default]\nurl = "{gateway.url}"\ntoken = "{ADMIN}"\n')
    loose.chmod(0o644)
    code, _, err = cli(capsys, "keys", "list", "--config", str(loose))
    assert code == 0 and "chmod 600" in err
