"""Progress output: plain lines in logs (not a terminal), a tqdm bar on a terminal.
About the engine's reporting, so the scheduling stand-in pipeline runs the files."""

import fcntl
import os
import pty
import re
import struct
import termios
import subprocess
import sys

import pytest

from tests.conftest import STANDIN
from tests.helpers import make_images

pytestmark = pytest.mark.e2e


def test_plain_progress_lines_when_not_a_terminal(tmp_path):
    inputs = make_images(tmp_path / "in", 6)
    proc = subprocess.run(
        [sys.executable, "-m", "ray_ocr.run", "--pipeline", STANDIN, "--input_dir", str(inputs),
         "--output_dir", str(tmp_path / "out"), "--device", "cpu", "--param", "sleep_seconds=0.4",
         "--progress_interval", "0.5"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [l for l in proc.stderr.splitlines() if "progress:" in l]
    assert lines, proc.stderr
    assert all("/6 files" in l and "files/s" in l and "ETA" in l and "failed" in l for l in lines)
    # The run's own log lines reach the log beside the progress lines.
    assert re.search(r"^ray_ocr: starting 1 \S+ actor\(s\) on 1 node\(s\)$", proc.stderr, re.M), proc.stderr


def test_a_bar_on_a_terminal(tmp_path):
    inputs = make_images(tmp_path / "in", 4)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI with a terminal as stdout and stderr
        os.execv(sys.executable, [sys.executable, "-m", "ray_ocr.run", "--pipeline", STANDIN,
                                  "--input_dir", str(inputs), "--output_dir", str(tmp_path / "out"),
                                  "--device", "cpu", "--param", "sleep_seconds=0.3"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a real terminal's size
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text[-2000:]
    assert "ray_ocr:" in text and "4/4" in text and "page/s" in text and "files=4/4" in text  # tqdm's bar
    assert "progress:" not in text


def test_rerun_skips_and_overwrite_redoes(tmp_path):
    """Resume bookkeeping end to end (the engine's part, so the stand-in runs the files)."""
    inputs = make_images(tmp_path / "in", 3)
    base = [sys.executable, "-m", "ray_ocr.run", "--pipeline", STANDIN, "--input_dir", str(inputs),
            "--output_dir", str(tmp_path / "out"), "--device", "cpu"]
    first = subprocess.run(base, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0 and "0 skipped" in first.stdout
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("img_*.json")}
    again = subprocess.run(base, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "3 skipped" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    redo = subprocess.run(base + ["--overwrite"], capture_output=True, text=True, timeout=300)
    assert redo.returncode == 0 and "0 skipped" in redo.stdout and "3 files, 3 pages" in redo.stdout
    assert all(p.stat().st_mtime_ns != t for p, t in mtimes.items())
