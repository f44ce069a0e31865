"""scripts/bench.py --quick end to end: the three CPU variants run on the same real
files and every number the README table is built from is present and sane."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ray_ocr.config import DEFAULT_PAGES_PER_TASK
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

QUICK_FILES = 4  # bench.py --quick: 3 images and a 4-page PDF
QUICK_PAGES = 7
CPU_VARIANTS = ("direct", "multiprocess", "ray_ocr")


@pytest.fixture(scope="module")
def bench_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "b.json"
    proc = subprocess.run(
        [sys.executable, "scripts/bench.py", "--quick", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=400, check=False,
    )
    assert proc.returncode == 0, f"bench exited {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return json.loads(out.read_text()), proc.stdout


def test_every_cpu_variant_did_all_files(bench_report):
    report, _ = bench_report
    assert report["problems"] == []
    assert report["settings"]["files"] == QUICK_FILES
    assert report["settings"]["pages"] == QUICK_PAGES
    for name in CPU_VARIANTS:
        v = report["variants"][name]
        assert v["ok"], v.get("error")
        assert v["files"] == QUICK_FILES and v["failed"] == 0, (name, v)
        assert v["pages"] == QUICK_PAGES and v["json_files"] == QUICK_PAGES, (name, v)
    assert "multidevice" in report["skipped"]  # GPU only; said so on CPU


def test_rates_ratios_latency_and_memory(bench_report):
    report, _ = bench_report
    variants = report["variants"]
    assert variants["direct"]["ratio_files_per_second"] == 1.0
    assert variants["direct"]["ratio_pages_per_second"] == 1.0
    for name in CPU_VARIANTS:
        v = variants[name]
        assert v["files_per_second"] > 0 and v["pages_per_second"] > 0, name
        assert v["ratio_files_per_second"] > 0 and v["ratio_pages_per_second"] > 0, name
        assert 0 < v["first_result_seconds"] <= v["wall_seconds"], name
        assert v["peak_rss_mb"] > 0, name
        assert v["tree_peak_rss_mb"] >= v["peak_rss_mb"], name


def test_ray_ocr_busy_ratios(bench_report):
    report, _ = bench_report
    ray = report["variants"]["ray_ocr"]
    actors = ray["details"]["actors"]
    assert len(actors) == report["settings"]["instances"] == 2
    for name, stats in actors.items():
        assert 0 < stats["busy_ratio"] <= 1, (name, stats)
        assert stats["busy_ratio"] <= stats["steady_busy_ratio"] <= 1, (name, stats)
    # Batch size 1: a batch per image, and one per part of the PDF.
    parts = -(-4 // DEFAULT_PAGES_PER_TASK) if 4 > DEFAULT_PAGES_PER_TASK else 1
    assert sum(stats["batches"] for stats in actors.values()) == QUICK_FILES - 1 + parts


def test_metadata_and_table(bench_report):
    report, stdout = bench_report
    assert report["machine"]["cores"] >= 1 and report["machine"]["ram_gb"] > 0
    for dist in ("paddleocr", "ray"):
        assert report["versions"].get(dist)
    assert report["versions"].get("paddlepaddle") or report["versions"].get("paddlepaddle-gpu")
    assert report["date"]
    for name in CPU_VARIANTS:
        assert name in stdout
    assert "skipped" in stdout


def test_long_pdf_form_splits_the_pdf_across_the_actors(tmp_path):
    """`--long_pdf`: one PDF of N pages and 4 images; ray_ocr runs the PDF as page-range
    tasks on both actors, and writes what the whole-file multi-process variant writes."""
    out = tmp_path / "long.json"
    pages = 6
    proc = subprocess.run(
        [sys.executable, "scripts/bench.py", "--long_pdf", str(pages), "--variants", "multiprocess,ray_ocr",
         "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, f"bench exited {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    report = json.loads(out.read_text())
    assert report["problems"] == []
    settings = report["settings"]
    assert settings["long_pdf"] == pages and settings["pdfs"] == 1 and settings["images"] == 4
    assert settings["pages"] == pages + 4
    ray, mp = report["variants"]["ray_ocr"], report["variants"]["multiprocess"]
    assert ray["json_files"] == mp["json_files"] == pages + 4
    assert mp["wall_vs_multiprocess"] == 1.0 and ray["wall_vs_multiprocess"] > 0
    actors = ray["details"]["actors"]
    parts = -(-pages // DEFAULT_PAGES_PER_TASK)
    assert sum(a["batches"] for a in actors.values()) == parts + 4  # batch size 1
    assert all(a["batches"] >= 1 for a in actors.values()) and len(actors) == 2
    assert "wall time / multiprocess's" in proc.stdout
