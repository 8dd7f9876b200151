"""A caller's check plan: what every model call of one key, customer and model checks.

:meth:`Governance.check <gateway_app.governance.service.Governance.check>` runs
before every governed model call. What it checks depends only on the caller (key,
team, project), the customer, the model and the limits in force, which change
when an operator changes them, not per request. So it is worked out once and kept
(:class:`CheckPlan`): the limited levels in order, the rate items that do not
depend on the request (RPM: one unit each), the limits the TPM and budget items
carry, the model's price bound, the ``x-ratelimit-*`` headers' items and encoded
limits, and the state's :class:`~gateway_app.state.governance.Shape` of the
request's counters. A request then only fills in its amounts (tokens, the
reserved cost) and the budget periods.

Governance drops every plan when the registry applies a change (a key created,
edited or revoked, a limit set or removed, projects moved; here or announced by
another replica) and when it reloads the limits, so a request is never checked
against limits other than the ones in force (see ``Governance._plan``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gateway_app.context import Caller
from gateway_app.state.governance import (
    NUSD,
    REQUEST,
    TOKENS,
    BudgetItem,
    Decision,
    RateItem,
    Shape,
)

# (counter name, its RPM item (one unit: the same for every request), TPM limit,
# daily and monthly budgets in nano-USD), for each limited level in order.
Level = tuple[str, RateItem | None, int | None, int | None, int | None]

_HEADER_NAMES = {
    kind: tuple(f"x-ratelimit-{part}-{noun}".encode() for part in ("limit", "remaining", "reset"))
    for kind, noun in (("rpm", "requests"), ("tpm", "tokens"))
}


def reset_duration(seconds: float) -> str:
    """OpenAI's reset format: ``1s``, ``6m0s``, ``250ms``."""
    if seconds < 1:
        return f"{max(1, int(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


# reset_duration's values as headers, encoded once: below a second by whole milliseconds
# (1000: a product that rounds up to it), then by whole seconds up to an hour. With the
# remaining count clamped without max(), rate_headers (four levels, RPM and TPM) takes
# 1.7 µs instead of 2.7 (bench/partial-cuts.md).
_RESET_MS = tuple(reset_duration(ms / 1000).encode() for ms in range(1001))
_RESET_S = tuple(reset_duration(s).encode() for s in range(3601))


def reset_header(seconds: float) -> bytes:
    """:func:`reset_duration` of ``seconds`` (0 if negative), encoded."""
    if seconds < 1:
        ms = int(seconds * 1000)
        return _RESET_MS[ms if ms > 0 else 1]
    whole = math.ceil(seconds)
    return _RESET_S[whole] if whole < len(_RESET_S) else reset_duration(seconds).encode()


@dataclass(slots=True)
class HeaderKind:
    """The rate items one kind of ``x-ratelimit-*`` headers (requests or tokens) is
    chosen from: (index in the request's rate items, limit), and their encoded limits."""

    names: tuple[bytes, ...]  # limit, remaining, reset header names
    limits: tuple[tuple[int, int], ...]
    encoded: dict[int, bytes]  # by index: b"%d" % limit
    tokens: bool  # its items reserve the request's tokens (TPM), else one request (RPM)


