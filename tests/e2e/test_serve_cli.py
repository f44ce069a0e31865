"""``python -m ray_ocr.serve`` as a user runs it: its own embedded Ray, one OCR replica,
stopped by SIGTERM (as docker, systemd and Kubernetes stop a service) while a request is
in flight. /health answers from the start line on; the request is answered, the command
exits 0 with its own lines (not Ray's abort handler, nor its notices about calls to a
Serve it stopped), and every process it started is gone."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
import requests

from tests.conftest import REALDOCS, REPO
from tests.helpers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

IMAGE = REALDOCS / "paddleocr" / "11.jpg"  # a few seconds of OCR on one CPU


def _wait_for_line(proc, lines: list[str], marker: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(marker in line for line in lines):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"no {marker!r} line within {timeout} s; output:\n" + "".join(lines)[-3000:])


def _read_into(stream, lines: list[str]) -> None:
    for line in iter(stream.readline, ""):
        lines.append(line)


def test_sigterm_answers_the_request_in_flight_then_exits_0(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ray_ocr.serve", "--pipeline", "OCR", "--device", "cpu", "--params_file",
         "samples/ocr_mobile_offline.yaml", "--max_replicas", "1", "--port", str(port)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=_read_into, args=(proc.stdout, lines), daemon=True).start()
    try:
        _wait_for_line(proc, lines, "/health answers meanwhile", timeout=120)
        starting = requests.get(f"http://127.0.0.1:{port}/health", timeout=10)  # routed: PaddleX's 503
        _wait_for_line(proc, lines, f"at http://127.0.0.1:{port}/ocr", timeout=240)
        started_by_it = psutil.Process(proc.pid).children(recursive=True)  # its Ray, Serve, replica
        answer: dict = {}
        body = {"file": base64.b64encode(IMAGE.read_bytes()).decode("ascii"), "fileType": 1}

        def post():
            answer["response"] = requests.post(f"http://127.0.0.1:{port}/ocr", json=body, timeout=180)

        client = threading.Thread(target=post)
        client.start()
        time.sleep(1.0)  # the request is in the replica now (a few seconds of OCR)
        proc.send_signal(signal.SIGTERM)
        client.join(timeout=180)
        assert proc.wait(timeout=120) == 0, "".join(lines)[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    output = "".join(lines)
    response = answer["response"]
    assert response.status_code == 200, response.text[:500]
    texts = response.json()["result"]["ocrResults"][0]["prunedResult"]["rec_texts"]
    assert any("纯臻营养护发素" in text for text in texts), texts
    assert "requests in flight are answered first" in output and "ray_ocr.serve: stopping" in output
    assert "SIGTERM received" not in output and "Traceback" not in output
    assert "Task ServeController" not in output  # Ray's lines about calls to a controller it killed
    assert starting.status_code in (200, 503) and "errorCode" in starting.json(), starting.text[:300]
    _, alive = psutil.wait_procs(started_by_it, timeout=30)
    assert not alive, [(p.pid, p.name()) for p in alive]
