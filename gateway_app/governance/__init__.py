"""Governance (issue 12): virtual keys, RBAC, budgets, rate limits, cost, audit, analytics.

``service.Governance`` is one hook (auth, limits and budget reservation before
the call; cost, settlement and audit after it) plus the ``/admin/...`` API.
Nothing is imported here: ``config`` imports ``governance.settings``.
"""
