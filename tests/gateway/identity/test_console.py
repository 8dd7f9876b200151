"""The web console in real headless Chromium, signed in through the real OpenID Provider.

One person's path through it, as the issue describes: Bob (mapped by his group to
team admin of `search`) signs in with the keyboard, creates a key (its secret shown
once), sets his team's monthly budget, traffic flows through the gateway with that
key, and the spend chart, the budget burn-down and the audit log show it (naming
Bob). Then Carol, team admin of `ads`, sees none of it. Alice (org admin) sees
both teams, the deployments' latency and error rates.

Screenshots of every page go to ``AIGW_SCREENSHOTS_DIR`` (default: the test's temp
dir); ``docs/screenshots`` holds the committed ones (see docs/admin-console.md).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.fakes.fakes import error, ok
from tests.gateway.identity.chromium import FLAGS, ensure_chromium
from tests.gateway.identity.harness import Console, console_gateway
from tests.gateway.identity.provider import OpenIDProvider

LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    executable = ensure_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("AIGW_SCREENSHOTS_DIR") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def new_page(chromium: Browser) -> Page:
    context = chromium.new_context(viewport=LAPTOP, locale="en-US", timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("dialog", lambda dialog: dialog.accept())
    return page


def sign_in(page: Page, console: Console, account: str) -> None:
    """From the console's sign-in page, with the keyboard only."""
    page.goto(f"{console.url}/console/#keys")
    link = page.get_by_role("link", name="Sign in with single sign-on")
    link.focus()
    page.keyboard.press("Enter")
    page.get_by_label("Account").select_option(account)
    page.get_by_role("button", name="Sign in").press("Enter")
    expect(page.locator("#who .person")).to_contain_text(
        console.provider.accounts[account]["email"]
    )


def unlabelled_fields(page: Page) -> list[str]:
    """Form controls without an accessible label (WCAG 1.3.1 / 4.1.2)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter((el) => el.type !== 'hidden' && !(el.labels && el.labels.length)
                && !el.getAttribute('aria-label'))
            .map((el) => el.outerHTML)"""
    )


