"""The stages of ``aigw plan`` and their elapsed time, as the user watches them.

A plan has stages (reading the config, each cloud's components, the engine
resolving the registrations, the policy gate). :func:`reporter` picks how they
are shown on a stream (stderr, so ``--json`` output on stdout stays clean):

* :class:`LiveProgress` on a terminal: each finished stage as a line with its
  time and what it did, the running stage on a status line whose elapsed time
  keeps counting;
* :class:`LineProgress` anywhere else (CI logs, pipes, files): one plain line
  per finished stage, and a line every :data:`STILL_RUNNING_SECONDS` while a
  stage runs longer, so a log shows where a slow or stuck plan is;
* :class:`Progress` itself (``--quiet``): nothing.

One stage runs at a time: :meth:`Progress.begin` ends the running stage, if
any. The reporters write whole lines and are safe to call from any thread.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TextIO

STILL_RUNNING_SECONDS = 30.0
"""How often the plain log says that a long stage is still running."""

_REFRESH_SECONDS = 0.1
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class Progress:
    """Stage events of a plan; this base class shows nothing (``--quiet``)."""

    def __init__(self, title: str = "plan"):
        self.title = title
        self._lock = threading.RLock()
        self._started = time.monotonic()
        self._stage: str | None = None
        self._stage_started = 0.0

    @property
    def stage(self) -> str | None:
        """The running stage, if any."""
        return self._stage

    def begin(self, stage: str) -> None:
        """Start ``stage`` (ending the running one, without detail)."""
        with self._lock:
            if self._stage is not None:
                self.end()
            self._stage = stage
            self._stage_started = time.monotonic()
            self._began(stage)

    def end(self, detail: str = "", *, failed: bool = False) -> None:
        """End the running stage, with what it did (``"83 resources"``); no-op without one."""
        with self._lock:
            if self._stage is None:
                return
            stage, self._stage = self._stage, None
            self._ended(stage, time.monotonic() - self._stage_started, detail, failed)

    def close(self, summary: str = "") -> None:
        """End the running stage as failed (an error stopped it), then show ``summary``."""
        with self._lock:
            if self._stage is not None:
                self.end("stopped", failed=True)
            self._closed(summary, time.monotonic() - self._started)

    def _began(self, stage: str) -> None:
        """Hook: a stage started."""

    def _ended(self, stage: str, seconds: float, detail: str, failed: bool) -> None:
        """Hook: a stage ended."""

    def _closed(self, summary: str, seconds: float) -> None:
        """Hook: the plan is over."""


def _line(stage: str, seconds: float, detail: str) -> str:
    return f"{stage:<14} {seconds:6.1f}s  {detail}".rstrip()


class LineProgress(Progress):
    """Plain lines, one per finished stage (CI logs and pipes), prefixed ``aigw <title>:``."""

    def __init__(
        self,
        stream: TextIO,
        title: str = "plan",
        *,
        still_running_seconds: float = STILL_RUNNING_SECONDS,
    ):
        super().__init__(title)
        self.stream = stream
        self.still_running_seconds = still_running_seconds
        self._wake = threading.Event()
        self._watch: threading.Thread | None = None
        self._reported = (0.0, 0)

    def _began(self, stage: str) -> None:
        if self._watch is None:
            self._watch = threading.Thread(target=self._watch_long_stages, daemon=True)
            self._watch.start()

    def _ended(self, stage: str, seconds: float, detail: str, failed: bool) -> None:
        self._write(_line(stage, seconds, f"failed: {detail}" if failed else detail))

    def _closed(self, summary: str, seconds: float) -> None:
        self._wake.set()
        if summary:
            self._write(_line("total", seconds, summary))

    def _write(self, text: str) -> None:
        self.stream.write(f"aigw {self.title}: {text}\n")
        self.stream.flush()

    def _watch_long_stages(self) -> None:
        period = self.still_running_seconds
        while not self._wake.wait(min(period / 6, 5.0)):
            with self._lock:
                if self._stage is None:
                    continue
                running = time.monotonic() - self._stage_started
                due = int(running // period)
                if due and self._reported != (self._stage_started, due):
                    self._reported = (self._stage_started, due)
                    self._write(_line(self._stage, running, "still running"))


class LiveProgress(Progress):
    """A terminal's view: finished stages as lines, the running one counting on a status line."""

    def __init__(self, stream: TextIO, title: str = "plan"):
        super().__init__(title)
        self.stream = stream
        self._frame = 0
        self._stop = threading.Event()
        self._painter: threading.Thread | None = None

    def _began(self, stage: str) -> None:
        self._paint()
        if self._painter is None:
            self._painter = threading.Thread(target=self._repaint, daemon=True)
            self._painter.start()

    def _ended(self, stage: str, seconds: float, detail: str, failed: bool) -> None:
        self._clear()
        mark = "✗" if failed else "✓"
        self.stream.write(f"{mark} {_line(stage, seconds, detail)}\n")
        self.stream.flush()

    def _closed(self, summary: str, seconds: float) -> None:
        self._stop.set()
        self._clear()
        if summary:
            self.stream.write(f"  {_line(self.title, seconds, summary)}\n")
        self.stream.flush()

    def _repaint(self) -> None:
        while not self._stop.wait(_REFRESH_SECONDS):
            with self._lock:
                self._paint()

    def _paint(self) -> None:
        if self._stage is None:
            return
        self._frame += 1
        spinner = _SPINNER[self._frame % len(_SPINNER)]
        running = time.monotonic() - self._stage_started
        self.stream.write(f"\r\x1b[2K{spinner} {_line(self._stage, running, '')}")
        self.stream.flush()

    def _clear(self) -> None:
        self.stream.write("\r\x1b[2K")


def reporter(stream: TextIO, *, quiet: bool = False, title: str = "plan") -> Progress:
    """The reporter for ``stream``: nothing when quiet, live on a terminal, else plain lines."""
    if quiet:
        return Progress(title)
    if stream.isatty() and os.environ.get("TERM", "") != "dumb":
        return LiveProgress(stream, title)
    return LineProgress(stream, title)
