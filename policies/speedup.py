"""Decode each resource's properties once per request, not once per policy.

The policy SDK's analyzer (pulumi-policy 1.x) turns a request's properties
into Python values inside its per-policy loop: ``MessageToDict``, then
``deserialize_properties``, then ``unknown_checking_proxy``, for every policy
and again for the provider. With ~100 policies that is ~98% of the pack's
time (measured: 33 of 34 s for the prod plan in-process; see bench/notes.md).
The inputs are the same objects for every policy of one request, so the three
steps are memoised by the identity of their argument, keeping a strong
reference to the last few arguments (so an identity cannot be reused while it
is remembered). The results are the SDK's own: policies see exactly what they
saw before, and ``tests/policies/test_speedup.py`` checks the verdicts agree.

Nothing changes if the SDK no longer has these names (a newer version): the
install is then a no-op.
"""

from __future__ import annotations

import types
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

_SIZE = 4096
"""Arguments remembered per function. One ``Analyze`` request needs two (its properties
and its provider's); an ``AnalyzeStack`` request decodes every resource of the stack once
per policy, so the memo holds a whole stack (a three-cloud prod plan: ~400 resources;
with 8 the prod plan's verdict took 2.1-2.5 CPU s in-process, with 4096 1.1-1.5 s). The
entries are the SDK's decoded values of one plan: a few MB at most, in the analyzer's
short-lived process."""


def memoised(function: Callable[[Any], Any]) -> Callable[..., Any]:
    """``function`` remembering its result for the last few arguments, by identity."""
    remembered: OrderedDict[int, tuple[Any, Any]] = OrderedDict()

    def call(value: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return function(value, *args, **kwargs)
        key = id(value)
        hit = remembered.get(key)
        if hit is not None and hit[0] is value:
            remembered.move_to_end(key)
            return hit[1]
        result = function(value)
        remembered[key] = (value, result)
        if len(remembered) > _SIZE:
            remembered.popitem(last=False)
        return result

    call.__wrapped__ = function  # type: ignore[attr-defined]
    return call


def install() -> bool:
    """Memoise the SDK analyzer's per-policy decoding; True if installed (idempotent)."""
    from pulumi_policy import policy as sdk

    if getattr(sdk, "_aigw_memoised", False):
        return True
    names = ("json_format", "deserialize_properties", "unknown_checking_proxy")
    if not all(hasattr(sdk, name) for name in names):
        return False
    json_format = types.SimpleNamespace(
        **{k: getattr(sdk.json_format, k) for k in dir(sdk.json_format) if not k.startswith("__")}
    )
    json_format.MessageToDict = memoised(sdk.json_format.MessageToDict)
    sdk.json_format = json_format
    sdk.deserialize_properties = memoised(sdk.deserialize_properties)
    sdk.unknown_checking_proxy = memoised(sdk.unknown_checking_proxy)
    sdk._aigw_memoised = True  # type: ignore[attr-defined]
    return True
