"""``python -m ray_ocr.serve``: see ray_ocr/serve/cli.py."""

import sys

from ray_ocr.serve.cli import main

sys.exit(main())
