"""Command line: ``python -m ray_ocr.run`` (ray_ocr/run.py calls ``main`` here):
``python -m ray_ocr.run --pipeline OCR --input_dir in/ --output_dir out/``.

A thin layer: parse flags, build a RunConfig, call the library, map outcomes to exit
codes (0 all inputs done, 1 some inputs failed, 2 usage or setup error, 130 stopped
by a signal). The argparse Namespace never leaves this module.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from ray_ocr.config import ParamFlags, RunConfig, load_params_file, parse_key_values
from ray_ocr.errors import SetupError, UsageError

logger = logging.getLogger("ray_ocr")


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + message; users get one line
        print(f"ray_ocr: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def add_options(parser: argparse.ArgumentParser, config_cls) -> None:
    """One flag per option field of `config_cls` (ray_ocr/config.py), named as the field.
    A flag the user did not give is absent from the parsed arguments, so the field's
    own default applies (the help shows it)."""
    for spec in dataclasses.fields(config_cls):
        meta = spec.metadata
        if isinstance(meta["cli"], ParamFlags):
            _add_param_flags(parser, meta["cli"])
            continue
        help_text = meta["help"] + _default_note(spec)
        kwargs = dict(dest=spec.name, help=help_text, default=argparse.SUPPRESS)
        if spec.type == "bool":
            parser.add_argument(f"--{spec.name}", action="store_true", **kwargs)
            continue
        kwargs["type"] = meta["arg_type"] or _FLAG_TYPES.get(spec.type.split(" ")[0], str)
        kwargs["metavar"] = meta["metavar"] or {int: "N", float: "X"}.get(kwargs["type"])
        parser.add_argument(f"--{spec.name}", required=spec.default is dataclasses.MISSING, **kwargs)


_FLAG_TYPES = {"int": int, "float": float}


def _default_note(spec: dataclasses.Field) -> str:
    if spec.default in (dataclasses.MISSING, None, False, ()) or "default" in spec.metadata["help"]:
        return ""
    shown = f"{spec.default:g}" if isinstance(spec.default, float) else spec.default
    return f" (default: {shown})"


def _add_param_flags(parser: argparse.ArgumentParser, flags: ParamFlags) -> None:
    parser.add_argument(flags.flag, action="append", default=[], metavar="KEY=VALUE", help=flags.help,
                        dest=flags.flag.lstrip("-"))
    if flags.file_flag:
        parser.add_argument(flags.file_flag, default=None, metavar="YAML", help=flags.file_help,
                            dest=flags.file_flag.lstrip("-"))


def options_from_args(args: argparse.Namespace, config_cls) -> dict:
    """The keyword arguments for ``config_cls.build``: the flags the user gave, and the
    mappings the key=value flags (and their YAML files) add up to."""
    given = vars(args)
    options = {}
    for spec in dataclasses.fields(config_cls):
        flags = spec.metadata["cli"]
        if isinstance(flags, ParamFlags):
            from_file = load_params_file(given.get(flags.file_flag.lstrip("-"))) if flags.file_flag else {}
            pairs = parse_key_values(given.get(flags.flag.lstrip("-"), []), flags.flag)
            options[spec.name] = {**from_file, **pairs}
        elif spec.name in given:
            options[spec.name] = given[spec.name]
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m ray_ocr.run",
        description="Run a PaddleOCR 3.x pipeline over images and PDFs with Ray actors.",
        epilog="Inputs: --input_dir DIR or --input_list FILE. Exit codes: 0 every input done, 1 some inputs "
               "failed (the rest done), 2 usage or setup error, 130 stopped by a signal.",
    )
    add_options(parser, RunConfig)
    return parser


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ray_ocr: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("ray_ocr").setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(getattr(args, "verbose", False))
    try:
        config = RunConfig.build(**options_from_args(args, RunConfig))
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
