"""``python -m ray_ocr.serve`` as a user runs it: its own embedded Ray, one OCR replica,
stopped by SIGTERM (as docker, systemd and Kubernetes stop a service) while a request is
in flight. /health answers from the start line on, and 503 "stopping" while the request in
flight is answered; the request is answered, the command
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

DOCUMENT = REALDOCS / "paddleocr" / "sample_pdf.pdf"  # 4 pages: several seconds of OCR on one CPU


def _wait_for_line(proc, lines: list[str], marker: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(marker in line for line in lines):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"no {marker!r} line within {timeout} s; output:\n" + "".join(lines)[-3000:])


def _health(port: int) -> tuple[int, str]:
    try:
        response = requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
        return response.status_code, response.json().get("errorMsg", "")
    except (requests.RequestException, ValueError) as exc:
        return 0, type(exc).__name__


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
    health: list[tuple[int, str]] = []
    threading.Thread(target=_read_into, args=(proc.stdout, lines), daemon=True).start()
    try:
        _wait_for_line(proc, lines, "/health answers meanwhile", timeout=120)
        starting = requests.get(f"http://127.0.0.1:{port}/health", timeout=10)  # routed: PaddleX's 503
        _wait_for_line(proc, lines, f"at http://127.0.0.1:{port}/ocr", timeout=240)
        started_by_it = psutil.Process(proc.pid).children(recursive=True)  # its Ray, Serve, replica
        answer: dict = {}
        body = {"file": base64.b64encode(DOCUMENT.read_bytes()).decode("ascii"), "fileType": 0}

        def post():
            answer["response"] = requests.post(f"http://127.0.0.1:{port}/ocr", json=body, timeout=180)

        client = threading.Thread(target=post)
        client.start()
        time.sleep(1.0)  # the request is in the replica now (several seconds of OCR)
        proc.send_signal(signal.SIGTERM)
        while client.is_alive():  # what a load balancer sees meanwhile
            health.append(_health(port))
            time.sleep(0.2)
        assert proc.wait(timeout=120) == 0, "".join(lines)[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    output = "".join(lines)
    response = answer["response"]
    assert response.status_code == 200, response.text[:500]
    pages = response.json()["result"]["ocrResults"]
    assert len(pages) == 4 and all(page["prunedResult"]["rec_texts"] for page in pages)
    # While it was answered, /health said 503 "stopping" (not 200, nor a bare 404).
    assert (503, "Not ready: stopping (answering the requests in flight)") in health, health
    assert "requests in flight are answered first" in output and "ray_ocr.serve: stopping" in output
    assert "SIGTERM received" not in output and "Traceback" not in output
    assert "Task ServeController" not in output  # Ray's lines about calls to a controller it killed
    assert starting.status_code in (200, 503) and "errorCode" in starting.json(), starting.text[:300]
    _, alive = psutil.wait_procs(started_by_it, timeout=30)
    assert not alive, [(p.pid, p.name()) for p in alive]
