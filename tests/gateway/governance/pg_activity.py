"""Who holds a PostgreSQL server's connections, sampled from ``pg_stat_activity``.

:class:`ConnectionSampler` reads the server's client backends on a background thread
(every ``interval_s``, from its own connection, which it leaves out) and keeps every
sample; :meth:`ConnectionSampler.take` ends a window and returns what it saw: the peak
number of connections to each database, and per ``application_name``. A connection is
counted under the last name it showed (a backend still authenticating shows none yet).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import psycopg

# One row per client backend of the server but the sampler's own.
_ACTIVITY = (
    "SELECT pid, datname, application_name FROM pg_stat_activity "
    "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


@dataclass(frozen=True)
class Activity:
    """The connections a window of samples saw."""

    samples: list[list[tuple[int, str | None, str]]]
    """Each sample's backends: (pid, database, application_name)."""

    @property
    def names(self) -> dict[int, str]:
        """Each backend's ``application_name``: the last non-empty one it showed."""
        names: dict[int, str] = {}
        for sample in self.samples:
            for pid, _, name in sample:
                if name or pid not in names:
                    names[pid] = name
        return names

    def peak(self, database: str) -> int:
        """The most connections to ``database`` at once."""
        return max(
            (sum(1 for _, db, _ in sample if db == database) for sample in self.samples),
            default=0,
        )

    def peak_by_name(self, database: str) -> Counter[str]:
        """The most connections to ``database`` at once, per ``application_name``."""
        names = self.names
        peaks: Counter[str] = Counter()
        for sample in self.samples:
            now = Counter(names[pid] for pid, db, _ in sample if db == database)
            for name, count in now.items():
                peaks[name] = max(peaks[name], count)
        return peaks

    def describe(self, database: str) -> str:
        """The busiest sample of ``database``, for a failure message."""
        names = self.names
        busiest = max(
            self.samples, key=lambda s: sum(1 for _, db, _ in s if db == database), default=[]
        )
        held = Counter(names[pid] or "(no name)" for pid, db, _ in busiest if db == database)
        return ", ".join(f"{count} {name}" for name, count in sorted(held.items())) or "none"


class ConnectionSampler:
    """Samples the client backends of the server at ``url`` until closed (``with``)."""

    def __init__(self, url: str, interval_s: float = 0.01) -> None:
        self.url = url
        self.interval_s = interval_s
        self._samples: list[list[tuple[int, str | None, str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._conn = psycopg.connect(url, autocommit=True, application_name="aigw-test-sampler")

    def _sample(self) -> None:
        rows = [(int(pid), db, name or "") for pid, db, name in self._conn.execute(_ACTIVITY)]
        with self._lock:
            self._samples.append(rows)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval_s)

    def take(self) -> Activity:
        """What was sampled since the last :meth:`take` (or the start); a new window starts."""
        with self._lock:
            samples, self._samples = self._samples, []
        return Activity(samples)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._conn.close()
