"""An --address nothing listens on is a usage error at once (batch and serving alike)."""

import socket

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
