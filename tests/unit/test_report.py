"""report.html without a browser: self-contained and escaped, whatever the summary holds.
What Chromium makes of it is checked in tests/e2e/test_report_browser.py."""

from __future__ import annotations

import os
import re

from ray_ocr.report import REPORT_NAME, render_report, write_report
from tests.reportpage import Page, sample_summary


def test_report_loads_nothing_from_the_network(tmp_path):
    path = write_report(str(tmp_path), sample_summary())
    assert path == str(tmp_path / REPORT_NAME)
    text = (tmp_path / REPORT_NAME).read_text(encoding="utf-8")
    page = Page(text)
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


def test_report_renders_without_a_timeline():
    old = sample_summary()
    del old["timeline"]
    page = Page(render_report(old))
    assert page.polylines == []
    assert "No timeline in this summary." in render_report(old)
    rows = page.tables["failures"][1:]
    assert rows[0][:4] == ["发票/发票.png", "predict", "RuntimeError",
                           "shape <1, 3, 0, 0> & empty tensor"]
    assert rows[1][0] == "scans/a&b <draft>.pdf" and rows[1][2] == "ActorDiedError"

    empty = Page(render_report({}))
    assert empty.by_id["stat-inputs"] == "—"
    assert "actors" not in empty.tables and "failures" not in empty.tables
