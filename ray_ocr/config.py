"""The run configuration: one frozen dataclass, validated where it is built."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ray_ocr.errors import UsageError
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
            reason = str(exc).splitlines()[0]
            raise UsageError(f"{flag} {pair!r}: value is not a YAML scalar ({reason})") from None
        if isinstance(value, (dict, list)) and not raw.strip().startswith(("[", "{")):
            raise UsageError(f"{flag} {pair!r}: value is not a scalar")
        parsed[key] = value
    return parsed


SAVE_KINDS = ("json", "markdown", "img")
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
            raise UsageError(f"--save {item!r}: expected a comma list of {', '.join(SAVE_KINDS)}")
        if item != "json" and item not in kinds:
            kinds.append(item)
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
        raise UsageError(f"--params_file {path}: not YAML ({str(exc).splitlines()[0]})") from None
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
        return os.path.abspath(os.path.expanduser(text))
    try:
        from ray_ocr.io.storage import UriFolder

        UriFolder(text)._fs_root  # noqa: B018 - parse it now: a bad URI is a usage error
    except ImportError:
        raise UsageError(f"{flag} {text}: URIs need pyarrow (pip install pyarrow)") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow's own message says what is wrong
        raise UsageError(f"{flag} {text}: {str(exc).splitlines()[0]}") from None
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


def _frozen(mapping: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((mapping or {}).items()))


# Parts of 2 pages: the longest task bounds the tail of a run (2 pages: a few seconds on
# CPU), and a part's own cost (a message, reopening the PDF from the object store) is
# milliseconds next to a page's inference, even on a GPU.
DEFAULT_PAGES_PER_TASK = 2


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs. Built by the CLI or by ``ray_ocr.run(...)``."""

    pipeline: PipelineRef
    input_dir: str
    output_dir: str = "output"
    input_glob_pattern: str = "*"
    device: DeviceRequest = field(default_factory=DeviceRequest)
    instances_per_device: int = 1
    gpus_per_instance: float | None = None
    cpus_per_instance: float | None = None
    batch_size: int = 1
    address: str | None = None
    pipeline_params: tuple[tuple[str, Any], ...] = ()
    predict_params: tuple[tuple[str, Any], ...] = ()
    pipeline_config: str | None = None
    overwrite: bool = False
    resume_anyway: bool = False  # skip results other settings made instead of refusing
    max_attempts: int = 3
    max_image_pixels: int | None = None
    pdf_password: str | None = None
    max_tasks_per_actor: int = 0
    max_actor_memory_mb: float = 0
    progress_interval: float = 30.0  # seconds between progress lines in logs; < 0: none
    save: tuple[str, ...] = ()  # outputs beyond JSON: "markdown", "img"
    max_bytes_in_flight: int = 1 << 30  # input bytes shipped to actors and not yet back
    follow_symlinks: bool = False
    prefetch_batches: int = 1  # batches queued on each actor beyond the one it runs
    pages_per_task: int = DEFAULT_PAGES_PER_TASK  # a longer PDF is split into page ranges; 0: never
    verbose: bool = False

    @classmethod
    def build(
        cls,
        *,
        pipeline: str,
        input_dir: str,
        output_dir: str = "output",
        input_glob_pattern: str = "*",
        device: str | None = None,
        instances_per_device: int = 1,
        gpus_per_instance: float | None = None,
        cpus_per_instance: float | None = None,
        batch_size: int = 1,
        address: str | None = None,
        pipeline_params: Mapping[str, Any] | None = None,
        predict_params: Mapping[str, Any] | None = None,
        pipeline_config: str | None = None,
        overwrite: bool = False,
        resume_anyway: bool = False,
        max_attempts: int = 3,
        max_image_pixels: int | None = None,
        pdf_password: str | None = None,
        max_tasks_per_actor: int = 0,
        max_actor_memory_mb: float = 0,
        progress_interval: float = 30.0,
        save: str | tuple[str, ...] | None = None,
        max_bytes_in_flight: int = 1 << 30,
        follow_symlinks: bool = False,
        prefetch_batches: int = 1,
        pages_per_task: int = DEFAULT_PAGES_PER_TASK,
        verbose: bool = False,
    ) -> "RunConfig":
        """Validate user input and return a config; raises UsageError with one line."""
        ref = resolve_pipeline(pipeline)
        input_dir, output_dir = _location(input_dir, "--input_dir"), _location(output_dir, "--output_dir")
        if pipeline_config is not None:
            pipeline_config = os.path.expanduser(pipeline_config)
        if not is_uri(input_dir) and not os.path.exists(input_dir):
            raise UsageError(f"--input_dir {input_dir}: no such directory")
        if not is_uri(input_dir) and not os.path.isdir(input_dir):
            raise UsageError(f"--input_dir {input_dir}: not a directory")
        if not is_uri(output_dir):
            _check_output_folder(output_dir)
        if prefetch_batches < 0:
            raise UsageError(f"--prefetch_batches {prefetch_batches}: must be >= 0")
        if pages_per_task < 0:
            raise UsageError(f"--pages_per_task {pages_per_task}: must be >= 0 (0: never split a PDF)")
        if max_bytes_in_flight <= 0:
            raise UsageError(f"--max_bytes_in_flight {max_bytes_in_flight}: must be > 0")
        if batch_size <= 0:
            raise UsageError(f"--batch_size {batch_size}: must be >= 1")
        if instances_per_device <= 0:
            raise UsageError(f"--instances_per_device {instances_per_device}: must be >= 1")
        if gpus_per_instance is not None and not 0 < gpus_per_instance:
            raise UsageError(f"--gpus_per_instance {gpus_per_instance}: must be > 0")
        if cpus_per_instance is not None and not 0 < cpus_per_instance:
            raise UsageError(f"--cpus_per_instance {cpus_per_instance}: must be > 0")
        if max_attempts <= 0:
            raise UsageError(f"--max_attempts {max_attempts}: must be >= 1")
        if max_image_pixels is not None and max_image_pixels <= 0:
            raise UsageError(f"--max_image_pixels {max_image_pixels}: must be >= 1")
        if max_tasks_per_actor < 0 or max_actor_memory_mb < 0:
            raise UsageError("--max_tasks_per_actor and --max_actor_memory_mb must be >= 0 (0: never recycle)")
        if not input_glob_pattern:
            raise UsageError("--input_glob_pattern '': must be a relative pattern")
        try:
            normalize_glob(input_glob_pattern)
        except ValueError as exc:
            raise UsageError(f"--input_glob_pattern {exc}") from None
        if pipeline_config is not None and not os.path.isfile(pipeline_config):
            raise UsageError(f"--pipeline_config {pipeline_config}: no such file")
        saves = parse_save(save, ref)
        dev = DeviceRequest.parse(device)
        if dev.kind == "cpu" and gpus_per_instance is not None:
            raise UsageError("--gpus_per_instance needs a GPU --device")
        return cls(
            pipeline=ref,
            input_dir=input_dir,
            output_dir=output_dir,
            input_glob_pattern=input_glob_pattern,
            device=dev,
            instances_per_device=instances_per_device,
            gpus_per_instance=gpus_per_instance,
            cpus_per_instance=cpus_per_instance,
            batch_size=batch_size,
            address=address,
            pipeline_params=_frozen(pipeline_params),
            predict_params=_frozen(predict_params),
            pipeline_config=os.path.abspath(pipeline_config) if pipeline_config else None,
            overwrite=overwrite,
            resume_anyway=resume_anyway,
            max_attempts=max_attempts,
            max_image_pixels=max_image_pixels,
            pdf_password=pdf_password,
            max_tasks_per_actor=max_tasks_per_actor,
            max_actor_memory_mb=max_actor_memory_mb,
            progress_interval=progress_interval,
            save=saves,
            max_bytes_in_flight=max_bytes_in_flight,
            follow_symlinks=follow_symlinks,
            prefetch_batches=prefetch_batches,
            pages_per_task=pages_per_task,
            verbose=verbose,
        )

    @property
    def pipeline_kwargs(self) -> dict[str, Any]:
        return dict(self.pipeline_params)

    @property
    def predict_kwargs(self) -> dict[str, Any]:
        return dict(self.predict_params)
