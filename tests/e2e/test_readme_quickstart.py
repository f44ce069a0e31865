"""The README's quickstart job, exactly as written there (after its install step), on the
bundled sample documents: every sample gets its JSON, offline."""

import json
import re
import shlex
import subprocess
import sys

from tests.conftest import REPO


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
