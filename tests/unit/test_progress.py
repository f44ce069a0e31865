"""Progress lines while the inputs are still being discovered, and once they are known."""

import io

from ray_ocr.engine.progress import Progress


def test_unknown_total_until_discovery_ends():
    progress = Progress(None, interval=0, stream=io.StringIO())
    progress.update(3, 5, 1)
    assert progress.line().startswith("progress: 3/? files (still listing inputs), 5 pages, 1 failed")
    assert "ETA" not in progress.line()
    progress.set_total(12)
    line = progress.line()
    assert line.startswith("progress: 3/12 files (25%), 5 pages, 1 failed") and "ETA" in line


def test_nothing_to_do_shows_nothing():
    assert not Progress(0, stream=io.StringIO()).enabled
    assert Progress(None, stream=io.StringIO()).enabled
