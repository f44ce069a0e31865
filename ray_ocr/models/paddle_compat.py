"""Known-bad Paddle versions, detected instead of crashed into."""

from __future__ import annotations

import logging
from importlib import metadata

logger = logging.getLogger(__name__)

# paddlepaddle 3.3.x on CPU with oneDNN (MKLDNN) aborts in the first predict:
# "ConvertPirAttribute2RuntimeAttribute not support". 3.2.2 runs with it on.
_ONEDNN_BROKEN = ((3, 3),)


def installed_paddle_version() -> str | None:
    for dist in ("paddlepaddle", "paddlepaddle-gpu"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _major_minor(version: str) -> tuple[int, int]:
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


def onednn_is_safe(version: str | None = None) -> bool:
    version = version if version is not None else installed_paddle_version()
    return version is None or _major_minor(version) not in _ONEDNN_BROKEN


def cpu_pipeline_overrides(user_params: dict) -> dict:
    """Constructor arguments that keep a CPU pipeline from crashing.

    Returns ``{"enable_mkldnn": False}`` with one warning when the installed Paddle
    crashes with oneDNN, unless the user chose ``enable_mkldnn`` themselves.
    """
    if "enable_mkldnn" in user_params or onednn_is_safe():
        return {}
    logger.warning(
        "paddlepaddle %s crashes on CPU with oneDNN; running with oneDNN off (about 5x slower). "
        "Install paddlepaddle==3.2.2 for full speed.",
        installed_paddle_version(),
    )
    return {"enable_mkldnn": False}
