"""Inputs and outputs on an S3-compatible server (moto's standalone server, started
here on loopback): actors read the inputs straight from the bucket, the driver writes
JSONs and the run state there, and a rerun resumes from the bucket."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import MOBILE_OCR_PARAMS, REALDOCS, cli_params
from tests.s3server import CREDENTIALS, FaultyProxy, moto_server, query

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="module")
def s3_server():
    with moto_server() as port:
        yield query(port)


@pytest.fixture(scope="module")
def s3_port(s3_server):
    return int(s3_server.split("endpoint_override=127.0.0.1:")[1].split("&")[0])


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


def _run_to(output_uri: str, inputs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ray_ocr.run", "--pipeline", "OCR", "--device", "cpu",
                           "--input_dir", str(inputs), "--output_dir", output_uri, *cli_params(MOBILE_OCR_PARAMS)],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, **CREDENTIALS))


def test_an_output_bucket_that_cannot_be_written_stops_the_run_before_any_work(s3_server, tmp_path):
    """A missing bucket: one line and exit 2 before Ray starts, not every file's OCR
    and then a failed write for each."""
    from tests.conftest import copy_docs

    proc = _run_to(f"s3://nosuchbucket/results?{s3_server}", copy_docs(tmp_path / "in", ["word_ch_1.jpg"]))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and "s3://nosuchbucket/results: cannot write there" in proc.stderr
    assert "Ray" not in proc.stdout + proc.stderr  # stopped before Ray started


def test_a_manifest_that_cannot_be_read_stops_the_run_and_is_kept(s3_server, s3_port, tmp_path, monkeypatch):
    """Reading the stored manifest fails (503, not "not found"): the run stops with one
    line instead of taking it for a first run, redoing finished files and then
    overwriting the manifest with only its own records."""
    import pyarrow.fs

    from tests.conftest import copy_docs

    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    fs, _ = s3(s3_server)
    fs.create_dir("ocrtest")
    earlier = b'{"key": "word_ch_1.jpg", "outputs": ["word_ch_1.json"]}\n'
    with fs.open_output_stream("ocrtest/kept/ray_ocr_manifest.jsonl") as stream:
        stream.write(earlier)
    with FaultyProxy(s3_port, fail={"ray_ocr_manifest.jsonl": -1}, methods=("HEAD", "GET")) as proxy:
        uri = f"s3://ocrtest/kept?{query(proxy.port)}"
        proc = _run_to(uri, copy_docs(tmp_path / "in", ["word_ch_1.jpg"]))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and "cannot read its ray_ocr_manifest.jsonl" in proc.stderr
    with fs.open_input_stream("ocrtest/kept/ray_ocr_manifest.jsonl") as stream:
        assert stream.read() == earlier
    written = fs.get_file_info(pyarrow.fs.FileSelector("ocrtest/kept", recursive=True))
    assert [info.path for info in written] == ["ocrtest/kept/ray_ocr_manifest.jsonl"]  # no OCR, no result


_PUSH_EVERY_TICK = """
import sys
import ray_ocr
from ray_ocr.engine import driver
driver.STATE_PUSH_SECONDS = 0  # a push on every tick of the driver's loop, not every minute
ray_ocr.run_batch("ray_ocr.testing.standin:SchedulingTestPipeline", sys.argv[1], sys.argv[2], device="cpu",
                  instances_per_device=1, batch_size=1, pipeline_params={"sleep_seconds": sys.argv[3]},
                  progress_interval=-1, resume_anyway=True)  # (the rerun does not sleep)
"""


def _state_segments(fs, prefix: str) -> dict[str, bytes]:
    import pyarrow.fs

    infos = fs.get_file_info(pyarrow.fs.FileSelector(f"ocrtest/{prefix}/ray_ocr_state", allow_not_found=True))
    segments = {}
    for info in infos:
        with fs.open_input_stream(info.path) as stream:
            segments[info.path.rsplit("/", 1)[-1]] = stream.read()
    return segments


def test_a_killed_driver_s_records_are_in_the_bucket_and_the_rerun_skips_them(s3_server, tmp_path, monkeypatch):
    """During a run only the records added since the last push go up (a segment each);
    the driver SIGKILLed mid-run, the rerun reads them, redoes only the rest, and ends
    with one whole manifest, a record per input, and no segment left."""
    import signal
    import time

    from tests.helpers import make_images

    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    fs, _ = s3(s3_server)
    fs.create_dir("ocrtest")
    inputs, output = make_images(tmp_path / "in", 40), f"s3://ocrtest/killed?{s3_server}"
    proc = subprocess.Popen([sys.executable, "-c", _PUSH_EVERY_TICK, str(inputs), output, "0.5"],
                            env=dict(os.environ), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while sum(b.count(b"\n") for n, b in _state_segments(fs, "killed").items()
                  if n.endswith("ray_ocr_manifest.jsonl")) < 5:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-2000:]
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    segments = {n: b for n, b in _state_segments(fs, "killed").items() if n.endswith("ray_ocr_manifest.jsonl")}
    pushed = [json.loads(line)["key"] for _, data in sorted(segments.items()) for line in data.splitlines()]
    assert len(pushed) == len(set(pushed)) >= 5  # each record went up once: no push repeats the file

    rerun = subprocess.run([sys.executable, "-c", _PUSH_EVERY_TICK, str(inputs), output, "0"], env=dict(os.environ),
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    with fs.open_input_stream("ocrtest/killed/ray_ocr_manifest.jsonl") as stream:
        records = [json.loads(line) for line in stream.read().splitlines()]
    done = [r["key"] for r in records if r["status"] == "done"]
    assert sorted(done) == sorted(p.name for p in inputs.iterdir()) and len(done) == 40  # once each
    assert [r["key"] for r in records[: len(pushed)]] == pushed  # the killed run's, not redone
    assert list(_state_segments(fs, "killed")) == ["compacted"]
