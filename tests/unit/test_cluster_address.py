"""An --address nothing listens on is a usage error at once (batch and serving alike)."""

import os
import socket
import sys

import pytest

from ray_ocr.engine.cluster import check_reachable
from ray_ocr.errors import UsageError


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("form", ["127.0.0.1:{}", "ray://127.0.0.1:{}"])
def test_an_address_nothing_listens_on_is_a_usage_error(form):
    address = form.format(_closed_port())
    with pytest.raises(UsageError, match=f"--address {address}: cannot connect"):
        check_reachable(address, timeout=2)


def test_a_listening_address_and_auto_pass():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        check_reachable(f"127.0.0.1:{port}")
        check_reachable(f"ray://127.0.0.1:{port}")
    check_reachable("auto")


def test_a_token_found_turns_token_auth_on_and_the_setup_error_says_so(tmp_path, monkeypatch):
    """A token left by an earlier cluster: the driver uses token auth (never turning it
    off itself), and when every actor dies the error names that and the way out."""
    from ray_ocr.engine import cluster

    monkeypatch.setattr(cluster, "_TOKEN_MODE_CHOSEN_HERE", False)
    monkeypatch.delitem(sys.modules, "ray", raising=False)  # an imported Ray's config is not refreshed
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):  # set first, so that undoing restores them as they were
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "none"))
    cluster.prepare_client_auth()
    assert "RAY_AUTH_MODE" not in os.environ and cluster.auth_hint() == ""  # no token: nothing chosen
    (tmp_path / "token").write_text("secret")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    cluster.prepare_client_auth()
    assert os.environ["RAY_AUTH_MODE"] == "token"
    assert "RAY_AUTH_MODE=disabled" in cluster.auth_hint()
    monkeypatch.setattr(cluster, "_TOKEN_MODE_CHOSEN_HERE", False)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # the user's own choice: left alone, no hint
    cluster.prepare_client_auth()
    assert cluster.auth_hint() == ""
