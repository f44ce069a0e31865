"""Every option, declared once.

Each option is a field of one of the frozen config classes below, with its default,
help text and check in the field's metadata (``option(...)``). Everything else is
derived from those declarations: the command-line flags (ray_ocr/cli.py), the keyword
arguments of ``ray_ocr.run_batch`` and ``ray_ocr.predict``, the validation messages
(``--batch_size 0: must be >= 1``) and the README flag-table test.

- ``PipelineOptions``: which pipeline, with which parameters, on which devices.
- ``PredictConfig``: those plus how work is batched and retried (``ray_ocr.predict``).
- ``RunConfig``: those plus where inputs and outputs are (``ray_ocr.run_batch``, the CLI).
- ``ServeConfig``: ``PipelineOptions`` plus how the pipeline is served over HTTP
  (``python -m ray_ocr.serve`` and the ``serve run`` builder, ray_ocr/serve).
"""

from __future__ import annotations

import os
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ray_ocr.errors import UsageError, first_line
from ray_ocr.io.storage import is_uri, normalize_glob
from ray_ocr.pipelines import PipelineRef, resolve_pipeline


@dataclass(frozen=True)
class DeviceRequest:
    """What --device asked for.

    kind "auto": GPUs when the cluster has any, else CPU. kind "gpu" with
    gpu_ids None: every GPU Ray sees; with ids: exactly those (embedded Ray only).
    """

    kind: str = "auto"
    gpu_ids: tuple[int, ...] | None = None

    @classmethod
    def parse(cls, text: str | None) -> "DeviceRequest":
        if text is None or text.strip() in ("", "auto"):
            return cls("auto")
        text = text.strip().lower()
        if text == "cpu":
            return cls("cpu")
        if text == "gpu":
            return cls("gpu")
        if text.startswith("gpu:"):
            raw = [part.strip() for part in text[4:].split(",")]
            try:
                ids = tuple(int(part) for part in raw)
            except ValueError:
                raise UsageError(f"--device {text!r}: GPU ids must be integers, as in gpu:0,1,2,3") from None
            if any(i < 0 for i in ids):
                raise UsageError(f"--device {text!r}: GPU ids must be >= 0")
            if len(set(ids)) != len(ids):
                raise UsageError(f"--device {text!r}: a GPU id is repeated")
            return cls("gpu", ids)
        raise UsageError(f"--device {text!r}: expected cpu, gpu, or gpu:0,1,...")

    def __str__(self) -> str:
        if self.gpu_ids is not None:
            return "gpu:" + ",".join(map(str, self.gpu_ids))
        return self.kind


def parse_key_values(pairs: Iterable[str], flag: str) -> dict[str, Any]:
    """Parse repeated ``key=value`` options; values are YAML scalars (true, 0.5, text)."""
    import yaml

    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"{flag} {pair!r}: expected key=value with a Python identifier as key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise UsageError(f"{flag} {pair!r}: value is not a YAML scalar ({first_line(exc)})") from None
        if isinstance(value, (dict, list)) and not raw.strip().startswith(("[", "{")):
            raise UsageError(f"{flag} {pair!r}: value is not a scalar")
        parsed[key] = value
    return parsed


SAVE_KINDS = ("json", "markdown", "img", "page")
# paddleocr pipelines whose predict() takes {"image": ..., "query": ...} instead of an image.
QUERY_PIPELINES = {"DocUnderstanding"}
# paddleocr pipelines whose results have save_to_markdown.
MARKDOWN_PIPELINES = {"PPStructureV3", "PaddleOCRVL", "PPDocTranslation"}


