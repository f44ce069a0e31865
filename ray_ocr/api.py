"""The library entry points; the CLI is a thin layer over these."""

from __future__ import annotations

from typing import Any

from ray_ocr.config import RunConfig


def run(pipeline: str, input_dir: str, output_dir: str = "output", **options: Any):
    """Run `pipeline` over `input_dir`, write JSONs to `output_dir`, return a RunSummary.

    Options are those of RunConfig.build (device, instances_per_device, batch_size,
    pipeline_params, predict_params, address, ...). Uses the Ray this process has
    joined, if any; else starts an embedded one for the run.
    """
    from ray_ocr.engine.driver import Driver

    config = RunConfig.build(pipeline=pipeline, input_dir=input_dir, output_dir=output_dir, **options)
    return Driver(config).run()
