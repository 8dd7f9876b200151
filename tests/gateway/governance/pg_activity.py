"""Who holds a PostgreSQL server's connections, and how many at once.

Two ways to see it, both giving an :class:`Activity` (the peak number of connections to
each database, and per ``application_name``):

- :class:`ConnectionLog`: exact. The server logs every connection and disconnection
  (:data:`LOG_SETTINGS`, given to :class:`~.services.PostgresServer` at its start);
  replayed in order, the log gives every moment's connections, the shortest-lived
  included. For a server a test starts itself.
- :class:`ConnectionSampler`: ``pg_stat_activity`` read on a background thread every
  ``interval_s``, and once more when the window is taken: what an operator sees, for a
  server already running without those settings. A connection shorter than the interval
  may be missed; long-held ones are not.

A connection counts under the last ``application_name`` it showed (a backend still
authenticating shows none yet).
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

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
    """The backends at each moment (a sample, or a line of the log): (pid, database,
    application_name)."""

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
        """What was sampled since the last :meth:`take` (or the start), and the backends
        now; a new window starts. The sample of now is taken here, not left to the thread:
        a connection opened just before (by the last call a test made) is held now, and a
        busy test process may not have given the thread its turn since."""
        self._sample()
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


LOG_SETTINGS = (
    "logging_collector=on",
    "log_filename=postgresql.log",
    "log_connections=on",
    "log_disconnections=on",
    "log_line_prefix=%m [%p] ",
)
"""Server settings for :class:`ConnectionLog`: every connection and disconnection logged,
with the backend's PID, to ``<data>/log/postgresql.log``."""

_AUTHORIZED = re.compile(
    r"\[(?P<pid>\d+)\] LOG:  connection authorized: user=\S+ database=(?P<db>\S+)"
    r"(?: application_name=(?P<name>\S+))?"
)
_DISCONNECTED = re.compile(r"\[(?P<pid>\d+)\] LOG:  disconnection: ")


class ConnectionLog:
    """The connections of a server started with :data:`LOG_SETTINGS`, from its log.

    :meth:`mark` puts a mark in the log (a connection of its own, to the ``postgres``
    database) and returns where it is; :meth:`between` replays the log up to a mark and
    returns every moment's connections from another."""

    _marks = itertools.count()

    def __init__(self, data: str, url: str) -> None:
        self.path = Path(data, "log", "postgresql.log")
        self.url = url.rsplit("/", 1)[0] + "/postgres"

    def _lines(self) -> list[str]:
        return self.path.read_text(errors="replace").splitlines()

    def mark(self, timeout_s: float = 10.0) -> int:
        """A mark in the log, once every line before it has been written: its line number."""
        name = f"aigw-test-mark-{next(self._marks)}"
        psycopg.connect(self.url, application_name=name).close()
        deadline = time.monotonic() + timeout_s
        while True:
            for number, line in enumerate(self._lines()):
                if f"application_name={name}" in line:
                    return number
            assert time.monotonic() < deadline, f"{name} did not reach {self.path}"
            time.sleep(0.02)

    def between(self, start: int, end: int) -> Activity:
        """Each moment's connections from mark ``start`` to mark ``end`` (the marks' own
        connections left out), starting with those open at ``start``."""
        open_now: dict[int, tuple[str, str]] = {}
        moments: list[list[tuple[int, str | None, str]]] = []
        for number, line in enumerate(self._lines()[: end + 1]):
            if (authorized := _AUTHORIZED.search(line)) is not None:
                name = authorized["name"] or ""
                if not name.startswith("aigw-test-mark-"):
                    open_now[int(authorized["pid"])] = (authorized["db"], name)
            elif (gone := _DISCONNECTED.search(line)) is not None:
                open_now.pop(int(gone["pid"]), None)
            else:
                continue
            if number >= start:
                moments.append([(pid, db, name) for pid, (db, name) in open_now.items()])
        return Activity(moments)