def parse_save(save: str | tuple[str, ...] | None, pipeline: PipelineRef) -> tuple[str, ...]:
    """``--save markdown,img``: outputs beyond the JSON (which is always written)."""
    if not save:
        return ()
    items = save.split(",") if isinstance(save, str) else list(save)
    kinds = []
    for item in (i.strip().lower() for i in items):
        if item not in SAVE_KINDS:
            raise UsageError(f"--save {item!r}: expected a comma list of "
                             f"{', '.join(k for k in SAVE_KINDS if k != 'json')} (the JSON is always written)")
        if item != "json" and item not in kinds:
            kinds.append(item)
    if "page" in kinds and pipeline.is_paddleocr and pipeline.class_name in QUERY_PIPELINES:
        raise UsageError(f"--save page: the {pipeline.display_name} pipeline has no document preprocessing")
    if "markdown" in kinds and pipeline.is_paddleocr and pipeline.class_name not in MARKDOWN_PIPELINES:
        raise UsageError(
            f"--save markdown: the {pipeline.display_name} pipeline has no markdown output "
            f"(pipelines with markdown: {', '.join(sorted(MARKDOWN_PIPELINES))})"
        )
    return tuple(kinds)


def load_params_file(path: str | None) -> dict[str, Any]:
    """Constructor arguments from a YAML mapping (``--params_file``)."""
    if path is None:
        return {}
    import yaml

    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle)
    except OSError as exc:
        raise UsageError(f"--params_file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"--params_file {path}: not YAML ({first_line(exc)})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict) or not all(isinstance(k, str) and k.isidentifier() for k in loaded):
        raise UsageError(f"--params_file {path}: expected a mapping of argument names to values")
    return loaded


def _location(text: str, flag: str) -> str:
    """A local folder (absolute, ~ expanded; file:// too) or a URI kept as given."""
    if text.startswith("file://"):
        text = text[len("file://"):]
    if not is_uri(text):
        from ray_ocr.io.discovery import not_utf8, shown_path

        path = os.path.abspath(os.path.expanduser(text))
        shown = shown_path(path)
        if shown != path:  # the run's files would be named after it
            raise UsageError(f"{flag} {shown}: {not_utf8('this path')}")
        return path
    try:
        from ray_ocr.io.storage import UriFolder

        UriFolder(text)._fs_root  # noqa: B018 - parse it now: a bad URI is a usage error
    except ImportError:
        raise UsageError(f"{flag} {text}: URIs need pyarrow (pip install pyarrow)") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow's own message says what is wrong
        raise UsageError(f"{flag} {text}: {first_line(exc)}") from None
    return text


def _check_output_folder(path: str) -> None:
    """The folder, or the first of its parents that exists, must be a folder we can write."""
    existing = path
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        what = "exists" if existing == path else f"{existing} exists"
        raise UsageError(f"--output_dir {path}: {what} and is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--output_dir {path}: {existing} is not writable")



# -- declaring an option ------------------------------------------------------------


def option(default: Any = dataclasses.MISSING, help: str = "", *, convert=None, check=None,
           metavar: str | None = None, cli=None, arg_type=None):
    """A config field that is also a command-line flag and a keyword argument.

    `convert(raw, earlier)` turns what a user gave into the stored value (``earlier``:
    the options converted before it) and raises UsageError; `check(value)` returns what
    is wrong with a value, or None. `cli` replaces the one ``--name`` flag (see
    ``ParamFlags``); `arg_type` is the flag's type when it is not the field's.
    """
    metadata = {"help": help, "convert": convert, "check": check, "metavar": metavar, "cli": cli,
                "arg_type": arg_type}
    if default is dataclasses.MISSING:
        return field(metadata=metadata)
    if isinstance(default, (dict, list, set)):
        raise TypeError("option defaults must be immutable")
    return field(default=default, metadata=metadata)


def at_least(low: float, note: str = ""):
    return lambda value: None if value >= low else f"must be >= {low}{note}"


def above(low: float):
    return lambda value: None if value > low else f"must be > {low}"


def _gpu_fraction(value: float) -> str | None:
    return None if 0 < value <= 1 else "must be > 0 and at most 1 (a pipeline uses one GPU at most)"


@dataclass(frozen=True)
class ParamFlags:
    """A repeatable ``--flag key=value`` (and optionally a YAML file of them) that fills
    one mapping option, e.g. ``--param`` and ``--params_file`` for ``pipeline_params``."""

    flag: str
    help: str
    file_flag: str | None = None
    file_help: str = ""


