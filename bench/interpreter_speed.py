"""How fast an interpreter runs plain Python: the same loop on each (best of 5, in ms).

    taskset -c 1 .venv/bin/python bench/interpreter_speed.py
    taskset -c 1 /usr/bin/python3 bench/interpreter_speed.py

Dicts, lists, small objects with ``__slots__`` and ``json.dumps``: the kind of work a
request does in the gateway. Used in ``bench/partial-interpreter.md``.
"""

from __future__ import annotations

import json
import time


class _Point:
    __slots__ = ("x",)

    def __init__(self, x: int) -> None:
        self.x = x

    def next(self) -> int:
        return self.x + 1


def work() -> int:
    """One round: build a dict of 2,000 entries, walk it, make 2,000 objects, encode it."""
    d: dict[str, list] = {}
    for i in range(2000):
        d[str(i)] = [i, i * 2, {"a": i}]
    total = 0
    for k, v in d.items():
        total += v[0] + len(k) + v[2]["a"]
    for i in range(2000):
        total += _Point(i).next()
    json.dumps(d)
    return total


def main() -> None:
    best = 1e9
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(50):
            work()
        best = min(best, time.perf_counter() - start)
    print(round(best * 1000, 1), "ms")


if __name__ == "__main__":
    main()
