"""scripts/scale.py --quick: the engine (stand-in pipeline, named as such: this is about
the driver at scale, not OCR) takes 2000 small files through, each written once, and
the report holds the numbers the README's scale table is built from."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def run_scale(*args: str, out) -> tuple[dict, str]:
    """scripts/scale.py with `args`: its JSON report and its stdout (it must exit 0)."""
    # Its own process group: on a timeout the driver (and its Ray) go with it.
    proc = subprocess.Popen([sys.executable, "scripts/scale.py", *args, "--json", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
    assert proc.returncode == 0, f"{stdout}\n{stderr[-3000:]}"
    return json.loads(out.read_text()), stdout


def test_scale_quick_writes_every_file_once_and_reports_its_rates(tmp_path):
    report, stdout = run_scale("--quick", out=tmp_path / "scale.json")
    [run] = report["runs"]
    assert run["ok"] and run["problems"] == [] and run["exit_code"] == 0
    assert run["size"] == 2000 and run["batch_size"] == 256 and run["instances"] == 2
    assert run["output_jsons"] == run["manifest_done"] == run["manifest_lines"] == 2000
    assert run["temporary_files"] == 0
    # 2000 files at batch 256: 8 batches, the timeline's clock inside the driver's wall
    assert run["batches"] == 8
    assert 0 < run["first_batch_t"] < run["last_batch_t"] <= run["summary_wall_seconds"] < run["wall_seconds"]
    assert run["steady_files_per_second"] > 0 and run["files_per_second"] > 0
    assert 0 < run["driver_peak_rss_mb"] < 1024 and run["tree_peak_rss_mb"] > run["driver_peak_rss_mb"]
    assert 0 < run["driver_cpu_seconds"] < run["wall_seconds"] * report["machine"]["cores"]
    assert run["driver_cpu_ms_per_file"] == pytest.approx(1000 * run["driver_cpu_seconds"] / 2000, rel=0.01)
    assert run["actors_busy_seconds"] > 0
    assert report["scaling"] == []  # one size: nothing to compare
    assert report["target"]["size"] == 2000
    assert "steady" in stdout and "2000" in stdout and "target at 2000 files" in stdout


def test_exactly_once_check_names_each_kind_of_problem(tmp_path, monkeypatch):
    """The checks the e2e test relies on do fail: a missing and an unexpected JSON, a
    manifest line twice or not done, a temporary file left behind."""
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    import scale
    out = tmp_path / "out"
    names = [scale.input_relpath(i)[:-len(".png")] + ".json" for i in range(3)]
    for name in names[:2] + ["g000/d0000/stray.json"]:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("{}")
    (out / "summary.json").write_text("{}")  # the run's own files are not results
    (out / "g000" / "d0000" / ".tmp123.tmp").write_text("")
    lines = [{"key": "a", "status": "done"}, {"key": "a", "status": "done"}, {"key": "b", "status": "failed"}]
    (out / "ray_ocr_manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    checked = scale.check_outputs(out, 3)
    assert checked["output_jsons"] == 3 and checked["manifest_lines"] == 3 and checked["manifest_done"] == 2
    assert checked["temporary_files"] == 1
    problems = "\n".join(checked["problems"])
    assert "1 missing JSONs" in problems and names[2] in problems
    assert "1 unexpected JSONs" in problems and "stray.json" in problems
    assert "manifest: 3 lines, 2 keys, 2 done" in problems
    assert "1 temporary files" in problems


def test_scale_modes_and_listing_against_a_local_s3_server(tmp_path):
    """The two other tables, small: actors writing to moto (every result once, the rate
    set against the server's measured capacity, the driver's CPU per file), and a bucket
    listed lazily by the driver (stopped after its first batches) and walked whole."""
    report, stdout = run_scale("--parts", "modes,listing", "--modes", "s3-actors", "--s3_files", "600",
                               "--listing_sizes", "1200", "--listing_seconds", "3", out=tmp_path / "scale.json")
    assert report["runs"] == []  # no engine table asked for
    [run] = report["modes"]["runs"]
    assert run["mode"] == "s3-actors" and run["ok"] and run["output_jsons"] == run["manifest_done"] == 600
    assert report["modes"]["s3_put_capacity"] > 0 and run["of_capacity"] > 0
    assert 0 < run["loop_steady_cpu_ms_per_file"] <= run["driver_steady_cpu_ms_per_file"]
    [listed] = report["listing"]
    assert listed["objects"] == listed["walk_objects"] == 1200 and listed["exit_code"] == 130  # stopped
    assert 0 < listed["first_input_found"] < listed["ray_started"] < listed["first_batch_sent"]
    assert 0 < listed["files_done"] < 1200 and 0 < listed["walk_peak_rss_mb"] < 1024
    assert "who writes the results" in stdout and "lazy listing of a bucket" in stdout
