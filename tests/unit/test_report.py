"""report.html: self-contained, escaped, and right when a real browser renders it.

The browser tests run headless Chromium (Debian package ``chromium``) on the written
file and read back the DOM it built and a screenshot, so they check what a person
would see, not just the string we wrote.
"""

from __future__ import annotations

import os
import re
import subprocess
from html.parser import HTMLParser

import pytest

from ray_ocr.report import REPORT_NAME, render_report, write_report

CHROMIUM = "/usr/bin/chromium"

NODE_A = "8f3a9c21" + "0" * 48  # Ray node ids are 56 hex digits
NODE_B = "c0ffee77" + "1" * 48
ACTOR_0 = "ray_ocr:OCR:gpu0:0"
ACTOR_1 = "ray_ocr:OCR:gpu1:0"

FAILURES = [
    {"key": "发票/发票.png", "stage": "predict", "error_type": "RuntimeError",
     "message": "shape <1, 3, 0, 0> & empty tensor", "attempts": 2},
    {"key": "scans/a&b <draft>.pdf", "stage": "crash", "error_type": "ActorDiedError",
     # A URL in a message is text, not a resource: it must not count as a fetch.
     "message": "worker died; see https://docs.ray.io/en/latest/ray-core/fault-tolerance.html",
     "attempts": 3},
]


def _summary() -> dict:
    # 12 batches over ~30 s: actor 0 steady, actor 1 slower and restarted once.
    timeline = []
    for i in range(7):
        timeline.append({"actor": ACTOR_0, "t": 2.0 + 4.1 * i, "files": 4, "pages": 5 + i % 3})
    for i in range(5):
        timeline.append({"actor": ACTOR_1, "t": 3.5 + 5.3 * i, "files": 4, "pages": 4})
    timeline.sort(key=lambda ev: ev["t"])
    return {
        "pipeline": "OCR",
        "device": "gpu",
        "inputs": 50,
        "skipped": 0,
        "succeeded": 46,
        "failed": 2,
        "pages": sum(ev["pages"] for ev in timeline),
        "wall_seconds": 31.874,
        "files_per_second": 1.5687,
        "pages_per_second": 2.0393,
        "interrupted": False,
        "recycled_actors": 1,
        "actors": {
            ACTOR_0: {"node": NODE_A, "gpu_ids": ["0"], "cuda_visible_devices": "0",
                      "batches": 7, "busy_seconds": 28.4, "pids": [101], "restarts": 0},
            ACTOR_1: {"node": NODE_B, "gpu_ids": ["1"], "cuda_visible_devices": "1",
                      "batches": 5, "busy_seconds": 22.05, "pids": [202, 305], "restarts": 1},
        },
        "failures": [f"{f['key']}: {f['stage']} failed: {f['error_type']}: {f['message']}"
                     for f in FAILURES],
        "failure_records": FAILURES,
        "timeline": timeline,
    }


class _Page(HTMLParser):
    """What the tests look at: text by element id, table rows, polylines, resource URLs."""

    _RESOURCE_ATTRS = {"src", "href", "xlink:href", "srcset", "action", "poster", "data",
                       "background", "formaction", "ping"}

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.by_id: dict[str, str] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.polylines: list[dict] = []
        self.resources: list[str] = []
        self.style = ""
        self.csp = ""
        self._open_ids: list[tuple[str, str]] = []  # (tag, id) whose text we collect
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._in_style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.resources += [v for k, v in attrs.items() if k in self._RESOURCE_ATTRS and v]
        self.style += attrs.get("style") or ""
        if tag == "style":
            self._in_style = True
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "content-security-policy":
            self.csp = attrs.get("content") or ""
        if attrs.get("id"):
            self.by_id[attrs["id"]] = ""
            self._open_ids.append((tag, attrs["id"]))
        if tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "polyline":
            self.polylines.append(attrs)

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False
        if self._open_ids and self._open_ids[-1][0] == tag:
            self._open_ids.pop()
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._in_style:
            self.style += data
        for _, element_id in self._open_ids:
            self.by_id[element_id] += data
        if self._cell is not None:
            self._cell.append(data)


# -- without a browser -------------------------------------------------------------

