"""report.html as the tests read it: a realistic summary to render, an HTML parser that
pulls out what a person would look at, and headless Chromium (Debian package
``chromium``) to build the page as a browser does."""

from __future__ import annotations

import os
import subprocess
from html.parser import HTMLParser

import pytest

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


def sample_summary() -> dict:
    """summary.json of a realistic run: 12 batches over ~30 s, actor 0 steady, actor 1
    slower and restarted once, two failures with awkward characters."""
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


class Page(HTMLParser):
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


def need_chromium() -> None:
    """Skip the calling test when the browser is not installed."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with a throwaway profile in `tmp_path`, nothing fetched in the
    background; raises if it fails."""
    profile = tmp_path / "profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, timeout=120, check=True,
                          env={**os.environ, "HOME": str(tmp_path)})
