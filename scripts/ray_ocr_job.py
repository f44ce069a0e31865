"""Run ray_ocr on a cluster started with `ray up` (cluster.yaml, examples/cluster-local.yaml).

    ray submit cluster.yaml scripts/ray_ocr_job.py -- --pipeline OCR \\
        --input_dir ~/ocr_in --output_dir ~/ocr_out --device gpu --instances_per_device 4

`ray submit` copies this file to the head node and runs it there with the flags after
`--`, which are those of `python -m ray_ocr.run`. The run joins the cluster the head
belongs to (`--address auto`) unless you pass `--address` yourself. The exit code is
ray_ocr's: 0 all done, 1 some inputs failed, 2 usage or setup error, 130 stopped.
"""

from __future__ import annotations

import argparse
import sys


def job_argv(argv: list[str]) -> list[str]:
    """The ray_ocr.run flags to use: `argv`, plus `--address auto` if it names no address."""
    argv = list(argv)
    # A parser that knows only --address finds it as ray_ocr.run's parser would:
    # `--address X`, `--address=X`, or an abbreviation such as `--addr X`.
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--address", nargs="?", const="")  # bare flag: leave it to ray_ocr
    given, _ = probe.parse_known_args(argv)
    return argv if given.address is not None else argv + ["--address", "auto"]


def main(argv: list[str] | None = None) -> int:
    from ray_ocr.run import main as run_main

    return run_main(job_argv(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    raise SystemExit(main())
