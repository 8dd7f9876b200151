"""``aigw plan``'s progress: stage lines in a log, a live status line on a terminal, or nothing."""

from __future__ import annotations

import io
import re
import time

import pytest

from infra.offline.progress import LineProgress, LiveProgress, Progress, reporter


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_name_each_stage_with_its_time_and_detail() -> None:
    stream = io.StringIO()
    progress = LineProgress(stream, "plan prod")
    progress.begin("config")
    progress.end("Pulumi.prod.yaml")
    progress.begin("aws")
    progress.begin("gcp")  # a new stage ends the running one
    progress.end("66 resources")
    progress.close("compliant")
    lines = stream.getvalue().splitlines()
    assert [line.split()[3] for line in lines] == ["config", "aws", "gcp", "total"]
    assert all(line.startswith("aigw plan prod: ") for line in lines)
    assert re.fullmatch(r"aigw plan prod: config +\d+\.\ds  Pulumi\.prod\.yaml", lines[0])
    assert re.fullmatch(r"aigw plan prod: aws +\d+\.\ds", lines[1])
    assert lines[2].endswith("s  66 resources")
    assert lines[3].endswith("s  compliant")


def test_a_stage_stopped_by_an_error_is_marked_failed() -> None:
    stream = io.StringIO()
    progress = LineProgress(stream)
    progress.begin("azure")
    progress.close()
    assert re.fullmatch(r"aigw plan: azure +\d+\.\ds  failed: stopped\n", stream.getvalue())


def test_a_long_stage_is_reported_while_it_runs() -> None:
    stream = io.StringIO()
    progress = LineProgress(stream, still_running_seconds=0.2)
    progress.begin("policy gate")
    time.sleep(0.6)
    progress.end("61 policies, compliant")
    progress.close()
    lines = stream.getvalue().splitlines()
    running = [line for line in lines if line.endswith("still running")]
    assert running and all("policy gate" in line for line in running)
    assert lines[-1].endswith("61 policies, compliant")


def test_a_terminal_gets_a_counting_status_line_then_the_finished_stage() -> None:
    stream = _Terminal()
    progress = LiveProgress(stream)
    progress.begin("aws")
    time.sleep(0.35)
    progress.end("92 resources")
    progress.close("done")
    text = stream.getvalue()
    status = re.findall(r"\r\x1b\[2K. aws +(\d+\.\d)s", text)
    assert len(status) >= 2, "the status line is repainted while the stage runs"
    # The status line is cleared before each finished line, and at the end.
    *_, finished, summary = text.split("\r\x1b[2K")
    assert re.fullmatch(r"✓ aws +\d+\.\ds  92 resources\n", finished)
    assert re.fullmatch(r" +plan +\d+\.\ds  done\n", summary)


@pytest.mark.parametrize(
    ("stream", "quiet", "term", "kind"),
    [
        (io.StringIO(), False, "xterm", LineProgress),
        (_Terminal(), False, "xterm", LiveProgress),
        (_Terminal(), False, "dumb", LineProgress),
        (_Terminal(), True, "xterm", Progress),
        (io.StringIO(), True, "xterm", Progress),
    ],
)
def test_the_reporter_fits_the_stream(
    stream: io.StringIO, quiet: bool, term: str, kind: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", term)
    chosen = reporter(stream, quiet=quiet)
    assert type(chosen) is kind
    chosen.begin("config")
    chosen.close("done")
    if kind is Progress:
        assert stream.getvalue() == ""
