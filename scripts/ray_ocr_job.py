"""Run ray_ocr on a cluster started with `ray up` (cluster.yaml, examples/cluster-local.yaml).

    ray submit cluster.yaml scripts/ray_ocr_job.py -- --pipeline OCR \\
        --input_dir '~/ocr_in' --output_dir '~/ocr_out' --device gpu --instances_per_device 4

`ray submit` copies this file to the head node and runs it there with the flags after
`--`, which are those of `python -m ray_ocr.run`. The run joins the cluster the head
belongs to (`--address auto`) unless you pass `--address` yourself. Quote a `~`: unquoted,
your own shell turns it into your home folder before `ray submit` sees it.

This script exits with ray_ocr's code: 0 all done, 1 some inputs failed, 2 usage or setup
error, 130 stopped. `ray submit` itself exits 0 when it is 0 and 1 for any other (Ray's
launcher reports every failed remote command as 1), so on failure the last line names the
code: ``ray_ocr_job: exit code 2 (usage or setup error)``.
"""

from __future__ import annotations

import argparse
import sys

MEANINGS = {1: "some inputs failed", 2: "usage or setup error", 130: "stopped"}


def job_argv(argv: list[str]) -> list[str]:
    """The ray_ocr.run flags to use: `argv`, plus `--address auto` if it names no address."""
    argv = list(argv)
    # A parser that knows only --address finds it as ray_ocr.run's parser would:
    # `--address X`, `--address=X`, or an abbreviation such as `--addr X`.
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--address", nargs="?", const="")  # bare flag: leave it to ray_ocr
    given, _ = probe.parse_known_args(argv)
    return argv if given.address is not None else argv + ["--address", "auto"]


def exit_line(code: int) -> str:
    meaning = MEANINGS.get(code)
    return f"ray_ocr_job: exit code {code}" + (f" ({meaning})" if meaning else "")


def main(argv: list[str] | None = None) -> int:
    from ray_ocr.cli import main as run_main

    try:
        code = run_main(job_argv(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse: a bad flag or --help
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if code:
        print(exit_line(code), file=sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
