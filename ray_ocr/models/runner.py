"""PipelineRunner: one PaddleOCR pipeline in one process, run on batches of files.

A plain class with no Ray in it: the engine wraps it as an actor. It builds its
pipeline once, then turns each input's bytes into pages and each page into the JSON
text that PaddleOCR's ``result.save_to_json`` writes. A file that cannot be read,
decoded, rendered or predicted becomes a failure record; it never raises out of a
batch, so the other files of the batch are unaffected.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ray_ocr.io.documents import (
    DEFAULT_MAX_IMAGE_PIXELS,
    DocumentError,
    decode_image,
    iter_pdf_pages,
    iter_tiff_pages,
    sniff_kind,
    truncation_warning,
)
from ray_ocr.errors import ModelUnavailableError
from ray_ocr.io.storage import read_uri_item
from ray_ocr.pipelines import PipelineRef
from ray_ocr.records import Failure, FileResult, InputItem, PageOutput

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunnerSpec:
    """What a runner needs to build its pipeline; pickled to every actor."""

    pipeline: PipelineRef
    init_params: tuple[tuple[str, Any], ...] = ()
    predict_params: tuple[tuple[str, Any], ...] = ()
    device: str = "cpu"
    cpu_threads: int | None = None
    # A parsed PaddleX pipeline YAML: sent as data, since workers may not see the file.
    paddlex_config: dict | None = field(default=None, compare=False)
    max_image_pixels: int | None = DEFAULT_MAX_IMAGE_PIXELS
    pdf_password: str | None = None
    seed_models: bool = True
    save: tuple[str, ...] = ()  # beyond JSON: "markdown", "img"

    def constructor_kwargs(self) -> dict[str, Any]:
        from ray_ocr.models.paddle_compat import cpu_pipeline_overrides

        kwargs = dict(self.init_params)
        kwargs.setdefault("device", self.device)
        if self.cpu_threads is not None:
            kwargs.setdefault("cpu_threads", self.cpu_threads)
        if self.paddlex_config is not None:
            kwargs["paddlex_config"] = self.paddlex_config
        if self.pipeline.is_paddleocr and str(kwargs["device"]).startswith("cpu"):
            kwargs.update(cpu_pipeline_overrides(kwargs))
        return kwargs


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)


def build_pipeline(spec: RunnerSpec):
    """Instantiate the pipeline class; model problems become one readable error."""
    from ray_ocr.models.model_cache import naming_missing_models, seed_bundled_models

    # Offline the hoster connectivity check only costs time before the same failure.
    os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
    if spec.seed_models:
        seed_bundled_models()
    cls = spec.pipeline.load()
    with naming_missing_models(spec.pipeline.display_name):
        try:
            return cls(**spec.constructor_kwargs())
        except Exception as exc:
            cause = exc
            while cause is not None and not isinstance(cause, ModelUnavailableError):
                cause = cause.__cause__ or cause.__context__
            if cause is not None:  # PaddleOCR may wrap it; surface ours
                raise cause from None
            raise


def _freeze_long_lived_objects() -> None:
    """Move the pipeline's objects (some 300,000 for PP-OCRv5) out of the garbage
    collector's sight: each full collection walked all of them, 0.2 s every time,
    which cost 10-20% of the OCR pipeline's time per page on CPU. Garbage made later
    is still collected; what is frozen now lives as long as the pipeline anyway."""
    gc.collect()
    gc.freeze()


class PipelineRunner:
    """Builds one pipeline and processes batches of InputItems into FileResults."""

    def __init__(self, spec: RunnerSpec):
        self.spec = spec
        self.pipeline = build_pipeline(spec)
        self._predict_kwargs = dict(spec.predict_params)
        self._scratch = tempfile.mkdtemp(prefix="ray_ocr_json_")
        self._batches = 0
        _freeze_long_lived_objects()

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)
        close = getattr(self.pipeline, "close", None)
        if callable(close):
            close()

    def process_batch(self, items: list[InputItem]) -> list[FileResult]:
        results = [self.process_file(item) for item in items]
        self._batches += 1
        if self._batches == 1:
            _freeze_long_lived_objects()  # what the first prediction built lazily
        else:
            gc.collect()  # Paddle pipelines grow on long runs; collect between batches.
        return results

    def process_file(self, item: InputItem) -> FileResult:
        started = time.perf_counter()
        if item.uri_root is not None:
            try:
                item = dataclasses.replace(item, data=read_uri_item(item.uri_root, item.key))
            except Exception as exc:  # noqa: BLE001 - missing object, permissions, network
                return self._failed(item, "read", type(exc).__name__, _one_line(exc), started)
        warnings: list[str] = []
        pages: list[PageOutput] = []
        page_count: int | None = None
        kind = sniff_kind(item.data)
        load_stage = "render" if kind == "pdf" else "decode"
        stage = load_stage
        try:
            page_iter = self._pages(item, kind, warnings)
            while True:
                stage = load_stage
                try:
                    page_index, page_count, image = next(page_iter)
                except StopIteration:
                    break
                stage = "predict"
                pages.extend(self._predict(image, item.source_path, page_index))
        except DocumentError as exc:
            return self._failed(item, exc.stage, "DocumentError", str(exc), started)
        except Exception as exc:  # a pipeline bug on one file must not sink the batch
            logger.debug("failure on %s", item.key, exc_info=True)
            return self._failed(item, stage, type(exc).__name__, _one_line(exc), started)
        return FileResult(
            key=item.key,
            pages=tuple(pages),
            warnings=tuple(warnings),
            page_count=page_count,
            seconds=time.perf_counter() - started,
            subset=item.pages,
        )

    def _failed(self, item: InputItem, stage: str, kind: str, message: str, started: float) -> FileResult:
        failure = Failure(key=item.key, stage=stage, error_type=kind, message=message)
        return FileResult(key=item.key, failure=failure, seconds=time.perf_counter() - started,
                          subset=item.pages)

    def _pages(
        self, item: InputItem, kind: str, warnings: list[str]
    ) -> Iterator[tuple[int | None, int | None, Any]]:
        limit = self.spec.max_image_pixels
        if kind == "empty":
            raise DocumentError("read", "empty file")
        if kind == "pdf":
            yield from iter_pdf_pages(item.data, item.pages, self.spec.pdf_password, limit)
        elif kind == "tiff":
            yield from iter_tiff_pages(item.data, limit)
        else:
            note = truncation_warning(item.data)
            if note:
                warnings.append(note)
            yield None, None, decode_image(item.data, limit)

    def _predict(self, image, source_path: str, page_index: int | None) -> list[PageOutput]:
        outputs = []
        for result in self.pipeline.predict(image, **self._predict_kwargs):
            # The pipeline saw an array; restore what a call on the file would record.
            result["input_path"] = source_path
            result["page_index"] = page_index
            outputs.append(PageOutput(page_index, self._json_text(result), self._extra_files(result)))
        return outputs

    _SAVERS = {"markdown": "save_to_markdown", "img": "save_to_img"}

    def _extra_files(self, result) -> tuple[tuple[str, bytes], ...]:
        """What the result's own savers write, collected from a scratch folder."""
        files = []
        for kind in self.spec.save:
            saver = getattr(result, self._SAVERS[kind], None)
            if saver is None:
                raise ValueError(f"{type(result).__name__} has no {self._SAVERS[kind]} (--save {kind})")
            folder = Path(tempfile.mkdtemp(dir=self._scratch))
            try:
                saver(str(folder))
                for path in sorted(folder.rglob("*")):
                    if path.is_file():
                        files.append((path.relative_to(folder).as_posix(), path.read_bytes()))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        return tuple(files)

    def _json_text(self, result) -> str:
        """Exactly the text ``result.save_to_json(path)`` writes."""
        if not hasattr(result, "save_to_json"):
            return json.dumps(dict(result), indent=4, ensure_ascii=False)
        path = os.path.join(self._scratch, "result.json")
        result.save_to_json(path)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        os.unlink(path)
        return text
