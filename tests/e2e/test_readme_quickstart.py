"""The README's quickstart job, exactly as written there (after its install step), on the
bundled sample documents: every sample gets its JSON, offline."""

import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def quickstart_command() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    line = next(l for l in section.splitlines() if "python -m ray_ocr.run" in l)
    job = line[line.index("python -m ray_ocr.run"):]
    return shlex.split(job)


def test_quickstart_job_runs_on_the_samples(tmp_path):
    argv = quickstart_command()
    assert argv[:3] == ["python", "-m", "ray_ocr.run"]
    argv[argv.index("--output_dir") + 1] = str(tmp_path / "output")
    proc = subprocess.run([sys.executable, *argv[1:]], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    samples = sorted(p.name for p in (REPO / "samples" / "docs").iterdir())
    assert re.search(rf"ray_ocr: {len(samples)} files, 9 pages, 0 failures", proc.stdout)
    out = tmp_path / "output"
    assert {f"pdflatex-outline_{i}.json" for i in range(4)} <= {p.name for p in out.glob("*.json")}
    label = json.loads((out / "11.json").read_text())["rec_texts"]
    assert label[0] == "纯臻营养护发素"
    assert "--device" not in argv
    assert json.loads((out / "summary.json").read_text())["device"] == "cpu"  # what "auto" chose here
    mask = os.umask(0o022)
    os.umask(mask)
    assert {p.stat().st_mode & 0o777 for p in out.glob("*.json")} == {0o666 & ~mask}  # not mkstemp's 0600


def api_example() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_python_api_example_runs_as_written(tmp_path):
    (tmp_path / "samples").symlink_to(REPO / "samples")  # the example's paths are relative
    proc = subprocess.run([sys.executable, "-c", api_example()], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("ray_ocr: 6 files, 9 pages, 0 failures")
    assert json.loads((tmp_path / "out" / "11.json").read_text())["rec_texts"][0] == "纯臻营养护发素"
    predicted = sorted(line.replace(str(tmp_path) + "/", "") for line in lines[1:])  # paths are absolute
    assert len(predicted) == 5, proc.stdout
    assert predicted[0].startswith("samples/docs/11.jpg None ['纯臻营养护发素'")
    assert [line.split()[1] for line in predicted[1:]] == ["0", "1", "2", "3"]
    assert all(line.startswith("samples/docs/pdflatex-outline.pdf ") for line in predicted[1:])