def test_report_loads_nothing_from_the_network(tmp_path):
    path = write_report(str(tmp_path), _summary())
    assert path == str(tmp_path / REPORT_NAME)
    text = (tmp_path / REPORT_NAME).read_text(encoding="utf-8")
    page = _Page(text)
    network = [u for u in page.resources if re.match(r"\s*(https?:)?//", u, re.I)]
    assert not network, network
    assert "url(" not in page.style and "@import" not in page.style
    assert "<script" not in text.lower()
    # The only http(s) text on the page is the failure message, shown escaped as text.
    assert re.findall(r"https?://[^\s<\"]+", text) == [
        "https://docs.ray.io/en/latest/ray-core/fault-tolerance.html"]
    # And should anything slip in, the browser is told to fetch nothing.
    assert page.csp.startswith("default-src 'none';")
    assert not [n for n in os.listdir(tmp_path) if n != REPORT_NAME]  # no temp file left


def test_report_renders_without_timeline_or_failure_records():
    old = _summary()
    del old["timeline"], old["failure_records"]
    page = _Page(render_report(old))
    assert page.polylines == []
    assert "No timeline in this summary." in render_report(old)
    # Failures come back from the one-line strings, key with ": " patterns aside.
    rows = page.tables["failures"][1:]
    assert rows[0][:4] == ["发票/发票.png", "predict", "RuntimeError",
                           "shape <1, 3, 0, 0> & empty tensor"]
    assert rows[1][0] == "scans/a&b <draft>.pdf" and rows[1][2] == "ActorDiedError"

    empty = _Page(render_report({}))
    assert empty.by_id["stat-inputs"] == "—"
    assert "actors" not in empty.tables and "failures" not in empty.tables


# -- in headless Chromium ----------------------------------------------------------

def _chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, timeout=120, check=True,
                          env={**os.environ, "HOME": str(tmp_path)})


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """(DOM text as Chromium built it, screenshot path) for the realistic summary."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    tmp = tmp_path_factory.mktemp("report")
    url = "file://" + write_report(str(tmp / "out"), _summary())
    dom = _chromium(tmp, "--dump-dom", url).stdout.decode("utf-8")
    shot = tmp / "report.png"
    _chromium(tmp, "--hide-scrollbars", "--window-size=1200,1400", f"--screenshot={shot}", url)
    return dom, shot


def test_browser_shows_the_headline_numbers(rendered):
    page = _Page(rendered[0])
    assert page.by_id["stat-inputs"] == "50"
    assert page.by_id["stat-succeeded"] == "46"
    assert page.by_id["stat-failed"] == "2"
    assert page.by_id["stat-skipped"] == "0"
    assert page.by_id["stat-pages"] == str(_summary()["pages"])
    assert page.by_id["stat-wall_seconds"] == "31.9"
    assert page.by_id["stat-files_per_second"] == "1.57"
    assert page.by_id["stat-pages_per_second"] == "2.04"


def test_browser_shows_the_actor_table(rendered):
    rows = _Page(rendered[0]).tables["actors"]
    assert rows[0] == ["actor", "node", "GPU ids", "batches", "busy s", "busy ratio", "restarts"]
    assert rows[1] == [ACTOR_0, "8f3a9c21…", "0", "7", "28.4", "89%", "0"]
    assert rows[2] == [ACTOR_1, "c0ffee77…", "1", "5", "22.1", "69%", "1"]


def test_browser_shows_failures_escaped(rendered):
    dom = rendered[0]
    rows = _Page(dom).tables["failures"][1:]
    assert [r[0] for r in rows] == [f["key"] for f in FAILURES]
    assert [r[3] for r in rows] == [f["message"] for f in FAILURES]
    assert [r[4] for r in rows] == ["2", "3"]
    # The browser kept them as text: no <draft> or <1,...> element was created.
    assert "shape &lt;1, 3, 0, 0&gt; &amp; empty tensor" in dom
    assert "a&amp;b &lt;draft&gt;.pdf" in dom and "<draft>" not in dom


def test_browser_draws_one_line_per_actor(rendered):
    lines = _Page(rendered[0]).polylines
    assert sorted(line["data-actor"] for line in lines) == [ACTOR_0, ACTOR_1]
    for line in lines:
        points = [tuple(map(float, p.split(","))) for p in line["points"].split()]
        events = sum(1 for ev in _summary()["timeline"] if ev["actor"] == line["data-actor"])
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
