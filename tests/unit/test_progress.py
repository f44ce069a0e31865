"""Progress lines while the inputs are still being discovered, and once they are known;
the ETA's page estimate (ray_ocr/engine/progress.py)."""

import io

from ray_ocr.engine.progress import PageEstimate, Progress


def test_unknown_total_until_discovery_ends():
    progress = Progress(None, interval=0, stream=io.StringIO())
    progress.update({"a.png": 1, "b.pdf": 4}, {"a.png": 1, "b.pdf": 4, "c.png": 0}, 1)
    assert progress.line().startswith("progress: 3/? files (still listing inputs), 5 pages, 1 failed")
    assert "ETA" not in progress.line()
    progress.set_total(12)
    line = progress.line()
    assert line.startswith("progress: 3/12 files (25%), 5 pages (~9 left), 1 failed") and "ETA" in line


def test_nothing_to_do_shows_nothing():
    assert not Progress(0, stream=io.StringIO()).enabled
    assert Progress(None, stream=io.StringIO()).enabled


def test_pages_left_follow_a_long_pdf_part_by_part():
    """A 10-page PDF read (its count known) among images: its pages count until done,
    part by part, while the file count stands still."""
    progress = Progress(3, interval=0, stream=io.StringIO())
    progress.expect("long.pdf", 10)
    progress.update({"a.png": 1}, {"a.png": 1}, 0)
    assert progress.pages_left() == 10 + 1  # the PDF, and one image not read yet
    progress.update({"long.pdf": 4}, {}, 0)
    assert progress.files == 1 and progress.pages_left() == 6 + 1
    progress.update({"long.pdf": 6}, {"long.pdf": 10}, 0)
    assert progress.pages_left() == 1


def test_an_input_not_read_yet_counts_the_median_finished_input():
    """The one long PDF does not make every image left count as a long document."""
    estimate = PageEstimate()
    assert estimate.left(5) == 5  # nothing finished yet: a page each
    estimate.done({}, {"long.pdf": 300, "a.png": 1, "b.png": 1})
    assert estimate.typical() == 1 and estimate.left(4) == 4
    estimate.done({}, {"c.pdf": 20, "d.pdf": 20, "e.pdf": 30})
    assert estimate.typical() == 20


def test_a_resumed_pdf_counts_the_pages_this_run_did_not_its_whole_length():
    """A PDF with 2 of its 6 pages left (an earlier run did 4): it finishes with a record
    of 6 pages, but the inputs not read yet count as 2 each, not 6 (a trial saw the
    pages left go from ~4 to ~10 with 7 pages left)."""
    estimate = PageEstimate()
    estimate.expect("resumed.pdf", 2)
    estimate.done({"resumed.pdf": 2}, {"resumed.pdf": 6})
    assert estimate.typical() == 2 and estimate.left(2) == 4


def test_a_failed_input_takes_its_pages_left_with_it():
    estimate = PageEstimate()
    estimate.expect("bad.pdf", 50)
    estimate.done({"bad.pdf": 10}, {})
    assert estimate.left(1) == 40
    estimate.done({}, {"bad.pdf": 50})  # failed after 10 pages: nothing of it is left
    assert estimate.left(0) == 0 and estimate.expected == {} and not estimate.done_of


def test_the_eta_keeps_the_pace_since_the_first_pages_not_the_start_up(monkeypatch):
    """30 s of actors starting, then a page every 2 s: 2 pages left is 4 s, not the
    minute the pace since the start would say."""
    from ray_ocr.engine import progress as module

    now = [0.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    progress = Progress(5, interval=0, stream=io.StringIO())
    now[0] = 0.5
    progress.update({"bad.png": 0}, {"bad.png": 0}, 1)  # a file that could not be read: no pace
    now[0] = 30.0
    progress.update({"a.png": 1}, {"a.png": 1}, 0)
    assert progress.line().endswith("ETA ?")  # one point is no pace yet
    now[0] = 32.0
    progress.update({"b.png": 1}, {"b.png": 1}, 0)
    assert progress.pages_left() == 2 and progress.line().endswith("ETA 0m04s")


def test_a_terminal_of_0_rows_gets_log_lines_not_a_bar(caplog):
    """tqdm draws nothing on a terminal that says it has 0 rows (some `script` and
    serial consoles): the run would show no progress at all, so it logs lines."""
    import fcntl
    import logging
    import os
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        for rows, bar in ((0, False), (40, True)):
            fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, 120, 0, 0))
            progress = Progress(3, interval=1e-9, stream=terminal)
            assert (progress._bar is not None) is bar
            with caplog.at_level(logging.INFO, logger="ray_ocr.engine.progress"):
                caplog.clear()
                progress.update({"a.png": 1}, {"a.png": 1}, 0)
            assert [r.getMessage().startswith("progress: 1/3 files") for r in caplog.records] == ([] if bar else [True])
            progress.close()
    os.close(leader)
