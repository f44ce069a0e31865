"""--device gpu:0,2 on the embedded Ray uses exactly GPUs 0 and 2.

The machine has no GPU, so Ray is told of 4 logical ones through its own
RAY_OVERRIDE_RESOURCES, and the actors run the scheduling stand-in pipeline.
"""

import collections
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import STANDIN
from tests.helpers import make_images

pytestmark = pytest.mark.e2e


def test_gpu_0_and_2_only(tmp_path):
    inputs = make_images(tmp_path / "in", 16)
    out = tmp_path / "out"
    env = dict(os.environ, RAY_OVERRIDE_RESOURCES=json.dumps({"GPU": 4}))
    env.pop("CUDA_VISIBLE_DEVICES", None)
    proc = subprocess.run(
        [sys.executable, "-m", "ray_ocr.run", "--pipeline", STANDIN, "--input_dir", str(inputs),
         "--output_dir", str(out), "--device", "gpu:0,2", "--instances_per_device", "2",
         "--param", "sleep_seconds=0.5"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    actors = json.loads((out / "summary.json").read_text())["actors"]
    assert 2 <= len(actors) <= 4  # 2 per GPU; an actor up after the work is done is not listed
    per_gpu = collections.Counter(a["cuda_visible_devices"] for a in actors.values())
    assert set(per_gpu) == {"0", "2"} and max(per_gpu.values()) <= 2
    outputs = [json.loads(p.read_text()) for p in out.glob("img_*.json")]
    assert len(outputs) == 16
    assert {o["cuda_visible_devices"] for o in outputs} <= {"0", "2"}
