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
from typing import Any, Mapping

from ray_ocr.config import ParamFlags, RunConfig, load_params_file, parse_key_values
from ray_ocr.errors import SetupError, UsageError

logger = logging.getLogger("ray_ocr")


class _OneLineParser(argparse.ArgumentParser):
    def __init__(self, error_prefix: str, **kwargs):
        super().__init__(**kwargs)
        self.error_prefix = error_prefix

    def error(self, message):  # argparse prints usage + message; users get one line
        print(f"{self.error_prefix}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_config_parser(config_cls, *, error_prefix: str = "ray_ocr", **kwargs) -> argparse.ArgumentParser:
    """A parser with one flag per option of `config_cls` (`kwargs`: argparse's prog,
    description, epilog): ``python -m ray_ocr.run`` and ``python -m ray_ocr.serve``
    share the declarations their configs share."""
    parser = _OneLineParser(error_prefix, **kwargs)
    add_options(parser, config_cls)
    return parser


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
        kwargs["type"] = _flag_type(spec)
        kwargs["metavar"] = meta["metavar"] or {int: "N", float: "X"}.get(kwargs["type"])
        parser.add_argument(f"--{spec.name}", required=spec.default is dataclasses.MISSING, **kwargs)


_FLAG_TYPES = {"int": int, "float": float}


def _flag_type(spec: dataclasses.Field):
    """What a flag's text becomes: the field's int or float (``int | None`` too), else
    its declared ``arg_type``, else str."""
    return spec.metadata["arg_type"] or _FLAG_TYPES.get(spec.type.split(" ")[0], str)


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
    """The keyword arguments for ``config_cls.build`` from the parsed flags."""
    return options_from_mapping(vars(args), config_cls)


def options_from_mapping(given: Mapping[str, Any], config_cls) -> dict:
    """The keyword arguments for ``config_cls.build`` from values named as the flags
    (without ``--``): the parsed flags, or the ``args`` of a ``serve run`` application
    (typed by its YAML, or strings from ``serve run ... key=value``). The key=value flags
    and their YAML file add up to one mapping, which may also be given whole under the
    field's own name (``pipeline_params``, as the Python API takes it)."""
    rest = dict(given)
    options = {}
    for spec in dataclasses.fields(config_cls):
        flags = spec.metadata["cli"]
        if isinstance(flags, ParamFlags):
            options[spec.name] = _param_mapping(rest, flags, rest.pop(spec.name, None) or {})
        elif spec.name in rest:
            options[spec.name] = _typed(spec, rest.pop(spec.name))
    if rest:
        raise UsageError(f"unknown option {', '.join(sorted(rest))} (options: {', '.join(_names(config_cls))})")
    return options


def _param_mapping(given: dict, flags: ParamFlags, whole: Any) -> dict:
    """A ParamFlags' mapping: its YAML file, then the mapping given whole, then the
    key=value entries (a lone string from ``serve run`` is one entry)."""
    from_file = load_params_file(given.pop(flags.file_flag.lstrip("-"), None)) if flags.file_flag else {}
    pairs = given.pop(flags.flag.lstrip("-"), None) or []
    if not isinstance(whole, Mapping):
        raise UsageError(f"{flags.flag}: expected a mapping of argument names to values, got {whole!r}")
    return {**from_file, **whole, **parse_key_values([pairs] if isinstance(pairs, str) else pairs, flags.flag)}


def _typed(spec: dataclasses.Field, value: Any) -> Any:
    """A value as its flag would have typed it; only text is converted."""
    if not isinstance(value, str):
        return value
    if spec.type == "bool":
        if value.strip().lower() not in ("true", "false"):
            raise UsageError(f"--{spec.name} {value!r}: expected true or false")
        return value.strip().lower() == "true"
    flag_type = _flag_type(spec)
    try:
        return flag_type(value)
    except ValueError:
        raise UsageError(f"--{spec.name} {value!r}: not {'an integer' if flag_type is int else 'a number'}") from None


def _names(config_cls) -> list[str]:
    """Every name options_from_mapping takes for `config_cls`."""
    names = []
    for spec in dataclasses.fields(config_cls):
        flags = spec.metadata["cli"]
        extra = [flags.flag, flags.file_flag] if isinstance(flags, ParamFlags) else []
        names += [spec.name] + [flag.lstrip("-") for flag in extra if flag]
    return names


def build_parser() -> argparse.ArgumentParser:
    return build_config_parser(
        RunConfig, prog="python -m ray_ocr.run",
        description="Run a PaddleOCR 3.x pipeline over images and PDFs with Ray actors.",
        epilog="Inputs: --input_dir DIR or --input_list FILE. Exit codes: 0 every input done, 1 some inputs "
               "failed (the rest done), 2 usage or setup error, 130 stopped by a signal.",
    )


def configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ray_ocr: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("ray_ocr").setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(getattr(args, "verbose", False))
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
              "(finished inputs and the parts done of long PDFs are skipped)", file=sys.stderr)
    return summary.exit_code
