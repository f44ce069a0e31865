"""SealRecognition through the CLI, offline: layout detection off, the mobile OCR models
standing in for its seal-detection and recognition models."""

import json
import subprocess
import sys

import pytest

from tests.conftest import MOBILE_SEAL_PARAMS, cli_params, copy_docs

pytestmark = pytest.mark.e2e


def test_seal_recognition_reads_the_seal(tmp_path):
    inputs = copy_docs(tmp_path / "in", ["seal.png"])
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "ray_ocr.run", "--pipeline", "SealRecognition", "--input_dir", str(inputs),
         "--output_dir", str(out), "--device", "cpu", *cli_params(MOBILE_SEAL_PARAMS)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "seal.json").read_text())
    assert data["input_path"] == str(inputs / "seal.png")
    texts = [t for seal in data["seal_res_list"] for t in seal["rec_texts"]]
    assert "发票专用章" in texts
    assert data["model_settings"]["use_layout_detection"] is False
