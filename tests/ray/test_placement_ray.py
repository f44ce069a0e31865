"""Fractional-GPU placement on a real local Ray with 4 logical GPUs.

Paddle cannot use a GPU on these machines, so the actors run the scheduling
stand-in pipeline; what is tested is Ray's placement of ray_ocr's actors.
"""

import collections
import json

import pytest

import ray_ocr
from tests.conftest import STANDIN
from tests.helpers import make_images, start_and_census

pytestmark = pytest.mark.ray


def test_four_instances_on_each_of_four_gpus(ray_cluster):
    workers = start_and_census(ray_cluster, "gpu:0,1,2,3", 4)
    assert len(workers) == 16 and len({w.actor_name for w in workers}) == 16
    for w in workers:
        assert len(w.gpu_ids) == 1 and w.cuda_visible_devices == w.gpu_ids[0]  # sees one GPU
    assert collections.Counter(w.gpu_ids[0] for w in workers) == {"0": 4, "1": 4, "2": 4, "3": 4}
    assert len({w.pid for w in workers}) == 16  # one process per pipeline


def test_gpus_per_instance_sets_the_fraction(ray_cluster):
    workers = start_and_census(ray_cluster, "gpu", 1, gpus_per_instance=0.5)
    assert len(workers) == 4 and all(len(w.gpu_ids) == 1 for w in workers)
    # Half-GPU actors: Ray may pack two on one GPU, never three.
    assert max(collections.Counter(w.gpu_ids[0] for w in workers).values()) <= 2


def test_a_run_on_gpus_tells_each_pipeline_gpu_0(ray_cluster, tmp_path):
    inputs = make_images(tmp_path / "in", 24)
    summary = ray_ocr.run_batch(STANDIN, str(inputs), str(tmp_path / "out"), device="gpu",
                          instances_per_device=2, pipeline_params={"sleep_seconds": 0.2})
    assert summary.exit_code == 0 and summary.succeeded == 24
    outputs = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("img_*.json")]
    assert len(outputs) == 24 and {o["device"] for o in outputs} == {"gpu:0"}
    assert {o["cuda_visible_devices"] for o in outputs} <= {"0", "1", "2", "3"}
    assert 1 <= len(summary.actors) <= 8
    for info in summary.actors.values():
        assert len(info["gpu_ids"]) == 1 and info["cuda_visible_devices"] == info["gpu_ids"][0]
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["actors"].keys() == summary.actors.keys()
    assert sum(e["files"] for e in written["timeline"]) == 24