def _params(flags_name: str):
    def convert(raw, _earlier):
        if isinstance(raw, tuple):
            return raw
        if raw is not None and not isinstance(raw, Mapping):
            raise UsageError(f"{flags_name}: expected a mapping of argument names to values, got {raw!r}")
        return tuple(sorted((raw or {}).items()))
    return convert


def check_model_dirs(params: Mapping[str, Any], paddlex_folders: bool = True) -> dict[str, Any]:
    """`params` with each ``*_model_dir`` made an absolute path (``~`` expanded, as the
    driver reads it to ship it); UsageError when it is not a folder on this machine, or
    (`paddlex_folders`: PaddleOCR's pipelines) not a PaddleX model folder, instead of
    PaddleX's bare FileNotFoundError in every actor. None: PaddleX uses the named model."""
    from ray_ocr.io.discovery import shown_path
    from ray_ocr.models.model_cache import MODEL_CONFIG_FILE

    checked = dict(params)
    for name, value in params.items():
        if not name.endswith("_model_dir") or value is None:
            continue
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):  # YAML read `--param x=2024` as a number (or a date, a boolean)
            raise UsageError(f"--param {name}={value}: YAML reads this as a {type(value).__name__}, not a folder; "
                             f"quote it: --param \"{name}='{value}'\" (or {name}: '{value}' in a --params_file)")
        if not value:
            raise UsageError(f"--param {name}='': an empty folder path")
        path = os.path.abspath(os.path.expanduser(value))
        given = f"--param {name}={shown_path(path)}"
        if not os.path.isdir(path):
            problem = "not a folder" if os.path.exists(path) else "no such folder"
            raise UsageError(f"{given}: {problem} (ray_ocr ships model folders from this machine to the workers)")
        if paddlex_folders and not os.path.isfile(os.path.join(path, MODEL_CONFIG_FILE)):
            raise UsageError(f"{given}: not a PaddleX model folder (no {MODEL_CONFIG_FILE})")
        checked[name] = path
    return checked


def _pipeline_params(raw, earlier):
    params = dict(_params("pipeline_params")(raw, earlier))
    # A custom pipeline class may take any folder (ONNX, Hugging Face): shipped all the same.
    return tuple(sorted(check_model_dirs(params, paddlex_folders=earlier["pipeline"].is_paddleocr).items()))


def _device(raw, _earlier) -> "DeviceRequest":
    return raw if isinstance(raw, DeviceRequest) else DeviceRequest.parse(raw)


def _pipeline(raw, _earlier) -> PipelineRef:
    return raw if isinstance(raw, PipelineRef) else resolve_pipeline(str(raw))


def _pipeline_config(raw, _earlier) -> str | None:
    if raw is None:
        return None
    path = os.path.expanduser(str(raw))
    if not os.path.isfile(path):
        raise UsageError(f"--pipeline_config {path}: no such file")
    return os.path.abspath(path)


def _glob(pattern: str) -> str | None:
    if not pattern:
        return "must be a relative pattern"
    try:
        normalize_glob(pattern)
    except ValueError as exc:
        return str(exc)
    return None


def _input_list(raw, _earlier) -> str | None:
    if raw is None:
        return None
    text = str(raw)
    if is_uri(text) and not text.startswith("file://"):
        return _location(text, "--input_list")
    path = os.path.abspath(os.path.expanduser(text.removeprefix("file://")))
    if not os.path.isfile(path):
        raise UsageError(f"--input_list {path}: no such file")
    return path


def _input_dir(raw, _earlier) -> str | None:
    if raw is None:
        return None
    path = _location(str(raw), "--input_dir")
    if not is_uri(path) and not os.path.exists(path):
        raise UsageError(f"--input_dir {path}: no such directory")
    if not is_uri(path) and not os.path.isdir(path):
        raise UsageError(f"--input_dir {path}: not a directory")
    return path


