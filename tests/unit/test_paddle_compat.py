import logging

from ray_ocr.models import paddle_compat


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


def test_installed_default_runs_with_onednn():
    """The CPU extra pins a Paddle that keeps oneDNN on."""
    assert paddle_compat.installed_paddle_version() is not None
    assert paddle_compat.cpu_pipeline_overrides({}) == {}
