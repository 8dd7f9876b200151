"""The per-request decoding memo changes nothing but the time the pack takes."""

from __future__ import annotations

import pytest

from infra.offline import Plan
from infra.offline.policy_gate import evaluate
from tests.policies.conftest import PACK, verdict


def test_the_verdict_is_the_same_with_and_without_the_memo(
    broken_plan: Plan, monkeypatch: pytest.MonkeyPatch
) -> None:
    memoised = evaluate(broken_plan, pack_dir=PACK, transport="grpc")
    monkeypatch.setenv("AIGW_POLICY_NO_MEMO", "1")
    plain = evaluate(broken_plan, pack_dir=PACK, transport="grpc")
    assert memoised == plain
    assert len(memoised.violations) > 100


def test_the_memo_reuses_a_decoded_request_and_only_that() -> None:
    from pulumi.runtime.proto import analyzer_pb2 as proto

    from policies import speedup

    calls: list[object] = []
    decode = speedup.memoised(lambda value: calls.append(value) or {"decoded": id(value)})
    first, second = proto.AnalyzeRequest(), proto.AnalyzeRequest()
    assert decode(first.properties) is decode(first.properties)
    assert decode(second.properties) is not decode(first.properties)
    assert len(calls) == 2


def test_the_tests_remembered_answers_give_the_packs_verdicts(
    compliant_plan: Plan, broken_plan: Plan
) -> None:
    # tests/policies/conftest.py's `verdict` remembers the pack's answers per request
    # and configuration: the same verdicts as the pack asked afresh, the second time
    # from memory, and a configuration or a resource changed is asked again.
    disabled = {
        "multicloud-database-instance-deletion-protection": {"enforcementLevel": "disabled"}
    }
    for plan, config in ((broken_plan, None), (compliant_plan, None), (broken_plan, disabled)):
        fresh = evaluate(plan, pack_dir=PACK, config=config, transport="in-process")
        assert verdict(plan, config) == fresh
        assert verdict(plan, config) == fresh
    assert verdict(broken_plan) != verdict(broken_plan, disabled)


def test_the_memo_holds_a_whole_stack() -> None:
    # AnalyzeStack decodes every resource once per policy: the memo must hold all of a
    # stack's resources (a three-cloud prod plan has ~400), or each policy decodes them
    # all again (with the earlier 8 entries: every call below a miss).
    from pulumi.runtime.proto import analyzer_pb2 as proto

    from policies import speedup

    calls: list[object] = []
    decode = speedup.memoised(lambda value: calls.append(value) or {"decoded": id(value)})
    resources = [proto.AnalyzerResource() for _ in range(1000)]
    for _policy in range(3):
        for resource in resources:
            decode(resource.properties)
    assert len(calls) == len(resources)