def _output_dir(raw, _earlier) -> str:
    """A local folder, or a URI; ``file://`` keeps its scheme: it says the folder is
    mounted on every node (so the actors may write there)."""
    text = str(raw)
    path = _location(text, "--output_dir")
    if not is_uri(path):
        _check_output_folder(path)
    return "file://" + path if text.startswith("file://") else path


def one_of(*choices: str):
    return lambda value: None if value in choices else f"expected one of {', '.join(choices)}"


def _save(raw, earlier) -> tuple[str, ...]:
    return parse_save(raw, earlier["pipeline"])


# Parts of 2 pages: the longest task bounds the tail of a run (2 pages: a few seconds on
# CPU), and a part's own cost (a message, reopening the PDF from the object store) is
# milliseconds next to a page's inference, even on a GPU.
DEFAULT_PAGES_PER_TASK = 2


# -- the options ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PipelineOptions:
    """Which pipeline, built with which parameters, on which devices."""

    pipeline: PipelineRef = option(
        help="PaddleOCR pipeline: class (OCR, SealRecognition, PPStructureV3, ...), CLI name "
             "(ocr, seal_recognition, ...), or package.module:Class (your own; batch runs only)",
        convert=_pipeline, arg_type=str)
    device: DeviceRequest = option(
        DeviceRequest(), "cpu, gpu (every GPU Ray sees) or gpu:0,1,... (auto: gpu if Ray sees one, else cpu)",
        convert=_device, arg_type=str)
    instances_per_device: int = option(
        1, "pipeline instances (batch actors, serving replicas) per GPU (each asks 1/K GPU) or per node on cpu",
        check=at_least(1))
    gpus_per_instance: float | None = option(
        None, "GPU fraction each instance asks for (default 1/instances_per_device)", check=_gpu_fraction)
    cpus_per_instance: float | None = option(
        None, "CPUs each instance asks for; also its Paddle cpu_threads (default on cpu: the node's CPUs / "
              "instances_per_device)", check=above(0))
    address: str | None = option(
        None, "join a running Ray cluster (auto, host:port, ray://...); default: embedded Ray")
    pipeline_params: tuple[tuple[str, Any], ...] = option(
        (), "pipeline constructor arguments", convert=_pipeline_params,
        cli=ParamFlags("--param", "pipeline constructor argument (repeatable; YAML scalar value)",
                       "--params_file", "YAML mapping of pipeline constructor arguments; --param entries "
                                        "override it"))
    pipeline_config: str | None = option(
        None, "PaddleX pipeline YAML, passed as paddlex_config", convert=_pipeline_config)
    max_image_pixels: int | None = option(
        None, "larger images and rendered PDF pages fail instead of exhausting memory (default 178956970, "
              "PaddleX's limit)", check=at_least(1))
    verbose: bool = option(False, "show the logs of Ray (and Serve) and PaddleX")

    def __post_init__(self):
        if self.device.kind == "cpu" and self.gpus_per_instance is not None:
            raise UsageError("--gpus_per_instance needs a GPU --device")

    @classmethod
    def build(cls, **options: Any):
        """Validate what a user gave (keyword arguments named as the flags) and return
        the config; raises UsageError with one line."""
        declared = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - set(declared))
        if unknown:
            raise UsageError(f"unknown option {', '.join(unknown)} (options: {', '.join(declared)})")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name not in options and spec.default is dataclasses.MISSING:
                raise UsageError(f"--{name} is required")
            values[name] = _validated(spec, options.get(name, spec.default), values)
        return cls(**values)

    @property
    def pipeline_kwargs(self) -> dict[str, Any]:
        return dict(self.pipeline_params)


def _validated(spec: dataclasses.Field, raw: Any, earlier: dict[str, Any]) -> Any:
    convert, check = spec.metadata["convert"], spec.metadata["check"]
    if raw is spec.default and not convert:
        return raw
    value = convert(raw, earlier) if convert else raw
    problem = check(value) if check and value is not None else None
    if problem:
        raise UsageError(f"--{spec.name} {raw if raw != '' else repr(raw)}: {problem}")
    return value


