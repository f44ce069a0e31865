"""``python -m ray_ocr.run ...``: the command line (ray_ocr/cli.py).

The library function is ``ray_ocr.run_batch``: a function named ``ray_ocr.run`` would be
replaced by this module whenever something imports ``ray_ocr.run``.
"""

from ray_ocr.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
