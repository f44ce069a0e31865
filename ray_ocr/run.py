"""Command line: ``python -m ray_ocr.run --pipeline OCR --input_dir in/ --output_dir out/``.

A thin layer: parse flags, build a RunConfig, call the library, map outcomes to exit
codes (0 all inputs done, 1 some inputs failed, 2 usage or setup error, 130 stopped
by a signal). The argparse Namespace never leaves this module.
"""

from __future__ import annotations

import argparse
import logging
import sys
import types

from ray_ocr.errors import SetupError, UsageError
from ray_ocr.config import DEFAULT_PAGES_PER_TASK

logger = logging.getLogger("ray_ocr")


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + message; users get one line
        print(f"ray_ocr: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _OneLineParser(
        prog="python -m ray_ocr.run",
        description="Run a PaddleOCR 3.x pipeline over images and PDFs with Ray actors.",
    )
    p.add_argument("--pipeline", required=True,
                   help="PaddleOCR pipeline: class (OCR, SealRecognition, PPStructureV3, ...), "
                        "CLI name (ocr, seal_recognition, ...), or package.module:Class")
    p.add_argument("--input_dir", required=True,
                   help="folder of images and PDFs: a local path, or a URI every node can read "
                        "(s3://, gs://, hdfs://, file://)")
    p.add_argument("--input_glob_pattern", default="*",
                   help="which files under --input_dir (default '*'; '**/*' recurses)")
    p.add_argument("--follow_symlinks", action="store_true",
                   help="also read files that resolve outside --input_dir through symlinks")
    p.add_argument("--output_dir", default="output",
                   help="where the JSON files go: a local path or a URI (default: output)")
    p.add_argument("--device", default=None,
                   help="cpu, gpu (every GPU Ray sees) or gpu:0,1,... (default: gpu if Ray sees one, else cpu)")
    p.add_argument("--instances_per_device", type=int, default=1,
                   help="pipeline actors per GPU (each asks 1/K GPU) or per node on cpu (default 1)")
    p.add_argument("--gpus_per_instance", type=float, default=None,
                   help="GPU fraction each actor asks for (default 1/instances_per_device)")
    p.add_argument("--cpus_per_instance", type=float, default=None,
                   help="CPUs each actor asks for; also its Paddle cpu_threads "
                        "(default on cpu: the node's CPUs / instances_per_device)")
    p.add_argument("--batch_size", type=int, default=1, help="files per actor task (default 1)")
    p.add_argument("--address", default=None,
                   help="join a running Ray cluster (auto, host:port, ray://...); default: embedded Ray")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="pipeline constructor argument (repeatable; YAML scalar value)")
    p.add_argument("--params_file", default=None, metavar="YAML",
                   help="YAML mapping of pipeline constructor arguments; --param entries override it")
    p.add_argument("--predict_param", action="append", default=[], metavar="KEY=VALUE",
                   help="argument to predict() (repeatable; YAML scalar value)")
    p.add_argument("--pipeline_config", default=None,
                   help="PaddleX pipeline YAML, passed as paddlex_config")
    p.add_argument("--save", default=None, metavar="KINDS",
                   help="outputs beyond JSON (always written): markdown (PPStructureV3, PaddleOCRVL), "
                        "img (the result's visualisations), e.g. --save markdown,img")
    p.add_argument("--overwrite", action="store_true",
                   help="redo inputs that an earlier run finished (default: skip them)")
    p.add_argument("--resume_anyway", action="store_true",
                   help="skip inputs finished with another pipeline or other parameters, instead of "
                        "refusing to run (the folder then holds results of both)")
    p.add_argument("--max_attempts", type=int, default=3,
                   help="tries per file when its actor process dies (default 3), then it is quarantined")
    p.add_argument("--max_image_pixels", type=int, default=None,
                   help="larger images and rendered PDF pages fail instead of exhausting memory "
                        "(default 178956970, PaddleX's limit)")
    p.add_argument("--pdf_password", default=None, help="password for encrypted PDFs")
    p.add_argument("--max_tasks_per_actor", type=int, default=0,
                   help="restart an actor's process after this many batches, to bound memory growth "
                        "on long runs (default 0: never)")
    p.add_argument("--max_actor_memory_mb", type=float, default=0,
                   help="restart an actor's process once its resident memory exceeds this (default 0: never)")
    p.add_argument("--progress_interval", type=float, default=30.0,
                   help="when stderr is not a terminal, a progress line every this many seconds "
                        "(default 30; -1: none). On a terminal: a progress bar")
    p.add_argument("--prefetch_batches", type=int, default=1,
                   help="batches queued on each actor while it runs one, so it never waits for "
                        "input (default 1; 0: none)")
    p.add_argument("--pages_per_task", type=int, default=DEFAULT_PAGES_PER_TASK,
                   help="a PDF with more pages is split into page ranges of at most this many, run "
                        f"by several actors at once (default {DEFAULT_PAGES_PER_TASK}; 0: a PDF is always one task)")
    p.add_argument("--max_bytes_in_flight", type=int, default=1 << 30,
                   help="input bytes shipped to actors and not yet back (default 1 GiB); bounds "
                        "the driver's and the object store's memory")
    p.add_argument("--verbose", action="store_true", help="show Ray and PaddleX logs")
    return p


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ray_ocr: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("ray_ocr").setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        # Ray's notice that the embedded cluster uses token auth (it stays on).
        logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    from ray_ocr.config import RunConfig, load_params_file, parse_key_values

    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        config = RunConfig.build(
            pipeline=args.pipeline,
            input_dir=args.input_dir,
            output_dir=args.output_dir,
            input_glob_pattern=args.input_glob_pattern,
            device=args.device,
            instances_per_device=args.instances_per_device,
            gpus_per_instance=args.gpus_per_instance,
            cpus_per_instance=args.cpus_per_instance,
            batch_size=args.batch_size,
            address=args.address,
            pipeline_params={**load_params_file(args.params_file), **parse_key_values(args.param, "--param")},
            predict_params=parse_key_values(args.predict_param, "--predict_param"),
            pipeline_config=args.pipeline_config,
            overwrite=args.overwrite,
            resume_anyway=args.resume_anyway,
            max_attempts=args.max_attempts,
            max_image_pixels=args.max_image_pixels,
            pdf_password=args.pdf_password,
            max_tasks_per_actor=args.max_tasks_per_actor,
            max_actor_memory_mb=args.max_actor_memory_mb,
            progress_interval=args.progress_interval,
            save=args.save,
            max_bytes_in_flight=args.max_bytes_in_flight,
            follow_symlinks=args.follow_symlinks,
            prefetch_batches=args.prefetch_batches,
            pages_per_task=args.pages_per_task,
            verbose=args.verbose,
        )
        from ray_ocr.engine.driver import Driver

        try:
            summary = Driver(config).run()
        except SetupError as exc:
            print(f"ray_ocr: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # a second SIGINT/SIGTERM: stop now, not after the batches in flight
            print("ray_ocr: stopped at once; every output written is complete and recorded: run the "
                  "same command again to finish the rest", file=sys.stderr)
            return 130
    except UsageError as exc:
        print(f"ray_ocr: error: {exc}", file=sys.stderr)
        return 2
    print(summary.one_line())
    for failure in summary.failures:
        print(f"  failed: {failure.one_line()}")
    if summary.interrupted:
        print("ray_ocr: stopped early; run the same command again to finish the rest "
              "(finished inputs are skipped)", file=sys.stderr)
    return summary.exit_code


class _CallableModule(types.ModuleType):
    """``import ray_ocr.run`` replaces the package attribute ``ray_ocr.run`` (the
    library function) with this module; calling the module keeps it working."""

    def __call__(self, *args, **kwargs):
        from ray_ocr.api import run

        return run(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    raise SystemExit(main())
