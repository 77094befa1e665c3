"""specxform.progress: the library reports progress as events, and only the CLI draws them."""

from __future__ import annotations

from specxform.cli.progress import progress_bars
from specxform.progress import ProgressEvent, report


def test_report_sends_one_event_with_its_figures() -> None:
    seen: list[ProgressEvent] = []
    report(seen.append, "caching", 3, 10, chunks=12)
    assert seen == [ProgressEvent("caching", 3, 10, {"chunks": 12})]
    assert not seen[0].finished
    assert ProgressEvent("caching", 10, 10).finished
    assert not ProgressEvent("caching", 10, None).finished


def test_report_without_a_callback_does_nothing() -> None:
    report(None, "caching", 1, 2)  # must not raise: None is the library's default


def test_bars_are_off_off_a_terminal() -> None:
    # Under pytest stderr is captured, not a terminal: a bar there would be a cut frame.
    with progress_bars(True) as callback:
        assert callback is None
    with progress_bars(False) as callback:
        assert callback is None