@dataclass(frozen=True, kw_only=True)
class PredictConfig(PipelineOptions):
    """What ``ray_ocr.predict`` takes: a pipeline and how it is called, how work is batched
    and retried. (Not PipelineOptions, which the service shares: PaddleX's serving API
    takes predict() arguments per request, and has no PDF password at all.)"""

    predict_params: tuple[tuple[str, Any], ...] = option(
        (), "predict() arguments", convert=_params("predict_params"),
        cli=ParamFlags("--predict_param", "argument to predict() (repeatable; YAML scalar value)"))
    pdf_password: str | None = option(None, "password for encrypted PDFs", metavar="TEXT")
    input_glob_pattern: str = option("*", "which files under the input folder ('**/*' recurses)", check=_glob,
                                     metavar="GLOB")
    batch_size: int = option(1, "files per actor task", check=at_least(1))
    max_attempts: int = option(
        3, "tries per file when its actor process dies, then it is quarantined", check=at_least(1))
    prefetch_batches: int = option(
        1, "batches queued on each actor while it runs one, so it never waits for input (0: none)",
        check=at_least(0))
    pages_per_task: int = option(
        DEFAULT_PAGES_PER_TASK, "a PDF with more pages is split into page ranges of at most this many, run "
                                "by several actors at once (0: a PDF is always one task)",
        check=at_least(0, " (0: never split a PDF)"))
    max_bytes_in_flight: int = option(
        1 << 30, "input bytes shipped to actors and not yet back (default 1 GiB); bounds the driver's and "
                 "the object store's memory", check=above(0), metavar="BYTES")
    query: str | None = option(
        None, "the question a document-understanding pipeline (DocUnderstanding) answers for every page; "
              "required there, refused by pipelines that take none", metavar="TEXT")

    def __post_init__(self):
        super().__post_init__()
        takes_query = self.pipeline.class_name in QUERY_PIPELINES or not self.pipeline.is_paddleocr
        if self.query is None and self.pipeline.class_name in QUERY_PIPELINES:
            raise UsageError(f"--pipeline {self.pipeline.display_name} needs --query TEXT (the question asked of "
                             "every page)")
        if self.query is not None and not takes_query:
            raise UsageError(f"--query: the {self.pipeline.display_name} pipeline takes no query "
                             f"(pipelines with one: {', '.join(sorted(QUERY_PIPELINES))})")


@dataclass(frozen=True, kw_only=True)
class RunConfig(PredictConfig):
    """Everything one batch run needs (``ray_ocr.run_batch``, the CLI)."""

    input_dir: str | None = option(
        None, "folder of images and PDFs: a local path, or a URI every node can read (s3://, gs://, hdfs://, "
              "file://); this or --input_list", convert=_input_dir)
    input_list: str | None = option(
        None, "a file naming the inputs: one path or URI per line, or a CSV/Parquet with a 'path' column "
              "(else its first); local or a URI; relative entries are relative to its folder, an entry "
              "listed twice runs once", convert=_input_list, metavar="FILE")
    output_dir: str = option(
        "output", "where the results go: a local path, or a URI (s3://, gs://, hdfs://; file:// for a folder "
                  "mounted on every node)", convert=_output_dir)
    write_outputs: str = option(
        "auto", "who writes the results: driver; actors (each writes its own, the driver records receipts); "
                "auto: the actors when --output_dir is a URI, else the driver", check=one_of("auto", "driver", "actors"),
        metavar="WHO")
    follow_symlinks: bool = option(False, "also read files that resolve outside --input_dir through symlinks")
    save: tuple[str, ...] = option(
        (), f"outputs beyond JSON (always written): markdown ({', '.join(sorted(MARKDOWN_PIPELINES))}; a file "
            "per page and one per document), img (the result's visualisations), page (the page as the "
            "pipeline's document preprocessing left it, a PNG), e.g. --save markdown,img",
        convert=_save, metavar="KINDS", arg_type=str)
    overwrite: bool = option(False, "redo inputs that an earlier run finished (default: skip them)")
    resume_anyway: bool = option(
        False, "skip inputs finished with another pipeline or other parameters, instead of refusing to run "
               "(the folder then holds results of both)")
    skip_failed: bool = option(
        False, "skip inputs whose last try failed (failures.jsonl keeps them) instead of trying them again, "
               "so an archive with files broken for good can end with exit code 0")
    max_tasks_per_actor: int = option(
        0, "restart an actor's process after this many batches, to bound memory growth on long runs "
           "(0: never)", check=at_least(0, " (0: never recycle)"))
    max_actor_memory_mb: float = option(
        0, "restart an actor's process once its resident memory exceeds this (0: never)",
        check=at_least(0, " (0: never recycle)"), metavar="MB")
    progress_interval: float = option(
        30.0, "when stderr is not a terminal, a progress line every this many seconds (0 or less: none). On "
              "a terminal: a progress bar")

    def __post_init__(self):
        super().__post_init__()
        if (self.input_dir is None) == (self.input_list is None):
            raise UsageError("give the inputs as --input_dir DIR or --input_list FILE (one of them)")
        if self.input_list is not None and self.input_glob_pattern != "*":
            raise UsageError("--input_glob_pattern: an --input_list is taken as it is (no pattern)")


