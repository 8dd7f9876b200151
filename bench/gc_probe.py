"""Who makes the cyclic GC run, and for how long: a probe for the gateway process.

Not imported by the gateway. Loaded into ``python -m gateway_app serve`` by a one-line
``sitecustomize.py`` at the root of a copy of the tree (bench.py puts the tree on
``PYTHONPATH``)::

    git archive HEAD | tar -x -C /tmp/probe-tree
    echo 'import runpy, os; os.environ.get("AIGW_GC_PROBE") and runpy.run_path("bench/gc_probe.py")' \
      > /tmp/probe-tree/sitecustomize.py
    cd /tmp/probe-tree && .venv/bin/python bench/bench.py --seconds 5 --targets governance \
      --conns 1,16 --no-streams --overhead-cpu pinned --gateway-env AIGW_GC_PROBE=/tmp/gc.json

From the gateway's ``gc.freeze()`` at start-up on, every collection's generation, pause and count of collected objects are recorded (in
aggregate); at a sample of generation-1 and -2 starts, the objects in generations 0
and 1 (and 2) are counted by type. ``AIGW_GC_PROBE_MODE`` adds, in a separate run
(they change the timing):

- ``garbage``: ``gc.DEBUG_SAVEALL``; the cyclic garbage each collection finds, by type
  (what is freed only by the GC, not by reference counts);
- ``sites``: ``tracemalloc`` (8 frames); the allocation sites of a sample of the
  young objects, and who refers to them;
- ``loop``: a task that yields to the event loop over and over records every gap
  between its turns longer than 0.3 ms, with what filled it: a GC pause, the loop
  thread's own CPU, other threads' CPU (the GIL), or neither (the OS scheduler).

The summary is written to the path in ``AIGW_GC_PROBE`` when the gateway exits.
"""

from __future__ import annotations

import atexit
import collections
import gc
import json
import os
import sys
import threading
import time
import tracemalloc

OUT = os.environ.get("AIGW_GC_PROBE", "")
MODE = os.environ.get("AIGW_GC_PROBE_MODE", "")
# Count the young generations at every 8th generation-0 start, every 2nd generation-1
# and -2 start (a sampled collection's pause is not recorded).
SAMPLE_EVERY = {0: 8, 1: 2, 2: 2} if MODE != "loop" else {0: 10**9, 1: 10**9, 2: 10**9}

pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
collected: dict[int, int] = {0: 0, 1: 0, 2: 0}
young_sizes: dict[int, list[tuple[int, ...]]] = {0: [], 1: [], 2: []}  # (len gen0, gen1)
by_type: collections.defaultdict[str, collections.Counter[str]] = collections.defaultdict(
    collections.Counter
)
samples = {"g0": 0, "g1": 0, "g2": 0}
gc_spans: collections.deque[tuple[float, float]] = collections.deque(maxlen=64)
by_thread: collections.Counter[str] = collections.Counter()  # collections per thread
LOOP_THREAD = threading.main_thread().ident  # the gateway's event loop runs there
# ms: gap, GC, loop thread CPU, other threads' CPU; and when it ended (perf_counter s)
gaps: list[tuple[float, float, float, float, float]] = []
thread_cpu: collections.Counter[str] = collections.Counter()  # ms of CPU in long gaps
_state = {"serving": False, "t0": 0.0, "gen": 0, "n": 0, "sampled": False, "started": time.time()}


def _name(obj: object) -> str:
    kind = type(obj)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if kind is tuple and obj:  # what a tuple holds says where it comes from
        name += f"[{type(obj[0]).__name__},..{len(obj)}]"  # type: ignore[index]
    elif kind is dict and obj:
        name += "{" + ",".join(sorted(str(k) for k in list(obj)[:4])) + "}"  # type: ignore[call-overload]
    elif kind.__name__ == "function":
        name += ":" + getattr(obj, "__qualname__", "?")
    elif kind.__name__ == "cell":
        name += ":" + type(obj.cell_contents).__name__ if _filled(obj) else ""  # type: ignore[attr-defined]
    return name


def _filled(cell: object) -> bool:
    try:
        cell.cell_contents  # type: ignore[attr-defined]  # noqa: B018
    except ValueError:
        return False
    return True


def _site(obj: object) -> str:
    trace = tracemalloc.get_object_traceback(obj)
    if trace is None:
        return "?"
    frames = [f for f in trace if "gc_probe" not in f.filename][:4]
    return " < ".join(
        f"{f.filename.rsplit('/site-packages/', 1)[-1].rsplit('/i24r/', 1)[-1]}:{f.lineno}"
        for f in frames
    )


