"""Stopping the driver mid-run: SIGTERM stops cleanly (exit 130, resume hint), SIGKILL
leaves only complete JSONs; either way a rerun finishes the set without redoing
finished inputs.

The signal tests are about the driver, not about OCR: they run the scheduling stand-in
(one second per file), so a stop lands mid-run at a known pace. SIGKILL runs the real
OCR pipeline: its JSONs, written by the driver as they arrive, must all be whole."""

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import MOBILE_OCR_PARAMS, STANDIN, cli_params, copy_docs
from tests.helpers import manifest_records

pytestmark = pytest.mark.e2e

NAMES = ["general_ocr_002.jpg", "11.jpg", "table.jpg", "textline.png", "word_ch_1.jpg", "img_12.jpg",
         "tipc_web_test.jpg", "seal.png", "formula.png", "book.jpg"]
ONE_SECOND_A_FILE = ["--pipeline", STANDIN, "--param", "sleep_seconds=1"]
REAL_OCR = ["--pipeline", "OCR", *cli_params(MOBILE_OCR_PARAMS)]


def start(inputs, out, pipeline, *extra):
    args = [sys.executable, "-m", "ray_ocr.run", *pipeline, "--input_dir", str(inputs), "--output_dir", str(out),
            "--device", "cpu", *extra]
    return args, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_outputs(out, count, proc, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len([p for p in out.glob("*.json") if p.name != "summary.json"]) >= count:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("no outputs in time")


def done_keys(out):
    return [r["key"] for r in manifest_records(out) if r["status"] == "done"]


def finish_with_rerun(args, out, before, names=NAMES):
    """Rerun; nothing recorded done before is redone; all inputs end done exactly once."""
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json") if p.name != "summary.json"}
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f", {len(before)} skipped," in proc.stdout, proc.stdout
    for key in before:
        name = key.rsplit(".", 1)[0] + ".json"
        assert (out / name).stat().st_mtime_ns == mtimes[name]
    assert sorted(done_keys(out)) == sorted(names)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_stop_cleanly(tmp_path, sig):
    inputs = copy_docs(tmp_path / "in", NAMES)
    out = tmp_path / "out"
    args, proc = start(inputs, out, ONE_SECOND_A_FILE)
    wait_for_outputs(out, 2, proc)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-2000:]
    assert "run the same command again" in stderr and "Traceback" not in stderr
    before = done_keys(out)
    assert 2 <= len(before) < len(NAMES)
    for path in out.glob("*.json"):
        json.loads(path.read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["succeeded"] == len(before)
    assert f"ray_ocr: stopped early: {len(before)} files done," in stdout
    finish_with_rerun(args, out, before)


def test_a_second_signal_stops_at_once_with_one_message(tmp_path):
    inputs = copy_docs(tmp_path / "in", NAMES)
    out = tmp_path / "out"
    # Batches of 4 (seconds each): the second signal lands while one is still running.
    args, proc = start(inputs, out, ONE_SECOND_A_FILE, "--batch_size", "4")
    wait_for_outputs(out, 1, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(1.5)  # the first one is handled (the loop wakes at least once a second)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "ray_ocr: stopped at once" in stderr and "Traceback" not in stderr, stderr[-2000:]
    before = done_keys(out)
    assert len(before) < len(NAMES)
    for path in out.glob("*.json"):
        json.loads(path.read_text())
    finish_with_rerun(args, out, before)


def test_sigkill_leaves_complete_jsons_and_a_rerun_finishes(tmp_path):
    names = NAMES[:6]
    inputs = copy_docs(tmp_path / "in", names)
    out = tmp_path / "out"
    args, proc = start(inputs, out, REAL_OCR)
    wait_for_outputs(out, 3, proc)
    proc.kill()
    proc.communicate(timeout=60)
    for path in out.glob("*.json"):
        json.loads(path.read_text())  # atomic writes: never half a file
    before = done_keys(out)
    assert len(before) >= 3
    finish_with_rerun(args, out, before, names)