# paddlex --serve's port: a client written for it needs no change.
DEFAULT_SERVE_PORT = 8080


def _tcp_port(port: int) -> str | None:
    return None if 0 < port < 65536 else "must be a TCP port, 1-65535"


@dataclass(frozen=True, kw_only=True)
class ServeConfig(PipelineOptions):
    """What ``python -m ray_ocr.serve`` (and ``ray_ocr.serve.app:build_app``) takes: a
    pipeline placed as batch runs place it, and how its replicas are served over HTTP."""

    min_replicas: int | None = option(
        None, "autoscale between this many replicas and --max_replicas on queued requests (default: "
              "--max_replicas, a fixed count)", check=at_least(1))
    max_replicas: int | None = option(
        None, "at most this many replicas (default: as many as the cluster holds, placed as a batch run "
              "places its actors)", check=at_least(1))
    # 1: a replica predicts one request at a time (PaddleX serializes the calls), and a
    # second one held by a replica would wait behind it while another replica frees up
    # first; serve/router.py sends a waiting request the moment a replica finishes, so
    # the replica does not idle for it either.
    max_ongoing_requests: int = option(
        1, "requests a replica holds at once; the others wait in Serve's proxy, in order, for the first "
           "free replica", check=at_least(1))
    host: str = option(
        "127.0.0.1", "HTTP address to bind; 0.0.0.0 exposes the API, which has no authentication, to every "
                     "network the machine is on", metavar="ADDR")
    port: int = option(DEFAULT_SERVE_PORT, "HTTP port (PaddleX's)", check=_tcp_port)
    # PaddleX's app renders a document's pages into memory before predicting, so a
    # limit keeps one request from holding gigabytes; its default cuts silently, ours
    # says so (serve/replica.py).
    max_pages: int | None = option(
        None, "a PDF's (or multi-page TIFF's) pages answered per request: its first N; a response that "
              "leaves pages out says so in its x-ray-ocr-pages header. 0: every page (default: PaddleX's "
              "10, or Serving.extra.max_num_input_imgs in --pipeline_config)", check=at_least(0), metavar="N")

    def __post_init__(self):
        super().__post_init__()
        if not self.pipeline.is_paddleocr:
            raise UsageError(f"--pipeline {self.pipeline.module}:{self.pipeline.class_name}: serving takes a "
                             "pipeline that PaddleX serves, by name (OCR, SealRecognition, PPStructureV3, ...), "
                             "not a class")
        if self.min_replicas and self.max_replicas and self.min_replicas > self.max_replicas:
            raise UsageError(f"--min_replicas {self.min_replicas} is more than --max_replicas {self.max_replicas}")
