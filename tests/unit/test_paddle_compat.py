import logging
from importlib import metadata

from ray_ocr.models import paddle_compat
from tests.helpers import pinned_version, project_extra


def test_onednn_safety_by_version():
    assert paddle_compat.onednn_is_safe("3.2.2")
    assert not paddle_compat.onednn_is_safe("3.3.0")
    assert not paddle_compat.onednn_is_safe("3.3.1")
    assert paddle_compat.onednn_is_safe("3.4.0")


def test_falls_back_with_one_warning_on_a_crashing_paddle(monkeypatch, caplog):
    monkeypatch.setattr(paddle_compat, "installed_paddle_version", lambda: "3.3.1")
    with caplog.at_level(logging.WARNING):
        assert paddle_compat.cpu_pipeline_overrides({}) == {"enable_mkldnn": False}
    assert len(caplog.records) == 1 and "3.3.1" in caplog.records[0].getMessage()
    assert paddle_compat.cpu_pipeline_overrides({"enable_mkldnn": True}) == {}


def test_the_cpu_extra_pins_a_paddle_that_keeps_onednn(monkeypatch, caplog):
    """pyproject's cpu extra pins a Paddle with which the pipelines keep oneDNN on."""
    pinned = pinned_version(project_extra("cpu"), "paddlepaddle")
    monkeypatch.setattr(paddle_compat, "installed_paddle_version", lambda: pinned)
    with caplog.at_level(logging.WARNING):
        assert paddle_compat.cpu_pipeline_overrides({}) == {}
    assert caplog.records == []


def test_the_installed_version_is_read_from_either_paddle_wheel(monkeypatch):
    installed = {}

    def version(dist):
        if dist not in installed:
            raise metadata.PackageNotFoundError(dist)
        return installed[dist]

    monkeypatch.setattr(metadata, "version", version)
    assert paddle_compat.installed_paddle_version() is None
    installed["paddlepaddle-gpu"] = "3.3.0"
    assert paddle_compat.installed_paddle_version() == "3.3.0"
    installed["paddlepaddle"] = "3.2.2"
    assert paddle_compat.installed_paddle_version() == "3.2.2"
