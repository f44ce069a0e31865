"""Importing ray_ocr stays light: no Paddle, PaddleOCR, PaddleX, Ray, OpenCV or NumPy
(ray_ocr.serve's CLI and plan too: only serve/app.py imports Ray Serve)."""

import subprocess
import sys


def test_import_ray_ocr_loads_no_heavy_modules():
    code = (
        "import sys, ray_ocr, ray_ocr.run, ray_ocr.cli, ray_ocr.config, ray_ocr.records, "
        "ray_ocr.pipelines, ray_ocr.models.runner, ray_ocr.engine.placement, ray_ocr.io.outputs, "
        "ray_ocr.serve, ray_ocr.serve.cli, ray_ocr.serve.plan, ray_ocr.serve.replica\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'paddle', 'paddleocr', 'paddlex', 'ray', 'cv2', 'numpy'})\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
