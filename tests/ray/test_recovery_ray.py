"""Crashes: actors that die mid-batch are restarted, their files retried, poison quarantined."""

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

pytestmark = pytest.mark.ray


@pytest.mark.parametrize("instances, batch_size, prefetch", [(2, 4, 1), (1, 1, 1), (1, 3, 0)])
def test_poison_file_is_quarantined_and_the_rest_complete(ray_cluster, tmp_path, instances, batch_size,
                                                          prefetch):
    """The stand-in kills its own process (os._exit) on a 13-pixel-wide image. With
    batches queued behind it (prefetch), no innocent file may be charged a try."""
    inputs = make_images(tmp_path / "in", 10)
    make_images(tmp_path / "poison", 1, width=13)
    os.rename(tmp_path / "poison" / "img_000.png", inputs / "poison.png")
    out = tmp_path / "out"
    summary = ray_ocr.run_batch(
        STANDIN, str(inputs), str(out), device="cpu", instances_per_device=instances, batch_size=batch_size,
        pipeline_params={"crash_on_width": 13}, max_attempts=3, prefetch_batches=prefetch,
    )
    assert summary.succeeded == 10 and summary.failed == 1 and summary.exit_code == 1
    [failure] = summary.failures
    assert failure.key == "poison.png" and failure.stage == "crash" and failure.attempts == 3
    assert sorted(p.name for p in out.glob("img_*.json")) == [f"img_{i:03d}.json" for i in range(10)]
    records = manifest_records(out)
    done = collections.Counter(r["key"] for r in records if r["status"] == "done")
    assert done == {f"img_{i:03d}.png": 1 for i in range(10)}  # none written twice
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [(f["key"], f["stage"], f["attempts"]) for f in failures] == [("poison.png", "crash", 3)]
    assert sum(a["restarts"] for a in summary.actors.values()) >= 3  # a death per try, at least
    # At most the batch that held the poison is charged one more try; nobody is quarantined.
    assert all(r["attempts"] <= 2 for r in records if r["key"] != "poison.png")


def _actor_pids(class_name="PipelineActor"):
    """Processes of this test's live pipeline actors: descendants of this process (its
    embedded Ray), titled by Ray ``ray::...PipelineActor...``; never another run's."""
    import psutil

    pids = []
    for proc in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if cmdline.startswith("ray::") and class_name in cmdline:
            pids.append(proc.pid)
    return pids


def test_sigkill_of_a_real_ocr_actor_mid_run(ray_cluster, tmp_path):
    names = ["general_ocr_002.jpg", "11.jpg", "table.jpg", "textline.png", "sample_pdf.pdf"]
    inputs = copy_docs(tmp_path / "in", names)
    out = tmp_path / "out"
    result = {}

    def run():
        result["summary"] = ray_ocr.run_batch("OCR", str(inputs), str(out), device="cpu",
                                        pipeline_params=MOBILE_OCR_PARAMS, batch_size=2)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("*.json")):
        time.sleep(0.2)  # kill once work is under way, so a batch is in flight
    pids = _actor_pids()
    assert pids, "no OCR actor alive"
    os.kill(pids[0], signal.SIGKILL)
    thread.join(timeout=600)
    summary = result["summary"]
    assert summary.exit_code == 0 and summary.succeeded == len(names)
    expected = {n.rsplit(".", 1)[0] + ".json" for n in names if not n.endswith(".pdf")}
    expected |= {f"sample_pdf_{i}.json" for i in range(4)}
    assert {p.name for p in out.glob("*.json") if p.name != "summary.json"} == expected
    for path in out.glob("*.json"):
        json.loads(path.read_text())  # every file complete
    done = collections.Counter(r["key"] for r in manifest_records(out) if r["status"] == "done")
    assert done == {n: 1 for n in names}
    assert sum(a["restarts"] for a in summary.actors.values()) == 1


def test_actors_are_recycled_after_n_tasks(ray_cluster, tmp_path):
    inputs = make_images(tmp_path / "in", 8)
    out = tmp_path / "out"
    summary = ray_ocr.run_batch(STANDIN, str(inputs), str(out), device="cpu", max_tasks_per_actor=2)
    assert summary.succeeded == 8 and summary.exit_code == 0
    assert summary.recycled == 3  # after tasks 2, 4, 6 (not after the last)
    pids = [json.loads(p.read_text())["pid"] for p in sorted(out.glob("img_*.json"))]
    assert len(set(pids)) == 4  # each process did two files
    done = collections.Counter(r["key"] for r in manifest_records(out) if r["status"] == "done")
    assert set(done.values()) == {1} and len(done) == 8
    assert all(r["attempts"] == 1 for r in manifest_records(out))  # recycling is not a retry


def test_actors_are_recycled_above_a_memory_threshold(ray_cluster, tmp_path):
    inputs = make_images(tmp_path / "in", 3)
    summary = ray_ocr.run_batch(STANDIN, str(inputs), str(tmp_path / "out"), device="cpu",
                          max_actor_memory_mb=1)  # any real process is above 1 MB
    # Checked after each batch; the actor is restarted once the batch queued behind it is done.
    assert summary.succeeded == 3 and summary.recycled >= 1
    pids = {json.loads(p.read_text())["pid"] for p in (tmp_path / "out").glob("img_*.json")}
    assert len(pids) == summary.recycled + 1