def test_console_sign_in_key_budget_traffic_charts_and_team_isolation(
    chromium: Browser,
    openid_provider: OpenIDProvider,
    fake_openai: Any,
    fake_anthropic: Any,
    tmp_path: Path,
    shots: Path,
) -> None:
    with console_gateway(openid_provider, fake_openai, fake_anthropic, tmp_path) as console:
        page = new_page(chromium)
        page.goto(f"{console.url}/console/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.screenshot(path=shots / "console-sign-in.png", full_page=True)

        # Bob signs in: his group maps him to team admin of `search`.
        sign_in(page, console, "bob")
        expect(page.locator("#who .role")).to_have_text("team admin of search")
        expect(page.get_by_role("heading", level=1)).to_be_focused()  # focus moves to the page
        assert unlabelled_fields(page) == []

        # Create a key: the team is fixed to his own; the secret is shown once.
        expect(page.get_by_label("Team")).to_have_value("search")
        page.get_by_label("Project").fill("search-api")
        page.get_by_label("Name", exact=True).fill("search-prod")
        page.get_by_label("Monthly budget (USD)").fill("25")
        page.get_by_role("button", name="Create key").click()
        secret = page.get_by_label("The new key")
        expect(secret).to_have_value(re.compile(r"^sk-aigw-"))
        key = secret.input_value()
        page.screenshot(path=shots / "console-keys.png", full_page=True)
        page.get_by_role("button", name="I have stored it").click()
        expect(page.get_by_label("The new key")).to_have_count(0)
        row = page.get_by_role("row", name=re.compile("search-prod"))
        expect(row).to_contain_text("never")  # last use

        # Set the team's monthly budget.
        page.get_by_role("link", name="Limits and budgets").click()
        page.get_by_label("Scope").select_option("team")
        page.get_by_label("Id", exact=True).fill("search")
        page.get_by_label("Monthly budget (USD)").fill("10")
        page.get_by_label("Requests per minute").fill("600")
        page.get_by_role("button", name="Save limit").click()
        expect(page.get_by_role("row", name=re.compile(r"^team search"))).to_contain_text("$10.00")
        page.screenshot(path=shots / "console-limits.png", full_page=True)

        # Before traffic, the overview has no spend to chart.
        page.get_by_role("link", name="Overview").click()
        expect(page.locator("#spend-chart")).to_contain_text("No traffic")

        # Traffic through the gateway with Bob's key (OpenAI SDK), and another team's.
        ads_key = console.admin(
            "POST", "/admin/keys", json={"team_id": "ads", "project_id": "ads-web", "name": "ads"}
        ).json()["key"]
        fake_anthropic.script(*[ok(usage=(20_000, 4_000))] * 6)
        fake_openai.script(
            *[ok(usage=(30_000, 2_000))] * 3, error(500), error(500), error(500), ok()
        )
        for api_key, model, n in (
            (key, "claude-sonnet-4-6", 4),
            (key, "gpt-4o-mini", 3),
            (ads_key, "claude-sonnet-4-6", 2),
        ):
            client = openai.OpenAI(base_url=f"{console.url}/v1", api_key=api_key, max_retries=0)
            for _ in range(n):
                client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=5000
                )
        with pytest.raises(openai.InternalServerError):  # three 500s: retries exhausted
            openai.OpenAI(
                base_url=f"{console.url}/v1", api_key=key, max_retries=0
            ).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
        spent = sum(
            r["cost_usd"]
            for r in console.admin("GET", "/admin/analytics/usage?group_by=team").json()["data"]
        )
        assert spent > 0

        # The chart now draws Bob's team's spend (his projects only), from the audit log.
        page.reload()
        chart = page.locator("#spend-chart svg[role=img]")
        expect(chart).to_be_visible()
        assert page.locator("#spend-chart rect.segment").count() >= 1
        description = page.locator("#spend-chart desc").text_content() or ""
        assert re.search(r"total \$[0-9.,]+\.$", description) and not description.endswith(
            "total $0."
        )
        expect(page.locator("#spend-chart table")).to_contain_text("search-api")
        expect(page.locator("#spend-chart table")).not_to_contain_text("ads-web")
        expect(page.locator("#burn-down svg")).to_be_visible()
        expect(page.locator("#burn-down")).to_contain_text("of $10.00")
        expect(page.locator("#top-spenders")).to_contain_text("search-prod")
        page.screenshot(path=shots / "console-overview.png", full_page=True)

        page.get_by_role("link", name="Keys").click()
        expect(page.get_by_role("row", name=re.compile("search-prod"))).not_to_contain_text("never")

        # The audit log names Bob for the key he created.
        page.get_by_role("link", name="Audit log").click()
        page.get_by_role("searchbox", name="Search").fill("key.create")
        page.get_by_role("button", name="Search").click()
        audit_row = page.get_by_role("row", name=re.compile("key.create"))
        expect(audit_row.first).to_contain_text("bob@example.com (bob)")
        page.screenshot(path=shots / "console-audit.png", full_page=True)
        page.context.close()

        # Carol (team admin of ads) sees nothing of search.
        carol = new_page(chromium)
        sign_in(carol, console, "carol")
        expect(carol.get_by_role("row", name=re.compile("ads"))).to_have_count(1)
        expect(carol.locator("table")).not_to_contain_text("search-prod")
        key_id = key.split("-")[2]  # sk-aigw-<key id>-<secret>
        status = carol.evaluate("async (id) => (await fetch('/admin/keys/' + id)).status", key_id)
        assert status == 404
        carol.get_by_role("link", name="Overview").click()
        expect(carol.locator("#spend-chart table")).to_contain_text("ads-web")
        expect(carol.locator("#spend-chart table")).not_to_contain_text("search-api")
        carol.get_by_role("link", name="Limits and budgets").click()
        expect(carol.locator("main")).not_to_contain_text("team search")
        carol.screenshot(path=shots / "console-team-admin-ads.png", full_page=True)
        carol.context.close()

        # Alice (org admin): both teams; spend by model; deployments' latency and errors.
        alice = new_page(chromium)
        sign_in(alice, console, "alice")
        alice.get_by_role("link", name="Spend").click()
        alice.get_by_label("Group by").select_option("model")
        alice.get_by_role("button", name="Show").click()
        expect(alice.locator("#spend-chart table")).to_contain_text("claude-sonnet-4-6")
        alice.screenshot(path=shots / "console-spend.png", full_page=True)
        alice.get_by_role("link", name="Deployments").click()
        openai_row = alice.get_by_role("row", name=re.compile(r"^openai\/gpt-4o-mini"))
        expect(openai_row).to_contain_text("%")
        assert "0.0%" not in (openai_row.text_content() or "")  # the 500s count as errors
        expect(alice.locator("#latency-chart svg")).to_be_visible()
        alice.screenshot(path=shots / "console-deployments.png", full_page=True)
        alice.get_by_role("link", name="Overview").click()
        expect(alice.locator("#spend-chart table")).to_contain_text("ads")
        expect(alice.locator("#spend-chart table")).to_contain_text("search")
        alice.context.close()
