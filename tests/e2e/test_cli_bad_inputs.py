"""A folder of broken files next to good ones: the good ones are done, each broken one
gets a failure record and one line, exit code 1, no traceback."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import MOBILE_OCR_PARAMS, REALDOCS, cli_params

pytestmark = pytest.mark.e2e


def test_bad_inputs_fail_alone(tmp_path):
    inputs = tmp_path / "in"
    shutil.copytree(REALDOCS / "bad_inputs", inputs)
    shutil.copy(REALDOCS / "paddleocr" / "word_ch_1.jpg", inputs / "good.jpg")
    # A good image under a Latin-1 name (not UTF-8): "café.jpg" from an old archive.
    shutil.copy(REALDOCS / "paddleocr" / "word_ch_1.jpg", os.path.join(os.fsencode(inputs), b"caf\xe9.jpg"))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "ray_ocr.run", "--pipeline", "OCR", "--input_dir", str(inputs),
         "--output_dir", str(out), "--device", "cpu", "--batch_size", "8", *cli_params(MOBILE_OCR_PARAMS)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    bad = {"empty.png", "crazyones_text_renamed.jpg", "Seige_of_Vicksburg_truncated_half.pdf",
           "encrypted_rc4_libreoffice-writer-password.pdf", "caf\\xe9.jpg"}
    failures = [json.loads(l) for l in (out / "failures.jsonl").read_text().splitlines()]
    assert {f["key"] for f in failures} == bad
    assert all(f["message"] and f["stage"] and f["error_type"] for f in failures)
    # The summary names each failed file with its reason: one line each, as recorded.
    reported = [l.strip() for l in proc.stdout.splitlines() if l.strip().startswith("failed: ")]
    assert sorted(reported) == sorted(
        f"failed: {f['key']}: {f['stage']} failed: {f['error_type']}: {f['message']}" for f in failures)
    assert "password is needed" in proc.stdout
    assert "failed: caf\\xe9.jpg: list failed: UnicodeError: its file name is not valid UTF-8" in proc.stdout
    assert json.loads((out / "good.json").read_text())["rec_texts"] == ["韩国小馆"]
    truncated = json.loads((out / "book_truncated_half.json").read_text())
    assert truncated["rec_texts"]
    manifest = [json.loads(l) for l in (out / "ray_ocr_manifest.jsonl").read_text().splitlines()]
    [record] = [r for r in manifest if r["key"] == "book_truncated_half.jpg"]
    assert record["status"] == "done" and "truncated JPEG" in record["warnings"][0]
    assert "book_truncated_half.jpg: truncated JPEG" in proc.stderr

    # Files broken for good: --skip_failed leaves them be, and the rerun ends with 0.
    failures_before = (out / "failures.jsonl").read_bytes()
    rerun = subprocess.run(
        [sys.executable, "-m", "ray_ocr.run", "--pipeline", "OCR", "--input_dir", str(inputs),
         "--output_dir", str(out), "--device", "cpu", "--skip_failed", *cli_params(MOBILE_OCR_PARAMS)],
        capture_output=True, text=True, timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    files = len(os.listdir(inputs))
    assert f"skipped {files} inputs finished by an earlier run ({len(bad)} of them failed: --skip_failed" in rerun.stderr
    assert (out / "failures.jsonl").read_bytes() == failures_before
