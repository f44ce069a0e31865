"""The driver out of the data path (an S3 server on loopback, real Ray): actors write
their own results to a URI and return receipts; buckets are listed folder by folder;
--input_list names the inputs; storage faults are retried or recorded, never half
written."""

from __future__ import annotations

import collections
import json
import os
import signal
import threading
import time

import pytest

import ray_ocr
from tests.conftest import MOBILE_OCR_PARAMS, STANDIN, copy_docs
from tests.helpers import make_images, manifest_records
from tests.s3server import CREDENTIALS, FaultyProxy, filesystem, moto_server, query

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def s3(request):
    with moto_server() as port:
        old = {k: os.environ.get(k) for k in CREDENTIALS}
        os.environ.update(CREDENTIALS)
        request.getfixturevalue("ray_cluster")  # started now: its actors inherit the credentials
        fs = filesystem(port)
        fs.create_dir("bucket")
        yield port, fs
        for key, value in old.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


def _put(fs, key: str, data: bytes) -> None:
    with fs.open_output_stream(f"bucket/{key}") as stream:
        stream.write(data)


def _get(fs, key: str) -> bytes:
    with fs.open_input_stream(f"bucket/{key}") as stream:
        return stream.read()


def _keys(fs, prefix: str) -> set[str]:
    import pyarrow.fs

    infos = fs.get_file_info(pyarrow.fs.FileSelector(f"bucket/{prefix}", recursive=True, allow_not_found=True))
    return {i.path[len(f"bucket/{prefix}/"):] for i in infos if i.type == pyarrow.fs.FileType.File}


def _pngs(tmp_path, count, width=32):
    folder = make_images(tmp_path / "png", count, width)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_buckets_are_walked_folder_by_folder_with_globs_hidden_objects_and_markers(s3, tmp_path):
    import boto3

    port, fs = s3
    pngs = _pngs(tmp_path, 5)
    layout = {"scan/a.png": "img_000.png", "scan/sub/b.png": "img_001.png", "scan/sub/deeper/c.png": "img_002.png",
              "scan/.hidden/d.png": "img_003.png", "scan/sub/.e.png": "img_004.png"}
    for key, name in layout.items():
        _put(fs, key, pngs[name])
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
    for marker in ("scan/empty/", "scan/sub/"):
        client.put_object(Bucket="bucket", Key=marker, Body=b"")  # zero-byte "folder" objects
    source = f"s3://bucket/scan?{query(port)}"
    everything = ray_ocr.run_batch(STANDIN, source, str(tmp_path / "all"), device="cpu",
                                   input_glob_pattern="**/*.png", progress_interval=-1)
    assert everything.succeeded == 3 and everything.failed == 0
    assert {r["key"] for r in manifest_records(tmp_path / "all")} == {"a.png", "sub/b.png", "sub/deeper/c.png"}
    one_level = ray_ocr.run_batch(STANDIN, source, str(tmp_path / "one"), device="cpu",
                                  input_glob_pattern="sub/*.png", progress_interval=-1)
    assert one_level.succeeded == 1
    assert (tmp_path / "one" / "sub" / "b.json").is_file()
    assert json.loads((tmp_path / "one" / "sub" / "b.json").read_text())["input_path"] == "s3://bucket/scan/sub/b.png"


def test_input_lists_of_uris_and_of_local_paths(s3, tmp_path):
    port, fs = s3
    pngs = _pngs(tmp_path, 3)
    for i, (name, data) in enumerate(pngs.items()):
        _put(fs, f"listed/{'deep/' if i else ''}{name}", data)
    uri = f"s3://bucket/listed"
    lines = [f"{uri}/img_000.png?{query(port)}", f"{uri}/deep/img_001.png", f"{uri}/deep/img_002.png",
             f"{uri}/img_000.png", f"{uri}/deep/missing.png"]
    _put(fs, "lists/inputs.txt", "\n".join(lines).encode())
    summary = ray_ocr.run_batch(STANDIN, None, str(tmp_path / "from_s3"), device="cpu", progress_interval=-1,
                                input_list=f"s3://bucket/lists/inputs.txt?{query(port)}")
    assert (summary.succeeded, summary.failed) == (3, 1)  # img_000 listed twice: once
    assert [(f.key, f.stage) for f in summary.failures] == [("deep/missing.png", "read")]
    written = {p.relative_to(tmp_path / "from_s3").as_posix() for p in (tmp_path / "from_s3").rglob("img_*.json")}
    assert written == {"img_000.json", "deep/img_001.json", "deep/img_002.json"}

    local = tmp_path / "local_list.txt"
    local.write_text(f"png/img_002.png\n{tmp_path}/png/img_001.png\npng/img_002.png\npng/gone.png\n")
    again = ray_ocr.run_batch(STANDIN, None, str(tmp_path / "from_local"), device="cpu", progress_interval=-1,
                              input_list=str(local))
    assert (again.succeeded, again.failed) == (2, 1)
    assert [(f.key, f.stage, f.error_type) for f in again.failures] == [("gone.png", "read", "FileNotFoundError")]