@dataclass(slots=True)
class CheckPlan:
    """What every model call of one caller, customer and model checks (see the module)."""

    caller: Caller  # the authenticated caller it was worked out for (identity)
    levels: tuple[Level, ...]
    prompt_price: float  # USD per prompt token: the dearer of input and cache write
    output_price: float  # USD per output token
    unpriced: bool  # a deployment of the model has no price
    headers: tuple[HeaderKind, ...]  # in the order their kinds first appear
    budgeted: bool = False  # a level has a budget (an unpriced model cannot be counted)
    # What each counter counts, in the items' order: admission may admit from the request's
    # tokens and cost alone (Shape.counted), the items are built only when it cannot.
    shape: Shape = field(default_factory=Shape)
    # (lot_headers) The lot the per-kind header parts below were gathered for.
    _lot_of: object = None
    _lot_kinds: list[tuple[tuple[bytes, bytes], bytes, bytes, float, int, bool]] = field(
        default_factory=list
    )

    @classmethod
    def build(
        cls,
        caller: Caller,
        levels: tuple[Level, ...],
        prices: tuple[float, float],
        unpriced: bool,
    ) -> CheckPlan:
        """A plan over ``levels``; ``prices`` = (USD per prompt token, per output token)."""
        kinds: dict[str, list[tuple[int, int]]] = {}
        index = 0
        counted: list[int] = []
        budgets = 0
        for _name, rpm, tpm, daily, monthly in levels:
            if rpm is not None:
                kinds.setdefault("rpm", []).append((index, rpm.limit))
                counted.append(REQUEST)
                index += 1
            if tpm is not None:
                kinds.setdefault("tpm", []).append((index, tpm))
                counted.append(TOKENS)
                index += 1
            budgets += (daily is not None) + (monthly is not None)
        headers = tuple(
            HeaderKind(
                _HEADER_NAMES[kind],
                tuple(found),
                {i: b"%d" % limit for i, limit in found},
                kind == "tpm",
            )
            for kind, found in kinds.items()
        )
        shape = Shape((*counted, *(NUSD for _ in range(budgets))))
        return cls(caller, levels, prices[0], prices[1], unpriced, headers, budgets > 0, shape)

    def items(
        self,
        tokens: int,
        reserve_nusd: int,
        periods: tuple[str, str, int, int],
    ) -> tuple[tuple[RateItem, ...], tuple[BudgetItem, ...]]:
        """The request's rate and budget items, in level order; ``periods`` is
        :func:`~gateway_app.governance.service.period_ends` of the request's time."""
        day, month, day_left, month_left = periods
        rate: list[RateItem] = []
        budgets: list[BudgetItem] = []
        for name, rpm, tpm, daily, monthly in self.levels:
            if rpm is not None:
                rate.append(rpm)
            if tpm is not None:
                rate.append(RateItem(name, "tpm", tpm, tokens))
            if daily is not None:
                budgets.append(BudgetItem(name, "daily", day, daily, reserve_nusd, day_left + 3600))
            if monthly is not None:
                budgets.append(
                    BudgetItem(name, "monthly", month, monthly, reserve_nusd, month_left + 3600)
                )
        return tuple(rate), tuple(budgets)

    def rate_headers(self, tokens: int, decision: Decision) -> list[tuple[bytes, bytes]]:
        """``x-ratelimit-*`` of an admitted request of ``tokens``: per kind, the tightest
        of its limits after this request (with the global plane's rate shares: this
        cloud's share). Its items need not have been built (admission by amounts)."""
        if decision.lot:
            return self.lot_headers()
        used = decision.rate_used
        shares = decision.rate_limits
        headers: list[tuple[bytes, bytes]] = []
        for kind in self.headers:
            # Every item of a kind reserves the same amount (one request, or the request's
            # tokens): the tightest is the one with the least room before it.
            best = -1
            room = 0.0
            limit = 0
            for i, item_limit in kind.limits:
                free = (shares[i] if shares else item_limit) - used[i]
                if best < 0 or free < room:
                    best, room, limit = i, free, item_limit
            left = room - (tokens if kind.tokens else 1)
            limit_name, remaining_name, reset_name = kind.names
            headers += (
                (limit_name, kind.encoded[best]),
                (remaining_name, b"%d" % int(left) if left > 0 else b"0"),
                (reset_name, reset_header((limit - left) * 60.0 / limit)),
            )
        return headers

    def lot_headers(self) -> list[tuple[bytes, bytes]]:
        """:meth:`rate_headers` of a request admitted from the shape's lot: each kind's
        tightest counter when the lot was carved (``Shape.rooms``) less what the lot has
        admitted since, this request included. What stays the same while the lot lasts
        (names, limits, rooms) is gathered once per lot."""
        shape = self.shape
        if self._lot_of is not shape.decision:
            self._lot_of = shape.decision
            self._lot_kinds = [
                (
                    (kind.names[0], kind.encoded[found[0]]),
                    kind.names[1],
                    kind.names[2],
                    found[1],
                    found[2],
                    kind.tokens,
                )
                for kind in self.headers
                if (found := shape.rooms[kind.tokens]) is not None
            ]
        headers: list[tuple[bytes, bytes]] = []
        for limit_header, remaining_name, reset_name, room, limit, tokens in self._lot_kinds:
            if tokens:
                left = room - (shape.carved_tokens - shape.lot_tokens)
            else:
                left = room - (shape.carved_requests - shape.lot_requests)
            seconds = (limit - left) * 60.0 / limit
            if seconds < 1:  # reset_header's most common case, inline
                ms = int(seconds * 1000)
                reset = _RESET_MS[ms if ms > 0 else 1]
            else:
                reset = reset_header(seconds)
            headers += (
                limit_header,
                (remaining_name, b"%d" % left if left > 0 else b"0"),
                (reset_name, reset),
            )
        return headers
