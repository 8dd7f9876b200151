"""The home's escrow ledger (issue 29): it never grants more of a budget than is free."""

from __future__ import annotations

import random
from pathlib import Path

from gateway_app.config.governance import GlobalConfig
from gateway_app.governance.keys import Limit
from gateway_app.governance.leases import NANO, Ledger, Report, limit_nusd
from gateway_app.governance.storage import Database

CLOUDS = ("aws", "azure", "gcp")
BUDGET = "team:t|monthly|2026-12"


def _ledger(tmp_path: Path, monthly_usd: float = 1.0) -> Ledger:
    db = Database(f"sqlite:///{tmp_path / 'home.db'}")
    db.migrate()
    config = GlobalConfig.model_validate(
        {"home": "aws", "peers": {c: {"url": f"https://{c}", "issuer": c} for c in CLOUDS}}
    )
    limits = {("team", "t"): Limit("team", "t", monthly_usd=monthly_usd)}
    return Ledger(db, config, lambda: limits)


def test_grants_never_exceed_the_budget_whatever_the_clouds_ask(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    budget = NANO  # $1
    rng = random.Random(29)
    spent = dict.fromkeys(CLOUDS, 0)
    granted = dict.fromkeys(CLOUDS, 0)
    for _ in range(300):
        cloud = rng.choice(CLOUDS)
        # A cloud spends within what it holds, and asks for more, at random.
        spent[cloud] = rng.randint(spent[cloud], granted[cloud])
        need = rng.choice([0, 0, rng.randint(1, budget // 3)])
        report = Report(BUDGET, spent[cloud], need, need, rng.random() * budget / 20)
        (reply,) = ledger.renew(cloud, [report])
        assert reply["granted_nusd"] >= granted[cloud]  # cumulative: never taken back
        granted[cloud] = reply["granted_nusd"]
        assert sum(granted.values()) <= budget  # the escrow invariant
    assert sum(granted.values()) > budget * 0.9  # and the budget is handed out
    rows = ledger.budget(BUDGET)
    assert {c: r["granted_nusd"] for c, r in rows.items()} == granted
    assert {c: r["spent_nusd"] for c, r in rows.items()} == spent


def test_one_renewal_takes_at_most_a_fair_share_and_a_spent_budget_says_so(
    tmp_path: Path,
) -> None:
    ledger = _ledger(tmp_path)
    budget = NANO
    # A burst in aws asks for the whole budget at once: it gets a third of what is free.
    (first,) = ledger.renew("aws", [Report(BUDGET, 0, budget, budget // 100, 0.0)])
    assert first["granted_nusd"] == budget // 3 and not first["exhausted"]
    (second,) = ledger.renew("azure", [Report(BUDGET, 0, budget, budget // 100, 0.0)])
    assert second["granted_nusd"] == (budget - budget // 3) // 3
    # Clouds that spent what they hold and ask again get the rest, never more.
    for _ in range(20):
        for cloud in CLOUDS:
            rows = ledger.budget(BUDGET)
            spent = rows[cloud]["granted_nusd"] if cloud in rows else 0
            ledger.renew(cloud, [Report(BUDGET, spent, budget, budget // 100, 0.0)])
    held = {c: r["granted_nusd"] for c, r in ledger.budget(BUDGET).items()}
    assert sum(held.values()) == budget
    (last,) = ledger.renew("gcp", [Report(BUDGET, held["gcp"], budget, budget // 100, 0.0)])
    assert last["exhausted"] and last["granted_nusd"] == held["gcp"]
    # A budget the home has no limit for grants nothing.
    (unknown,) = ledger.renew("gcp", [Report("team:x|monthly|2026-12", 0, 5, 5, 0.0)])
    assert unknown == {
        "budget": "team:x|monthly|2026-12",
        "granted_nusd": 0,
        "granted_before_nusd": 0,
        "returned_nusd": 0,
        "overdraft_nusd": 0,
        "return_nusd": 0,
        "exhausted": True,
    }


def test_a_budget_is_named_by_scope_period_and_period_id() -> None:
    limits = {
        ("team", "t"): Limit("team", "t", daily_usd=2.0, monthly_usd=30.0),
        ("customer", "*"): Limit("customer", "*", daily_usd=0.5),
    }
    assert limit_nusd(limits, "team:t|daily|2026-12-05") == 2 * NANO
    assert limit_nusd(limits, "team:t|monthly|2026-12") == 30 * NANO
    assert limit_nusd(limits, "customer:acme|daily|2026-12-05") == NANO // 2  # the default
    assert limit_nusd(limits, "customer:acme|monthly|2026-12") is None
    assert limit_nusd(limits, "project:p|daily|2026-12-05") is None
    assert limit_nusd(limits, "nonsense") is None


def _promoted(tmp_path: Path, monthly_usd: float = 1.0) -> Ledger:
    """Azure's ledger after the operator promoted it (home azure, epoch 2): its own
    database, which never saw the old home's ledger."""
    db = Database(f"sqlite:///{tmp_path / 'azure.db'}")
    db.migrate()
    config = GlobalConfig.model_validate(
        {
            "home": "azure",
            "epoch": 2,
            "peers": {c: {"url": f"https://{c}", "issuer": c} for c in CLOUDS},
        }
    )
    limits = {("team", "t"): Limit("team", "t", monthly_usd=monthly_usd)}
    return Ledger(db, config, lambda: limits)


class _Cloud:
    """A cloud's leases of one budget as its agent keeps them (cumulative grant applied,
    what it gave back, what it spent)."""

    def __init__(self) -> None:
        self.granted = self.returned = self.spent = 0

    @property
    def held(self) -> int:
        return self.granted - self.returned

    def report(self, need: int, rate: float) -> Report:
        return Report(BUDGET, self.spent, need, need, rate, self.returned, 0, self.granted)

    def apply(self, reply: dict[str, object]) -> None:
        granted = reply["granted_nusd"]
        assert isinstance(granted, int) and granted >= self.granted  # never taken back
        self.granted = granted
        give = reply["return_nusd"]
        assert isinstance(give, int)
        self.returned += max(0, min(give, self.held - self.spent))


def test_a_promoted_home_adopts_what_the_clouds_hold_and_never_grants_past_the_budget(
    tmp_path: Path,
) -> None:
    # Issue 29, the decision record's scenario 11: aws is home and hands the budget out.
    budget = NANO
    old, clouds = _ledger(tmp_path), {c: _Cloud() for c in CLOUDS}
    for _ in range(6):
        for name, cloud in clouds.items():
            cloud.spent = cloud.held  # a burst everywhere: all spent, more wanted
            cloud.apply(old.renew(name, [cloud.report(budget // 10, budget / 100)])[0])
    assert sum(c.held for c in clouds.values()) > budget * 0.9
    # aws is lost, holding its leases (unspent: what it may still spend if it returns).
    aws = clouds["aws"]
    aws.spent = aws.held // 2
    # gcp's open reservations settled for less than they reserved: it holds unspent lease.
    clouds["gcp"].spent = clouds["gcp"].held // 3
    # The operator promotes azure (epoch 2); azure and gcp keep their old leases and
    # report them. The new ledger has no row of any cloud.
    new = _promoted(tmp_path)
    rng = random.Random(11)
    moved = 0
    for step in range(200):
        name = rng.choice(["azure", "gcp"])
        cloud = clouds[name]
        # gcp goes idle (it gives back); azure keeps bursting.
        if name == "azure":
            cloud.spent = rng.randint(cloud.spent, cloud.held)
        need, rate = (budget // 10, budget / 50) if name == "azure" else (0, 0.0)
        before = cloud.granted
        cloud.apply(new.renew(name, [cloud.report(need, rate)])[0])
        if step and name == "azure":
            moved += cloud.granted - before
        # The invariant holds with what aws still holds, which this ledger never heard of.
        assert sum(c.held for c in clouds.values()) <= budget
    # Budgeted traffic resumed at the new home: what gcp gave back was granted to azure.
    assert clouds["gcp"].returned > 0 and moved > 0
    rows = new.budget(BUDGET)
    assert {c: rows[c]["held_nusd"] for c in rows} == {c: clouds[c].held for c in ("azure", "gcp")}
    # aws comes back as a follower and reports what it holds: adopted, the reserve for
    # it is released, and everything left is granted, never more than the budget.
    for _ in range(10):
        for name, cloud in clouds.items():
            cloud.spent = cloud.held
            cloud.apply(new.renew(name, [cloud.report(budget // 10, budget / 100)])[0])
            assert sum(c.held for c in clouds.values()) <= budget
    assert new.budget(BUDGET)["aws"]["held_nusd"] == aws.held
    assert sum(c.held for c in clouds.values()) == budget


def test_a_promoted_home_grants_a_period_begun_after_it_at_once(tmp_path: Path) -> None:
    # No earlier home granted anything of a period that began after the promotion: it is
    # not held back for the cloud not heard from.
    new = _promoted(tmp_path)
    later = "team:t|monthly|9999-12"
    (reply,) = new.renew("azure", [Report(later, 0, NANO // 10, NANO // 10, 0.0)])
    assert reply["granted_nusd"] >= NANO // 10 and not reply["exhausted"]
    # While this month's budget waits for aws (it may hold all of it): nothing is free.
    (now,) = new.renew("azure", [Report(BUDGET, 0, NANO // 10, NANO // 10, 0.0)])
    assert now["granted_nusd"] == 0 and now["exhausted"]