def _callback(phase: str, info: dict[str, int]) -> None:
    if not _state["serving"]:
        # Start-up (imports, config): the gateway freezes what it built, then serves.
        # (get_freeze_count() walks the frozen objects: ~2 ms, asked until it is not 0.)
        if not gc.get_freeze_count():
            return
        _state["serving"] = True
    generation = info["generation"]
    if phase == "start":
        _state["sampled"] = False
        key = f"g{generation}"
        samples[key] += 1
        if samples[key] % SAMPLE_EVERY[generation] == 0:
            _state["sampled"] = True
            young = [gc.get_objects(generation=g) for g in range(min(generation, 1) + 1)]
            young_sizes[generation].append(tuple(len(objects) for objects in young))
            for g, objects in enumerate(young):
                by_type[f"gen{g}_at_{key}"].update(_name(o) for o in objects)
                if MODE == "sites":
                    for obj in objects[:: max(1, len(objects) // 100)]:
                        by_type["sites"][f"gen{g} {_name(obj)} @ {_site(obj)}"] += 1
                        for ref in gc.get_referrers(obj)[:3]:
                            if any(ref is objects for objects in young):
                                continue
                            by_type["referrers"][f"{_name(obj)} <- {_name(ref)}"] += 1
            if generation == 2:
                by_type["gen2_at_g2"].update(_name(o) for o in gc.get_objects(generation=2))
            del young
        _state["gen"] = generation
        _state["t0"] = time.perf_counter()
        return
    now = time.perf_counter()
    gc_spans.append((float(_state["t0"]), now))
    elapsed = (now - float(_state["t0"])) * 1e3
    in_loop = threading.get_ident() == LOOP_THREAD
    by_thread[f"gen{generation} in {threading.current_thread().name.rstrip('0123456789_')}"] += 1
    # A collection in another thread is timed with the GIL switches inside its callbacks.
    if not _state["sampled"] and in_loop:
        pauses[generation].append(elapsed)
    collected[generation] += info["collected"]
    if MODE == "garbage" and gc.garbage:
        by_type["garbage"].update(_name(o) for o in gc.garbage)
        gc.garbage.clear()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def summary() -> dict[str, object]:
    """The aggregate so far (pauses in ms)."""
    seconds = time.time() - float(_state["started"])
    return {
        "seconds": round(seconds, 1),
        "mode": MODE,
        "collections": {
            str(g): {
                "count": len(pauses[g]),
                "p50_ms": _pct(pauses[g], 0.5),
                "p90_ms": _pct(pauses[g], 0.9),
                "max_ms": _pct(pauses[g], 1.0),
                "collected": collected[g],
            }
            for g in pauses
        },
        "young_sizes_at_start": {str(g): young_sizes[g][-40:] for g in young_sizes},
        "samples": samples,
        "by_type": {k: v.most_common(40) for k, v in by_type.items()},
        "gaps": _gap_summary(),
        "collections_by_thread": dict(by_thread),
        "gap_list": [tuple(round(v, 4) for v in gap) for gap in gaps],
        "thread_cpu_in_gaps_ms": {k: round(v, 2) for k, v in thread_cpu.most_common()},
        "stats": gc.get_stats(),
        "frozen": gc.get_freeze_count(),
    }


def _cpu(clock: int) -> float:
    try:
        return time.clock_gettime(clock)
    except OSError:  # the thread ended
        return 0.0


async def _heartbeat() -> None:
    import asyncio

    own_id = threading.get_ident()
    clocks: list[tuple[str, int]] = []
    turns = 0
    while True:
        if turns % 2000 == 0:  # the other threads (the executor's come and go)
            clocks = [
                (t.name.rstrip("0123456789_"), time.pthread_getcpuclockid(t.ident))
                for t in threading.enumerate()
                if t.ident not in (own_id, None) and t.name != "gc-probe"
            ]
        turns += 1
        cpu0 = [_cpu(c) for _, c in clocks]
        t0, own0 = time.perf_counter(), time.thread_time()
        await asyncio.sleep(0)
        t1 = time.perf_counter()
        if t1 - t0 > 0.0003:
            own = time.thread_time() - own0
            used = [(_cpu(c) - c0, n) for (n, c), c0 in zip(clocks, cpu0, strict=True)]
            others = sum(u for u, _ in used)
            for u, name in used:
                if u > 0.0001:
                    thread_cpu[name] += u * 1e3
            in_gc = sum(max(0.0, min(t1, b) - max(t0, a)) for a, b in gc_spans)
            gaps.append(((t1 - t0) * 1e3, in_gc * 1e3, own * 1e3, others * 1e3, t1))


def _gap_summary() -> dict[str, object]:
    kinds: dict[str, list[float]] = collections.defaultdict(list)
    for gap, in_gc, own, others, _ in gaps:
        if in_gc > gap / 2:
            kind = "gc"
        elif others > 0.2:
            kind = "other threads (GIL)"
        elif own > gap / 2:
            kind = "loop thread's own work"
        else:
            kind = "neither (preempted)"
        kinds[kind].append(gap)
    return {
        kind: {
            "count": len(v),
            "over_1ms": sum(g > 1 for g in v),
            "over_1.5ms": sum(g > 1.5 for g in v),
            "p50_ms": _pct(v, 0.5),
            "max_ms": _pct(v, 1.0),
        }
        for kind, v in kinds.items()
    }


def _start_heartbeat() -> None:
    from gateway_app.app import GatewayApp

    startup = GatewayApp.startup

    async def started(self: GatewayApp) -> None:
        import asyncio

        await startup(self)
        _state["beat"] = asyncio.get_running_loop().create_task(_heartbeat())

    GatewayApp.startup = started  # type: ignore[method-assign]


def _write() -> None:
    with open(OUT, "w") as file:
        file.write(json.dumps(summary(), indent=1))


if OUT and "serve" in sys.argv:
    if MODE == "garbage":
        gc.set_debug(gc.DEBUG_SAVEALL)
    if MODE == "sites":
        tracemalloc.start(8)
    if MODE == "loop":
        _start_heartbeat()
    gc.callbacks.append(_callback)
    atexit.register(_write)  # the gateway exits normally on SIGTERM
