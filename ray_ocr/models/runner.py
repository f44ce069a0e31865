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
from ray_ocr.errors import ModelUnavailableError, UsageError, first_line
from ray_ocr.io.outputs import WRITE_THREADS, write_result
from ray_ocr.io.storage import open_folder, read_item
from ray_ocr.models.markdown import name_images_by_content, page_piece
from ray_ocr.models.missing import constructor_param_tree, naming_missing_models
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
    save: tuple[str, ...] = ()  # beyond JSON: "markdown", "img", "page"
    query: str | None = None  # DocUnderstanding: predict({"image": page, "query": query})
    # Set when the actors write the outputs (a folder every node can write): the runner
    # writes each result there and returns a receipt instead of the JSON.
    output_uri: str | None = None

    @classmethod
    def from_options(cls, options) -> "RunnerSpec":
        """The spec for a config of ray_ocr/config.py (its --pipeline_config read once).
        A ServeConfig has no predict or output options: PaddleX's app takes them per request."""
        return cls(
            pipeline=options.pipeline,
            init_params=options.pipeline_params,
            predict_params=getattr(options, "predict_params", ()),
            paddlex_config=_load_pipeline_config(options.pipeline_config),
            max_image_pixels=options.max_image_pixels or DEFAULT_MAX_IMAGE_PIXELS,
            pdf_password=getattr(options, "pdf_password", None),
            save=getattr(options, "save", ()),
            query=getattr(options, "query", None),
        )

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


