"""Semantic cache through the gateway: paraphrases hit, the known pitfalls miss."""

from __future__ import annotations

import re
from typing import Any

import openai
import pytest

from gateway_app.cache.guard import PROFILES, Features, same_request
from gateway_app.config import parse
from gateway_app.observability.metrics import Metrics
from tests.fakes import FakeUpstream
from tests.fakes.fakes import error, ok
from tests.gateway.cache.helpers import cached_gateway, raw_config
from tests.gateway.observability.test_metrics import _samples


def ask(
    client: openai.OpenAI,
    text: str,
    history: list[dict[str, str]] | None = None,
    **headers: str,
) -> Any:
    messages = [*(history or []), {"role": "user", "content": text}]
    return client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=messages,
        extra_headers={name.replace("_", "-"): value for name, value in headers.items()},
    )


@pytest.fixture
def gw(fake_openai: FakeUpstream, fake_anthropic: FakeUpstream) -> Any:
    with cached_gateway(raw_config(fake_openai, fake_anthropic, semantic=True)) as running:
        yield running


def test_a_paraphrase_is_a_semantic_hit_with_its_similarity(
    gw: Any, fake_openai: FakeUpstream
) -> None:
    client = gw.client()
    fake_openai.script(ok("Paris."))
    assert ask(client, "What is the capital of France?").headers["x-cache"] == "miss"
    hit = ask(client, "What's France's capital?")
    assert hit.headers["x-cache"] == "semantic-hit"
    assert 0.85 <= float(hit.headers["x-cache-similarity"]) <= 1.0
    assert hit.parse().choices[0].message.content == "Paris."
    assert len(fake_openai.requests) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("How do I enable 2FA on my account?", "How do I disable 2FA on my account?"),
        ("Convert 10 USD to EUR.", "Convert 10 EUR to USD."),
        ("What is 15% of 200?", "What is 15% of 300?"),
        ("What is the population of Canada?", "What is the population of Australia?"),
        ("Should I take ibuprofen with food?", "Should I not take ibuprofen with food?"),
    ],
)
def test_negations_numbers_entities_and_directions_miss(
    gw: Any, fake_openai: FakeUpstream, first: str, second: str
) -> None:
    client = gw.client()
    ask(client, first)
    assert ask(client, second).headers["x-cache"] == "miss"
    assert len(fake_openai.requests) == 2


def test_conversations_sharing_only_the_last_message_miss(
    gw: Any, fake_openai: FakeUpstream
) -> None:
    client = gw.client()
    python = [
        {"role": "user", "content": "I am writing Python."},
        {"role": "assistant", "content": "Great."},
    ]
    rust = [
        {"role": "user", "content": "I am writing Rust."},
        {"role": "assistant", "content": "Great."},
    ]
    ask(client, "How do I read a file line by line?", python)
    assert ask(client, "How do I read a file line by line?", rust).headers["x-cache"] == "miss"
    assert ask(client, "How can I read a file line by line?", python).headers["x-cache"] == (
        "semantic-hit"
    )


def test_a_cached_error_is_never_served(gw: Any, fake_openai: FakeUpstream) -> None:
    client = gw.client()
    fake_openai.script(error(400, "bad"))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Why is the sky blue?"}]
        )
    assert ask(client, "What makes the sky blue?").headers["x-cache"] == "miss"


