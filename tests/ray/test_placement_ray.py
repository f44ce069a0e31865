"""Fractional-GPU placement on a real local Ray with 4 logical GPUs.

Paddle cannot use a GPU on these machines, so the actors run the scheduling
stand-in pipeline; what is tested is Ray's placement of ray_ocr's actors.
"""

import collections
import json

import ray_ocr
from tests.conftest import STANDIN


def make_images(folder, count, width=32):
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"img_{i:03d}.png"), np.full((24, width, 3), i % 255, np.uint8))
    return folder


def test_four_instances_on_each_of_four_gpus(ray_cluster, tmp_path):
    inputs = make_images(tmp_path / "in", 32)
    summary = ray_ocr.run(
        STANDIN, str(inputs), str(tmp_path / "out"),
        device="gpu:0,1,2,3", instances_per_device=4,
    )
    assert summary.exit_code == 0 and summary.succeeded == 32
    actors = summary.actors
    assert len(actors) == 16
    for name, info in actors.items():
        assert len(info["gpu_ids"]) == 1, (name, info)
        assert info["cuda_visible_devices"] == info["gpu_ids"][0]  # the pipeline sees one GPU
    per_gpu = collections.Counter(info["gpu_ids"][0] for info in actors.values())
    assert per_gpu == {"0": 4, "1": 4, "2": 4, "3": 4}
    # Each actor's pipeline was told gpu:0, i.e. the one GPU it can see.
    outputs = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("img_*.json")]
    assert len(outputs) == 32 and {o["device"] for o in outputs} == {"gpu:0"}
    assert {o["cuda_visible_devices"] for o in outputs} <= {"0", "1", "2", "3"}
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(written["actors"]) == 16


def test_gpus_per_instance_sets_the_fraction(ray_cluster, tmp_path):
    inputs = make_images(tmp_path / "in", 4)
    summary = ray_ocr.run(STANDIN, str(inputs), str(tmp_path / "out"), device="gpu",
                          gpus_per_instance=0.5)
    assert summary.succeeded == 4
    assert len(summary.actors) == 4  # one per GPU (K=1), each asking half a GPU
    assert all(len(info["gpu_ids"]) == 1 for info in summary.actors.values())