def _load_pipeline_config(path: str | None) -> dict | None:
    if path is None:
        return None
    import yaml

    with open(path, encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    if not isinstance(loaded, dict):
        raise UsageError(f"--pipeline_config {path}: not a PaddleX pipeline YAML mapping")
    return loaded


def build_pipeline(spec: RunnerSpec):
    """Instantiate the pipeline class; model problems become one readable error."""
    from ray_ocr.models.model_cache import seed_bundled_models

    # Offline the hoster connectivity check only costs time before the same failure.
    os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
    seed_bundled_models()
    cls = spec.pipeline.load()
    with naming_missing_models(spec.pipeline.display_name, constructor_param_tree(cls), spec.paddlex_config):
        try:
            return cls(**spec.constructor_kwargs())
        except Exception as exc:
            cause = exc
            while cause is not None and not isinstance(cause, ModelUnavailableError):
                cause = cause.__cause__ or cause.__context__
            if cause is not None:  # PaddleOCR may wrap it; surface ours
                raise cause from None
            raise


def build_config(spec: RunnerSpec) -> dict | None:
    """The PaddleX config `spec`'s pipeline is built from, computed without building it:
    by PaddleOCR's own constructor (models by language and version, the use_* flags,
    the user's --pipeline_config), with the one step that loads models left out. For a
    class that is not a PaddleOCR pipeline, or a constructor that fails (the actors
    will report why), the user's --pipeline_config, if any."""
    import warnings

    kwargs = dict(spec.init_params)  # (not the device: the models do not depend on it)
    if spec.paddlex_config is not None:
        kwargs["paddlex_config"] = spec.paddlex_config
    try:
        cls = spec.pipeline.load()
        if not hasattr(cls, "_create_paddlex_pipeline"):
            return spec.paddlex_config

        class ConfigOnly(cls):
            def _create_paddlex_pipeline(self):
                return None

        with warnings.catch_warnings():  # the actors' builds say it, once each
            warnings.simplefilter("ignore")
            return ConfigOnly(**kwargs)._merged_paddlex_config
    except Exception as exc:  # noqa: BLE001 - building it in the actors says what is wrong
        logger.debug("no PaddleX config for %s: %s", spec.pipeline.display_name, first_line(exc))
        return spec.paddlex_config


def _save_offline(saver, folder: str, kind: str) -> None:
    """Run a result's saver; a font PaddleX could not fetch fails with the fix."""
    try:
        saver(folder)
    except Exception as exc:
        if "fonts/" not in str(exc) and "font" not in type(exc).__name__.lower():
            raise
        raise RuntimeError(f"--save {kind} needs a font PaddleX downloads at run time ({first_line(exc)}); "
                           "install ray-ocr[models], which brings one, or point PADDLE_PDX_LOCAL_FONT_FILE_PATH "
                           "at a .ttf/.otf file on every node") from None


def preprocessed_page(result) -> tuple[str, bytes]:
    """``--save page``: (``<stem>_page.png``, its PNG) of the page as the pipeline's
    document preprocessing left it (turned upright, unwarped; the page as read when that
    is off): DocPreprocessor's ``output_img``, or ``doc_preprocessor_res``'s in the
    pipelines that run it first. PaddleX's ``save_to_img`` draws it only beside the
    original, captioned; lossless, as it is what OCR read."""
    import cv2

    page = result.get("output_img")
    if page is None:
        page = (result.get("doc_preprocessor_res") or {}).get("output_img")
    if page is None:
        raise ValueError(f"{type(result).__name__} has no preprocessed page (--save page)")
    ok, png = cv2.imencode(".png", page)  # PaddleX keeps pages in BGR, as OpenCV writes them
    if not ok:
        raise ValueError("could not encode the preprocessed page as PNG (--save page)")
    return f"{Path(str(result['input_path'])).stem}_page.png", png.tobytes()


def freeze_long_lived_objects() -> None:
    """Move the objects made so far out of the garbage collector's sight: each full
    collection walked all of them. In an actor, the pipeline's (some 300,000 for
    PP-OCRv5; 0.2 s a collection, 10-20% of the OCR pipeline's time per page on CPU);
    in the driver, Ray's and its modules' (50 ms a collection; over a tenth of the
    driver's CPU per input on runs of tiny files). Garbage made later is still
    collected; what is frozen now lives as long as the process (or the run) anyway."""
    gc.collect()
    gc.freeze()


class PipelineRunner:
    """Builds one pipeline and processes batches of InputItems into FileResults."""

    def __init__(self, spec: RunnerSpec):
        self.spec = spec
        self.pipeline = build_pipeline(spec)
        self._predict_kwargs = dict(spec.predict_params)
        self._batches = 0
        self._outputs = None  # the output folder, when this runner writes its results
        self._write_threads = None
        freeze_long_lived_objects()

    def process_batch(self, items: list[InputItem]) -> list[FileResult]:
        if self.spec.output_uri is None:
            results = [self.process_file(item) for item in items]
        else:  # each result is written on threads while the next inputs are predicted
            results = [future.result() for future in
                       [self._writer().submit(self._written, item, self.process_file(item)) for item in items]]
        self._batches += 1
        if self._batches == 1:
            freeze_long_lived_objects()  # what the first prediction built lazily
        else:
            gc.collect()  # Paddle pipelines grow on long runs; collect between batches.
        return results

    def _writer(self):
        if self._write_threads is None:
            from concurrent.futures import ThreadPoolExecutor

            self._outputs = open_folder(self.spec.output_uri)
            self._write_threads = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="ray_ocr_write")
        return self._write_threads

    def _written(self, item: InputItem, result: FileResult) -> FileResult:
        """With an output folder of its own: write the result there (as the driver
        would), and return a receipt of what was written."""
        if item.output_base is None or not result.ok:
            return result
        result, outputs = write_result(self._outputs, result, item.output_base)
        pages = tuple(PageOutput(p.page_index, "", (), p.markdown) for p in result.pages)
        return dataclasses.replace(result, pages=pages, outputs=tuple(outputs)) if result.ok else result

    def process_file(self, item: InputItem) -> FileResult:
        started = time.perf_counter()
        if item.read_root is not None:
            try:
                item = dataclasses.replace(item, data=read_item(item.read_root, item.key))
            except Exception as exc:  # noqa: BLE001 - missing object, permissions, network
                return self._failed(item, "read", type(exc).__name__, first_line(exc), started)
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
                pages.extend(self._predict(image, item.source_path, page_index, page_count))
        except DocumentError as exc:
            return self._failed(item, exc.stage, "DocumentError", str(exc), started)
        except Exception as exc:  # a pipeline bug on one file must not sink the batch
            logger.debug("failure on %s", item.key, exc_info=True)
            return self._failed(item, stage, type(exc).__name__, first_line(exc), started)
        return FileResult(
            key=item.key,
            pages=tuple(pages),
            warnings=tuple(warnings),
            page_count=page_count,
            seconds=time.perf_counter() - started,
            page_range=item.page_range,
        )

    def _failed(self, item: InputItem, stage: str, kind: str, message: str, started: float) -> FileResult:
        failure = Failure(key=item.key, stage=stage, error_type=kind, message=message)
        return FileResult(key=item.key, failure=failure, seconds=time.perf_counter() - started,
                          page_range=item.page_range)

    def _pages(
        self, item: InputItem, kind: str, warnings: list[str]
    ) -> Iterator[tuple[int | None, int | None, Any]]:
        limit = self.spec.max_image_pixels
        if kind == "empty":
            raise DocumentError("read", "empty file")
        if kind == "pdf":
            yield from iter_pdf_pages(item.data, item.page_range, self.spec.pdf_password, limit, warnings)
        elif kind == "tiff":
            yield from iter_tiff_pages(item.data, limit)
        else:
            note = truncation_warning(item.data)
            if note:
                warnings.append(note)
            yield None, None, decode_image(item.data, limit)

    def _predict(self, image, source_path: str, page_index: int | None, page_count: int | None) -> list[PageOutput]:
        outputs = []
        given = image if self.spec.query is None else {"image": image, "query": self.spec.query}
        # Some models load at their first use (the table orientation model, the table's
        # own OCR at the first table): one missing fails the file with a line naming it.
        # No parameter tree: a sub-pipeline built then has paths rooted at itself.
        # list(): a custom pipeline's predict may be a generator (PaddleOCR's returns a list).
        with naming_missing_models(self.spec.pipeline.display_name):
            results = list(self.pipeline.predict(given, **self._predict_kwargs))
        for result in results:
            # The pipeline saw an array; restore what a call on the file would record.
            result["input_path"] = source_path
            result["page_index"] = page_index
            if "page_count" in result:
                result["page_count"] = page_count  # PPStructureV3 records the document's
            if self.spec.query is not None and result.get("image") is image:
                result["image"] = source_path  # a query result echoes its input
            extras, markdown = self._extra_files(result)
            outputs.append(PageOutput(page_index, self._json_text(result), extras, markdown))
        return outputs

    _SAVERS = {"markdown": "save_to_markdown", "img": "save_to_img"}

    def _extra_files(self, result) -> tuple[tuple[tuple[str, bytes], ...], dict | None]:
        """What the result's own savers write, collected from a scratch folder, and
        with --save markdown the page's piece of its document's markdown."""
        files, markdown = [], None
        for kind in self.spec.save:
            if kind == "page":
                files.append(preprocessed_page(result))
                continue
            saver = getattr(result, self._SAVERS[kind], None)
            if saver is None:
                raise ValueError(f"{type(result).__name__} has no {self._SAVERS[kind]} (--save {kind})")
            with tempfile.TemporaryDirectory(prefix="ray_ocr_save_") as scratch:
                _save_offline(saver, scratch, kind)
                if kind == "markdown":
                    name_images_by_content(Path(scratch))
                for path in sorted(Path(scratch).rglob("*")):
                    if path.is_file():
                        files.append((path.relative_to(scratch).as_posix(), path.read_bytes()))
                        if kind == "markdown" and path.suffix.lower() == ".md":
                            markdown = page_piece(result, path.read_text(encoding="utf-8"))
        return tuple(files), markdown

    def _json_text(self, result) -> str:
        """Exactly the text ``result.save_to_json(path)`` writes."""
        if not hasattr(result, "save_to_json"):
            return json.dumps(dict(result), indent=4, ensure_ascii=False)
        with tempfile.TemporaryDirectory(prefix="ray_ocr_json_") as scratch:
            path = os.path.join(scratch, "result.json")
            result.save_to_json(path)
            with open(path, encoding="utf-8") as handle:
                return handle.read()