def test_semantic_is_opt_in(fake_openai: FakeUpstream, fake_anthropic: FakeUpstream) -> None:
    with cached_gateway(raw_config(fake_openai, fake_anthropic)) as gw:
        client = gw.client()
        ask(client, "What is the capital of France?")
        assert ask(client, "Tell me the capital city of France.").headers["x-cache"] == "miss"
        opted = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Tell me the capital of France."}],
            extra_headers={"x-aigw-semantic-cache": "true"},
        )
        # The entries stored without opting in were not indexed; this one is a miss
        # that indexes itself, and the next paraphrase opting in hits it.
        assert opted.headers["x-cache"] == "miss"
        again = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Tell me what the capital of France is."}],
            extra_headers={"x-aigw-semantic-cache": "true"},
        )
        assert again.headers["x-cache"] == "semantic-hit"


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        ("Turn on dark mode", "Turn off dark mode", "antonym"),
        ("Is Python faster than Java?", "Is Java faster than Python?", "reversed"),
        ("Give me 5 ideas", "Give me five ideas", None),
        ("Give me 5 ideas", "Give me ten ideas", "numbers"),
        ("Deploy to `prod-eu`", "Deploy to `prod-us`", "entities"),
        ("Can dogs eat grapes?", "Can't dogs eat grapes?", "negation"),
        ("How do I enable two-factor auth?", "How can I turn on two-factor auth?", None),
        # A word swapped at one place in an otherwise equal request: refused unless
        # the words are known equivalents; prefixes that negate; swapped roles.
        ("How do I treat a sprained ankle?", "How do I treat a broken ankle?", "substitution"),
        ("Write a short poem about the ocean.", "Write a short poem about the sea.", None),
        ("Grant the request to sublet.", "Refuse the request to sublet.", "antonym"),
        ("Is the clause enforceable?", "Is the clause unenforceable?", "negation"),
        ("Debit cash and credit revenue.", "Credit cash and debit revenue.", "reversed"),
        (
            "Use staging locally but production in CI.",
            "Use production locally but staging in CI.",
            "reversed",
        ),
        (
            "At sea level, what is the boiling point of water?",
            "What is the boiling point of water at sea level?",
            None,
        ),
        # A compound against its prepositional form is the same thing.
        ("How do I delete a branch in Git?", "How can I delete a Git branch?", None),
        ("Convert this JSON to YAML.", "Convert this YAML to JSON.", "reversed"),
        # Content on one side only narrows the request, unless it only frames it.
        ("How do I reset my password?", "How do I reset my password on the app?", "qualifier"),
        ("Summarise this complaint.", "Summarise this complaint and suggest a reply.", "qualifier"),
        ("What are the symptoms of the flu?", "What symptoms does the flu cause?", None),
        # More forms of an opposite: participles, conditions, phrasal verbs, prefixes.
        (
            "Rewrite the loop so it changes the list in place.",
            "Rewrite the loop so it leaves the list unchanged.",
            "negation",
        ),
        (
            "Restart the service if the health check fails.",
            "Leave the service running even if the health check fails.",
            "negation",
        ),
        ("Why was I logged out?", "Why was I logged in?", "antonym"),
        ("Draft a policy that allows pets.", "Draft a policy that bans pets.", "antonym"),
        ("How do I upgrade the cluster?", "How do I downgrade the cluster?", "negation"),
        (
            "Is the patient treated for hypertension?",
            "Is the patient treated for hypotension?",
            "negation",
        ),
        ("How do I mute the channel?", "How do I unmute the channel?", "negation"),
        ("Users opted into the newsletter.", "Users opted out of the newsletter.", "antonym"),
        # "exceptions" is not the negation "except"; "allowed to" frames like "can".
        (
            "How do I handle exceptions in Python?",
            "How do I handle errors in Python?",
            "substitution",
        ),
        ("Can my employer read my emails?", "Is my employer allowed to read my emails?", None),
        # The same name written otherwise: spelled out, in words, opening a sentence;
        # but a pronoun is not the name it looks like.
        ("Draft a non-disclosure agreement.", "Draft an NDA.", None),
        ("I get a NullPointerException here.", "I get a null pointer exception here.", None),
        ("Why does my Terraform plan fail?", "Terraform plan fails. Why?", None),
        ("Can you ship to the US?", "Can you ship to us?", "entities"),
        # A number counts something: the unit belongs to the quantity.
        (
            "Why is it taking two weeks to arrive?",
            "Why is it taking two days to arrive?",
            "numbers",
        ),
        ("Summarise this in two sentences.", "Write a two-sentence summary of this.", None),
        # Two words exchanged wherever they occur are swapped roles, whatever lies between.
        (
            "Left join the orders table to the customers table so every order is kept.",
            "Left join the customers table to the orders table so every customer is kept.",
            "reversed",
        ),
    ],
)
def test_guard_reasons(a: str, b: str, reason: str | None) -> None:
    assert same_request(Features(a), Features(b)) == reason
    assert same_request(Features(b), Features(a)) == reason


