"""Governance (issue 12): virtual keys, RBAC, budgets, rate limits, cost, audit, analytics.

``service.Governance`` is one replica's governance (key registry, limits,
budgets, pricing, the audit buffer). Requests meet it through two hooks
(``hooks``: the key's authentication, then limits and the budget reservation
before the call, cost, settlement and audit after it); people through the
``/admin/...`` API.
"""
