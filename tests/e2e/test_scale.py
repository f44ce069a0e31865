"""scripts/scale.py --quick: the engine (stand-in pipeline, named as such: this is about
the driver at scale, not OCR) takes 2000 small files through, each written once, and
the report holds the numbers the README's scale table is built from."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def test_scale_quick_writes_every_file_once_and_reports_its_rates(tmp_path):
    out = tmp_path / "scale.json"
    proc = subprocess.run([sys.executable, "scripts/scale.py", "--quick", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr[-3000:]}"
    report = json.loads(out.read_text())
    assert report["problems"] == []
    [run] = report["runs"]
    assert run["ok"] and run["size"] == 2000
    assert run["output_jsons"] == run["manifest_done"] == run["manifest_lines"] == 2000
    assert run["temporary_files"] == 0
    assert run["steady_files_per_second"] > 0 and run["files_per_second"] > 0
    assert 0 < run["driver_peak_rss_mb"] < 1024
    assert "steady" in proc.stdout and "2000" in proc.stdout