def test_a_semantic_hit_tells_the_client_the_metric_and_the_log(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream, access_lines: list[dict[str, Any]]
) -> None:
    raw = raw_config(fake_openai, fake_anthropic, semantic=True)
    metrics = Metrics(parse(raw))
    with cached_gateway(raw, metrics) as gw:
        client = gw.client()
        fake_openai.script(ok("Fever, cough, aches."))
        ask(client, "What are the symptoms of the flu?", x_request_id="first")
        hit = ask(client, "What are the signs of the flu?", x_request_id="hit")
        refused = ask(client, "What are the symptoms of the Spanish flu?", x_request_id="refused")
    # The client learns that another request's answer served it, and which one.
    assert hit.headers["x-cache"] == "semantic-hit"
    assert hit.headers["x-cache-guard"] == "aligned"  # the same content words ("signs")
    # How sure the judge was, above what the default profile asks of it.
    assert PROFILES["strict"].judge <= float(hit.headers["x-cache-judge"]) <= 1.0
    assert re.fullmatch(r"[0-9a-f]{16}", hit.headers["x-cache-match"])
    assert refused.headers["x-cache"] == "miss" and "x-cache-guard" not in refused.headers
    text = metrics.render().decode()
    decisions = _samples(text, "aigw_semantic_cache_decisions_total")
    assert decisions == {
        '{decision="accepted",model="gpt-4o-mini",reason="aligned"}': 1.0,
        '{decision="refused",model="gpt-4o-mini",reason="entities"}': 1.0,
    }
    counts = _samples(text, "aigw_semantic_cache_similarity_count")
    assert sum(counts.values()) == 2
    lines = {line["request_id"]: line for line in access_lines}
    assert "semantic" not in lines["first"]  # nothing cached yet in its scope
    similarity = float(hit.headers["x-cache-similarity"])
    assert lines["hit"]["semantic"] == {
        "similarity": pytest.approx(similarity, abs=1e-4),
        "decision": "accepted",
        "reason": "aligned",
        "judge": pytest.approx(float(hit.headers["x-cache-judge"]), abs=1e-4),
    }
    assert lines["refused"]["semantic"]["decision"] == "refused"
    assert lines["refused"]["semantic"]["reason"] == "entities"


def test_semantic_hits_can_be_turned_off_per_team_and_per_request(
    fake_openai: FakeUpstream, fake_anthropic: FakeUpstream
) -> None:
    raw = raw_config(fake_openai, fake_anthropic, semantic=True)
    raw["cache"]["semantic"] = {"disabled_for": {"teams": ["legal"]}}
    with cached_gateway(raw) as gw:
        client = gw.client()
        for team in ("legal", "support"):
            ask(client, "What is the capital of France?", x_test_team=team)
        paraphrase = "Tell me the capital city of France."
        assert ask(client, paraphrase, x_test_team="legal").headers["x-cache"] == "miss"
        off = ask(client, paraphrase, x_test_team="support", x_aigw_semantic_cache="false")
        assert off.headers["x-cache"] == "miss"
        # (The opted-out answer was stored under its exact key: ask another paraphrase.)
        on = ask(client, "Tell me the capital of France.", x_test_team="support")
        assert on.headers["x-cache"] == "semantic-hit"
        # Exact hits still apply to the team without semantic hits.
        exact = ask(client, "What is the capital of France?", x_test_team="legal")
        assert exact.headers["x-cache"] == "hit"
