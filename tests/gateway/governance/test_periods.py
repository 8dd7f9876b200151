"""Budget periods and audit event ids: cached per UTC day, right at the boundaries."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import pytest

from gateway_app.governance import audit
from gateway_app.governance.service import period_ends
from tests.gateway.governance.test_gateway_governance import Admin, chat, governed


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("moment", "day", "month", "day_left", "month_left"),
    [
        ("2026-02-28T23:59:59", "2026-02-28", "2026-02", 1, 1),
        ("2026-03-01T00:00:00", "2026-03-01", "2026-03", 86400, 31 * 86400),
        ("2026-03-01T12:00:00", "2026-03-01", "2026-03", 43200, 30 * 86400 + 43200),
        ("2028-02-28T00:00:00", "2028-02-28", "2028-02", 86400, 2 * 86400),  # leap year
        ("2026-12-31T23:00:00", "2026-12-31", "2026-12", 3600, 3600),
        ("2027-01-01T00:00:01", "2027-01-01", "2027-01", 86399, 30 * 86400 + 86399),
    ],
)
def testperiod_ends_across_day_month_and_year_boundaries(
    moment: str, day: str, month: str, day_left: int, month_left: int
) -> None:
    assert period_ends(_ts(moment)) == (day, month, day_left, month_left)


def testperiod_ends_follow_the_clock_back_and_forth() -> None:
    # The cache holds one day: asking about another day must not reuse it.
    for moment in ("2026-01-31T10:00:00", "2026-02-01T10:00:00", "2026-01-31T10:00:00"):
        stamp = _ts(moment)
        expected = datetime.fromtimestamp(stamp, UTC)
        days = calendar.monthrange(expected.year, expected.month)[1]
        assert period_ends(stamp)[:2] == (
            expected.strftime("%Y-%m-%d"),
            expected.strftime("%Y-%m"),
        )
        assert period_ends(stamp)[3] == (days - expected.day) * 86400 + 50400


def test_audit_events_have_unique_ids_and_todays_utc_period() -> None:
    events = [audit.event("request", status=200) for _ in range(1000)]
    assert len({e["event_id"] for e in events}) == 1000
    today = datetime.now(UTC)
    assert events[-1]["day"] == today.strftime("%Y-%m-%d")
    assert events[-1]["month"] == today.strftime("%Y-%m")
    assert events[0]["status"] == 200 and events[0]["kind"] == "request"


def test_a_limit_changed_between_requests_applies_to_the_next_one(
    fake_openai: Any, fake_anthropic: Any, tmp_path: Path
) -> None:
    # The per-key list of limited levels is cached; a changed limit must not be missed.
    with governed(fake_openai, fake_anthropic, tmp_path) as (running, _gov):
        admin = Admin(running.url)
        created = admin("POST", "/admin/keys", json={"team_id": "t1", "project_id": "p1"}).json()
        key = created["key"]
        assert admin("PUT", "/admin/limits/key/" + created["id"], json={"rpm": 1000}).is_success
        first = chat(running.url, key)
        assert first.headers["x-ratelimit-limit-requests"] == "1000"
        assert admin("PUT", "/admin/limits/key/" + created["id"], json={"rpm": 7}).is_success
        assert chat(running.url, key).headers["x-ratelimit-limit-requests"] == "7"
        assert admin("PUT", "/admin/limits/team/t1", json={"daily_usd": 1e-9}).is_success
        with pytest.raises(openai.RateLimitError, match="team:t1"):
            chat(running.url, key)
