"""scripts/bench.py --quick end to end: the three CPU variants run on the same real
files and every number the README table is built from is present and sane."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from ray_ocr.config import DEFAULT_PAGES_PER_TASK
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

QUICK_FILES = 4  # bench.py --quick: 3 images and a 4-page PDF
QUICK_PAGES = 7
CPU_VARIANTS = ("direct", "multiprocess", "ray_ocr")


def run_bench(out, *args: str) -> tuple[dict, str]:
    """bench.py in its own process group: on a timeout its variant processes (and their Ray)
    are killed with it, not left running on the machine."""
    proc = subprocess.Popen([sys.executable, "scripts/bench.py", *args, "--json", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=840)  # under pytest's 900 s
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
    assert proc.returncode == 0, f"bench exited {proc.returncode}\n{stdout}\n{stderr[-4000:]}"
    return json.loads(out.read_text()), stdout


@pytest.fixture(scope="module")
def bench_report(tmp_path_factory):
    return run_bench(tmp_path_factory.mktemp("bench") / "bench.json", "--quick")


def test_every_cpu_variant_wrote_the_same_outputs(bench_report):
    report, stdout = bench_report
    assert report["problems"] == []
    settings = report["settings"]
    assert (settings["files"], settings["pdfs"], settings["pages"]) == (QUICK_FILES, 1, QUICK_PAGES)
    for name in CPU_VARIANTS:
        v = report["variants"][name]
        assert v["ok"], v.get("error")
        assert v["files"] == QUICK_FILES and v["failed"] == 0 and v["pages"] == QUICK_PAGES, (name, v)
    assert "multidevice" in report["skipped"] and "skipped" in stdout  # GPU only; said so on CPU
    assert "every variant wrote the same JSON files" in stdout


def test_rates_ratios_latency_memory_and_cpu(bench_report):
    report, stdout = bench_report
    variants = report["variants"]
    assert variants["direct"]["x_direct_files_per_second"] == variants["direct"]["x_direct_pages_per_second"] == 1.0
    assert variants["multiprocess"]["x_multiprocess_steady"] == variants["multiprocess"]["x_multiprocess_wall"] == 1.0
    for name in CPU_VARIANTS:
        v = variants[name]
        assert v["files_per_second"] == pytest.approx(QUICK_FILES / v["wall_seconds"], rel=0.01), name
        assert v["pages_per_second"] == pytest.approx(QUICK_PAGES / v["wall_seconds"], rel=0.01), name
        assert v["x_direct_pages_per_second"] > 0 and v["x_multiprocess_wall"] > 0, name
        assert 0 < v["first_result_seconds"] < v["wall_seconds"], name
        assert v["steady_pages_per_second"] > 0, name
        assert 0 < v["peak_rss_mb"] <= v["tree_peak_rss_mb"], name
        assert v["cpu_seconds"]["root"] > 0 and v["cpu_seconds_per_page"] > 0, name
        assert v["other_load_cores"] >= 0, name
        assert name in stdout
    assert variants["multiprocess"]["cpu_seconds"]["workers"] > variants["multiprocess"]["cpu_seconds"]["root"]
    assert variants["ray_ocr"]["cpu_seconds"]["workers"] > 0  # the ray:: actor processes were seen
    machine = report["machine"]
    assert machine["cores"] >= 1 and machine["ram_gb"] > 0 and report["date"]
    assert machine["versions"].get("paddleocr") and machine["versions"].get("ray")
    assert machine["versions"].get("paddlepaddle") or machine["versions"].get("paddlepaddle-gpu")


def test_ray_ocr_busy_ratios(bench_report):
    report, _ = bench_report
    ray = report["variants"]["ray_ocr"]
    assert len(ray["actors"]) == report["settings"]["instances"] == 2
    assert 0 < ray["summary_wall_seconds"] < ray["wall_seconds"]
    for name, stats in ray["actors"].items():
        # the timeline's times are rounded to milliseconds: a full span may sum to a hair over 1
        assert 0 < stats["busy_ratio"] <= stats["steady_busy_ratio"] <= 1.001, (name, stats)
        assert 0 < stats["last_batch_t"] <= ray["summary_wall_seconds"], (name, stats)
    # Batch size 1: a batch per image, and one per part of the PDF.
    parts = -(-4 // DEFAULT_PAGES_PER_TASK) if 4 > DEFAULT_PAGES_PER_TASK else 1
    assert sum(stats["batches"] for stats in ray["actors"].values()) == QUICK_FILES - 1 + parts


def test_a_variant_that_writes_other_outputs_is_a_problem(monkeypatch):
    """The same-outputs check the tests above rely on does fail: another JSON name, a
    missing page or a failed run is named, and the fastest run of each variant counts."""
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    import bench

    def run(wall, names, ok=True, files=2):
        return {"ok": ok, "files": files, "failed": 2 - files, "pages": len(names), "json_names": names,
                "wall_seconds": wall, "files_per_second": files / wall, "pages_per_second": len(names) / wall,
                "steady_pages_per_second": 1.0}

    same = ["a.json", "b_0.json", "b_1.json"]
    runs = {"direct": [run(10.0, same)], "multiprocess": [run(9.0, same), run(8.0, ["a.json", "b_0.json"])],
            "ray_ocr": [run(5.0, ["a.json", "b_0.json", "c_1.json"]), run(7.0, [], ok=False, files=0)]}
    variants, problems = bench.summarize(runs, files=2, pages=3)
    assert variants["multiprocess"]["wall_seconds"] == 8.0 and variants["multiprocess"]["all_wall_seconds"] == [9.0, 8.0]
    assert variants["ray_ocr"]["x_direct_files_per_second"] == 2.0
    text = "\n".join(problems)
    assert "multiprocess run 2" in text and "'b_1.json'" in text
    assert "ray_ocr run 1" in text and "'c_1.json'" in text
    assert "ray_ocr run 2: ok=False, 0/2 files" in text
    assert not [p for p in problems if p.startswith(("direct", "multiprocess run 1"))]


def test_long_pdf_form_is_one_long_pdf_and_four_images(tmp_path, monkeypatch):
    """`--long_pdf N`'s inputs (the variants then run them as they run --quick's, and
    how a long PDF's parts spread over the actors is tested in tests/ray/test_page_split_ray.py
    and tests/ray/test_api_ray.py)."""
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    import bench

    inputs = bench.make_long_pdf(7, tmp_path / "in")
    assert len(inputs) == 5 and inputs[0].suffix == ".pdf" and all(p.suffix != ".pdf" for p in inputs[1:])
    assert [bench.count_pages(p) for p in inputs] == [7, 1, 1, 1, 1]
    assert len({p.name for p in inputs}) == 5 and all(p.parent == tmp_path / "in" for p in inputs)
