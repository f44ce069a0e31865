"""report.html as a real browser renders it: headless Chromium (Debian package
``chromium``) builds the written file, and the tests read back the DOM it made and a
screenshot, so they check what a person would see, not just the string we wrote."""

from __future__ import annotations

import pytest

from ray_ocr.report import write_report
from tests.reportpage import ACTOR_0, ACTOR_1, FAILURES, Page, chromium, need_chromium, sample_summary

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """(DOM text as Chromium built it, screenshot path) for the realistic summary."""
    need_chromium()
    tmp = tmp_path_factory.mktemp("report")
    url = "file://" + write_report(str(tmp / "out"), sample_summary())
    dom = chromium(tmp, "--dump-dom", url).stdout.decode("utf-8")
    shot = tmp / "report.png"
    chromium(tmp, "--hide-scrollbars", "--window-size=1200,1400", f"--screenshot={shot}", url)
    return dom, shot


def test_browser_shows_the_headline_numbers(rendered):
    page = Page(rendered[0])
    assert page.by_id["stat-inputs"] == "50"
    assert page.by_id["stat-succeeded"] == "46"
    assert page.by_id["stat-failed"] == "2"
    assert page.by_id["stat-skipped"] == "0"
    assert page.by_id["stat-pages"] == str(sample_summary()["pages"])
    assert page.by_id["stat-wall_seconds"] == "31.9"
    assert page.by_id["stat-files_per_second"] == "1.57"
    assert page.by_id["stat-pages_per_second"] == "2.04"


def test_browser_shows_the_actor_table(rendered):
    rows = Page(rendered[0]).tables["actors"]
    assert rows[0] == ["actor", "node", "GPU ids", "batches", "busy s", "busy ratio", "restarts"]
    assert rows[1] == [ACTOR_0, "8f3a9c21…", "0", "7", "28.4", "89%", "0"]
    assert rows[2] == [ACTOR_1, "c0ffee77…", "1", "5", "22.1", "69%", "1"]


def test_browser_shows_failures_escaped(rendered):
    dom = rendered[0]
    rows = Page(dom).tables["failures"][1:]
    assert [r[0] for r in rows] == [f["key"] for f in FAILURES]
    assert [r[3] for r in rows] == [f["message"] for f in FAILURES]
    assert [r[4] for r in rows] == ["2", "3"]
    # The browser kept them as text: no <draft> or <1,...> element was created.
    assert "shape &lt;1, 3, 0, 0&gt; &amp; empty tensor" in dom
    assert "a&amp;b &lt;draft&gt;.pdf" in dom and "<draft>" not in dom


def test_browser_draws_one_line_per_actor(rendered):
    lines = Page(rendered[0]).polylines
    assert sorted(line["data-actor"] for line in lines) == [ACTOR_0, ACTOR_1]
    for line in lines:
        points = [tuple(map(float, p.split(","))) for p in line["points"].split()]
        events = sum(1 for ev in sample_summary()["timeline"] if ev["actor"] == line["data-actor"])
        assert len(points) == events + 2  # origin, one per batch, flat to the end
        ys = [y for _, y in points]
        assert ys == sorted(ys, reverse=True) and ys[0] > ys[-1]  # cumulative: rises on screen
    assert "seconds since start" in rendered[0] and "cumulative pages" in rendered[0]


def test_screenshot_is_not_blank_and_shows_both_lines(rendered):
    from PIL import Image

    with Image.open(rendered[1]) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (1200, 1400)
        counts = {colour: n for n, colour in rgb.getcolors(maxcolors=1 << 24)}
    assert len(counts) > 10  # text, table rules, chart: not one flat colour
    # Each series' stroke colour (the first two palette entries) covers far more pixels
    # than its 14x3 legend swatch: the line itself was painted.
    for colour in ((0x00, 0x72, 0xB2), (0xD5, 0x5E, 0x00)):
        assert counts.get(colour, 0) > 300, (colour, counts.get(colour))
