"""Who makes the cyclic GC run, and for how long: a probe for the gateway process.

Not imported by the gateway. Loaded into ``python -m gateway_app serve`` by a one-line
``sitecustomize.py`` at the root of a copy of the tree (bench.py puts the tree on
``PYTHONPATH``)::

    git archive HEAD | tar -x -C /tmp/probe-tree
    echo 'import runpy, os; os.environ.get("AIGW_GC_PROBE") and runpy.run_path("bench/gc_probe.py")' \
      > /tmp/probe-tree/sitecustomize.py
    cd /tmp/probe-tree && .venv/bin/python bench/bench.py --seconds 5 --targets governance \
      --conns 1,16 --no-streams --overhead-cpu pinned --gateway-env AIGW_GC_PROBE=/tmp/gc.json

Every collection's generation, pause and count of collected objects are recorded (in
aggregate); at a sample of generation-1 and -2 starts, the objects in generations 0
and 1 (and 2) are counted by type. ``AIGW_GC_PROBE_MODE`` adds, in a separate run
(they change the timing):

- ``garbage``: ``gc.DEBUG_SAVEALL``; the cyclic garbage each collection finds, by type
  (what is freed only by the GC, not by reference counts);
- ``sites``: ``tracemalloc`` (8 frames); the allocation sites of a sample of the
  generation-1 survivors, and who refers to them.

The summary is written to the path in ``AIGW_GC_PROBE`` every 2 s (a daemon thread).
"""

from __future__ import annotations

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
SAMPLE_EVERY = 4  # count the generations at every 4th generation-1/2 start

pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
collected: dict[int, int] = {0: 0, 1: 0, 2: 0}
young_sizes: dict[int, list[tuple[int, int]]] = {1: [], 2: []}  # (len gen0, len gen1)
by_type: dict[str, collections.Counter[str]] = {
    "gen0_at_g1": collections.Counter(),
    "gen1_at_g1": collections.Counter(),
    "gen2_at_g2": collections.Counter(),
    "garbage": collections.Counter(),
    "sites": collections.Counter(),
    "referrers": collections.Counter(),
}
samples = {"g1": 0, "g2": 0}
_state = {"t0": 0.0, "gen": 0, "n": 0, "sampled": False, "started": time.time()}


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
    generation = info["generation"]
    if phase == "start":
        _state["sampled"] = False
        if generation >= 1:
            key = "g1" if generation == 1 else "g2"
            samples[key] += 1
            if samples[key] % SAMPLE_EVERY == 0:
                _state["sampled"] = True
                young0 = gc.get_objects(generation=0)
                young1 = gc.get_objects(generation=1)
                young_sizes[generation].append((len(young0), len(young1)))
                if generation == 1:
                    by_type["gen0_at_g1"].update(_name(o) for o in young0)
                    by_type["gen1_at_g1"].update(_name(o) for o in young1)
                    if MODE == "sites":
                        for obj in young1[:: max(1, len(young1) // 200)]:
                            by_type["sites"][f"{_name(obj)} @ {_site(obj)}"] += 1
                            for ref in gc.get_referrers(obj)[:3]:
                                if ref is young1 or ref is young0:
                                    continue
                                by_type["referrers"][f"{_name(obj)} <- {_name(ref)}"] += 1
                else:
                    by_type["gen2_at_g2"].update(_name(o) for o in gc.get_objects(generation=2))
                del young0, young1
        _state["gen"] = generation
        _state["t0"] = time.perf_counter()
        return
    elapsed = (time.perf_counter() - _state["t0"]) * 1e3
    if not _state["sampled"]:
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
        "stats": gc.get_stats(),
        "frozen": gc.get_freeze_count(),
    }


def _writer() -> None:
    while True:
        time.sleep(2)
        try:
            text = json.dumps(summary(), indent=1)
        except RuntimeError:  # a Counter changed size during the dump: next time
            continue
        with open(OUT, "w") as file:
            file.write(text)


if OUT and "serve" in sys.argv:
    if MODE == "garbage":
        gc.set_debug(gc.DEBUG_SAVEALL)
    if MODE == "sites":
        tracemalloc.start(8)
    gc.callbacks.append(_callback)
    threading.Thread(target=_writer, name="gc-probe", daemon=True).start()
