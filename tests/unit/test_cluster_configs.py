"""What the cluster-launcher configs (cluster.yaml, examples/cluster-local.yaml) run on
their nodes, run here, and the job script `ray submit` runs on the head
(scripts/ray_ocr_job.py). No Ray: Ray's own validation of the configs is in
tests/cluster/test_cluster_configs_ray.py.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ray_ocr.cli import build_parser
from tests.helpers import command_index

REPO = Path(__file__).resolve().parents[2]
AWS_CONFIG = REPO / "cluster.yaml"
LOCAL_CONFIG = REPO / "examples" / "cluster-local.yaml"
JOB_SCRIPT = REPO / "scripts" / "ray_ocr_job.py"


# --- the configs' setup commands -------------------------------------------------------


@pytest.mark.parametrize("path", [AWS_CONFIG, LOCAL_CONFIG], ids=["aws", "local"])
def test_the_configured_seed_command_seeds_the_models(path, tmp_path):
    """The `python -c ...` the nodes run, run here against an empty cache."""
    config = yaml.safe_load(path.read_text())
    commands = config.get("worker_setup_commands") or config["setup_commands"]
    argv = shlex.split(commands[command_index(commands, "seed_bundled_models()")])
    assert argv[:2] == ["python", "-c"]
    env = {**os.environ, "PADDLE_PDX_CACHE_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert "PP-OCRv5_mobile_det" in out and "PP-OCRv5_mobile_rec" in out
    assert (tmp_path / "official_models" / "PP-OCRv5_mobile_rec" / "inference.pdiparams").is_file()


# --- scripts/ray_ocr_job.py ----------------------------------------------------------


@pytest.fixture(scope="module")
def job():
    spec = importlib.util.spec_from_file_location("ray_ocr_job", JOB_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines functions only: no Ray, no run
    return module


BASE = ["--pipeline", "OCR", "--input_dir", "in", "--output_dir", "out", "--device", "gpu"]


def test_job_joins_the_running_cluster_by_default(job):
    argv = job.job_argv(BASE)
    assert argv[: len(BASE)] == BASE
    assert argv[len(BASE):] == ["--address", "auto"]
    assert build_parser().parse_args(argv).address == "auto"


@pytest.mark.parametrize("given", [
    ["--address", "ray://head:10001"],
    ["--address=ray://head:10001"],
    ["--addr", "ray://head:10001"],  # argparse accepts abbreviations; so must the job
])
def test_job_keeps_an_explicit_address(job, given):
    argv = job.job_argv(BASE + given)
    assert argv == BASE + given
    assert build_parser().parse_args(argv).address == "ray://head:10001"


def test_job_passes_ray_ocr_exit_code(job, monkeypatch):
    seen = {}

    def fake_main(argv):
        seen["argv"] = argv
        return 1

    monkeypatch.setattr("ray_ocr.cli.main", fake_main)
    assert job.main(BASE) == 1
    assert seen["argv"] == BASE + ["--address", "auto"]
