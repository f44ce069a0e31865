"""Inputs and outputs on an S3-compatible server (moto's standalone server, started
here on loopback): actors read the inputs straight from the bucket, the driver writes
JSONs and the run state there, and a rerun resumes from the bucket."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import MOBILE_OCR_PARAMS, REALDOCS, cli_params
from tests.s3server import CREDENTIALS, moto_server, query

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="module")
def s3_server():
    with moto_server() as port:
        yield query(port)


def s3(query, path=""):
    import pyarrow.fs

    fs, root = pyarrow.fs.FileSystem.from_uri(f"s3://ocrtest/{path}?{query}&allow_bucket_creation=true")
    return fs, root


def test_ocr_from_and_to_s3(s3_server, tmp_path, monkeypatch):
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    fs, _ = s3(s3_server)
    fs.create_dir("ocrtest")
    names = {"word_ch_1.jpg": "scans/word_ch_1.jpg", "textline.png": "scans/sub/textline.png",
             "sample_pdf.pdf": "scans/sample_pdf.pdf"}
    for name, key in names.items():
        with fs.open_output_stream(f"ocrtest/{key}") as stream:
            stream.write(next(REALDOCS.glob(f"*/{name}")).read_bytes())
    env = dict(os.environ, **CREDENTIALS)
    args = [sys.executable, "-m", "ray_ocr.run", "--pipeline", "OCR", "--device", "cpu",
            "--input_dir", f"s3://ocrtest/scans?{s3_server}", "--input_glob_pattern", "**/*",
            "--output_dir", f"s3://ocrtest/results?{s3_server}", *cli_params(MOBILE_OCR_PARAMS)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]

    def read(key):
        with fs.open_input_stream(f"ocrtest/results/{key}") as stream:
            return stream.read()

    word = json.loads(read("word_ch_1.json"))
    assert word["rec_texts"] == ["韩国小馆"] and word["input_path"] == "s3://ocrtest/scans/word_ch_1.jpg"
    assert "".join(json.loads(read("sub/textline.json"))["rec_texts"]) == "绿洲仕格维花园公寓"
    assert [json.loads(read(f"sample_pdf_{i}.json"))["page_index"] for i in range(4)] == [0, 1, 2, 3]
    summary = json.loads(read("summary.json"))
    assert summary["succeeded"] == 3 and summary["pages"] == 6
    assert b"<html" in read("report.html")[:200].lower()
    assert len(read("ray_ocr_manifest.jsonl").splitlines()) == 3

    rerun = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert rerun.returncode == 0 and "3 skipped" in rerun.stdout


def test_a_bad_uri_is_a_usage_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ray_ocr.run", "--pipeline", "OCR",
                           "--input_dir", "nosuchscheme://bucket/x"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--input_dir" in proc.stderr