def test_actors_write_real_ocr_results_equal_to_what_the_driver_writes(s3, tmp_path):
    """Actor-side and driver-side writes give the same bytes (and the driver's equal a
    direct PaddleOCR call's: tests/e2e/test_cli_ocr.py); the PDF runs as parts."""
    port, fs = s3
    inputs = copy_docs(tmp_path / "in", ["word_ch_1.jpg", "textline.png", "sample_pdf.pdf"])
    common = dict(device="cpu", pipeline_params=MOBILE_OCR_PARAMS, progress_interval=-1, pages_per_task=2)
    by_driver = ray_ocr.run_batch("OCR", str(inputs), str(tmp_path / "driver"), **common)
    by_actors = ray_ocr.run_batch("OCR", str(inputs), f"s3://bucket/ocr?{query(port)}", **common)
    assert by_driver.succeeded == by_actors.succeeded == 3
    names = {p.name for p in (tmp_path / "driver").glob("*.json") if p.name != "summary.json"}
    assert names == {"word_ch_1.json", "textline.json"} | {f"sample_pdf_{i}.json" for i in range(4)}
    assert {n for n in _keys(fs, "ocr") if n.endswith(".json") and n != "summary.json"} == names
    for name in names:
        assert _get(fs, f"ocr/{name}") == (tmp_path / "driver" / name).read_bytes(), name
    records = [json.loads(line) for line in _get(fs, "ocr/ray_ocr_manifest.jsonl").splitlines()]
    assert sorted(r["key"] for r in records if r["status"] == "done") == sorted(p.name for p in inputs.iterdir())


def test_failing_puts_are_retried_and_a_write_that_keeps_failing_is_a_record(s3, tmp_path):
    port, fs = s3
    inputs = make_images(tmp_path / "in", 6)
    # img_001: more 503s than the S3 client retries by itself (3), fewer than ray_ocr's
    # tries; img_004: always.
    with FaultyProxy(port, fail={"img_001.json": 4, "img_004.json": -1}) as proxy:
        summary = ray_ocr.run_batch(STANDIN, str(inputs), f"s3://bucket/flaky?{query(proxy.port)}", device="cpu",
                                    write_outputs="actors", progress_interval=-1, batch_size=2)
    assert [(f.key, f.stage) for f in summary.failures] == [("img_004.png", "write")]
    assert summary.succeeded == 5
    written = {n for n in _keys(fs, "flaky") if n.startswith("img_")}
    assert written == {f"img_00{i}.json" for i in (0, 1, 2, 3, 5)}
    for name in written:
        assert json.loads(_get(fs, f"flaky/{name}"))["width"] == 32
    assert sum(1 for path, status in proxy.puts if "img_001.json" in path and status == 503) == 4
    done = collections.Counter(r["key"] for r in manifest_records_uri(fs, "flaky") if r["status"] == "done")
    assert done == {f"img_00{i}.png": 1 for i in (0, 1, 2, 3, 5)}


def manifest_records_uri(fs, prefix: str) -> list[dict]:
    return [json.loads(line) for line in _get(fs, f"{prefix}/ray_ocr_manifest.jsonl").splitlines()]


def _actor_pids() -> list[int]:
    import psutil

    pids = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if " ".join(proc.cmdline()).startswith("ray::") and "PipelineActor" in " ".join(proc.cmdline()):
                pids.append(proc.pid)
        except psutil.Error:
            continue
    return pids


def test_an_actor_killed_mid_write_leaves_no_partial_object_and_the_input_runs_once(s3, tmp_path):
    port, fs = s3
    inputs = make_images(tmp_path / "in", 4)
    result = {}
    with FaultyProxy(port, hold="img_002.json") as proxy:
        def run():
            result["summary"] = ray_ocr.run_batch(
                STANDIN, str(inputs), f"s3://bucket/killed?{query(proxy.port)}", device="cpu",
                instances_per_device=1, prefetch_batches=0, progress_interval=-1)

        thread = threading.Thread(target=run)
        thread.start()
        assert proxy.held.wait(180), "the write of img_002.json never started"
        assert "img_002.json" not in _keys(fs, "killed")
        [pid] = _actor_pids()
        os.kill(pid, signal.SIGKILL)  # mid-PUT: its body never reaches the store
        time.sleep(1)
        proxy.hold = None  # the retry goes through
        proxy.release.set()
        thread.join(timeout=300)
    summary = result["summary"]
    assert summary.succeeded == 4 and summary.failed == 0
    assert json.loads(_get(fs, "killed/img_002.json"))["width"] == 32  # whole, from the retry
    records = manifest_records_uri(fs, "killed")
    assert collections.Counter(r["key"] for r in records) == {f"img_00{i}.png": 1 for i in range(4)}
    assert [r["attempts"] for r in records if r["key"] == "img_002.png"] == [2]
