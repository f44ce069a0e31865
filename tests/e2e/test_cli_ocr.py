"""The OCR pipeline end to end through the CLI, on real documents, offline.

Thresholds: similarity (difflib ratio, white space removed) with the texts printed in
the source repositories. Those were made with PaddleOCR's default server models; ours
are the mobile models, measured here at 0.92 (general_ocr_002), 0.99 (label images),
0.998 (img_12) and >= 0.99 per page for the born-digital PDFs. Thresholds sit a few
points below.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import EXPECTED, MOBILE_OCR_PARAMS, cli_params, copy_docs
from tests.reportpage import Page, chromium, need_chromium
from tests.textmatch import rec_text, similarity, textlayer_pages

pytestmark = pytest.mark.e2e

IMAGES = ["general_ocr_002.jpg", "11.jpg", "tipc_web_test.jpg", "img_12.jpg", "textline.png",
          "word_ch_1.jpg", "table.jpg", "formula.png", "seal.png"]
PDFS = ["pdflatex-outline.pdf", "sample_pdf.pdf"]


def run_cli(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "ray_ocr.run", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def ocr_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ocr")
    inputs = copy_docs(root / "in", IMAGES + PDFS)
    out = root / "out"
    args = ["--pipeline", "OCR", "--input_dir", str(inputs), "--output_dir", str(out), "--device", "cpu",
            "--instances_per_device", "2", "--batch_size", "2", *cli_params(MOBILE_OCR_PARAMS),
            # Each 4-page PDF runs as two 2-page tasks: the JSON comparisons below then
            # show that split processing writes what PaddleOCR writes for the whole file.
            "--pages_per_task", "2"]
    proc = run_cli(*args)
    return inputs, out, args, proc


def test_every_input_has_its_json(ocr_run):
    _, out, _, proc = ocr_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = {n.rsplit(".", 1)[0] + ".json" for n in IMAGES}
    expected |= {f"{pdf[:-4]}_{i}.json" for pdf in PDFS for i in range(4)}
    written = {p.name for p in out.glob("*.json")} - {"summary.json"}
    assert written == expected
    headline = proc.stdout.strip().splitlines()[0]
    assert headline.startswith(f"ray_ocr: {len(IMAGES) + len(PDFS)} files, {len(IMAGES) + 8} pages, 0 failures")
    assert "files/s" in headline
    summary = json.loads((out / "summary.json").read_text())
    assert summary["succeeded"] == len(IMAGES) + len(PDFS) and summary["pages"] == len(IMAGES) + 8
    assert len(summary["actors"]) == 2
    assert sum(event["parts"] for event in summary["timeline"]) == 2 * len(PDFS)
    records = [json.loads(line) for line in (out / "ray_ocr_manifest.jsonl").read_text().splitlines()]
    for pdf in PDFS:
        [record] = [r for r in records if r["key"] == pdf]
        assert record["status"] == "done" and record["pages"] == 4
        assert sorted(record["outputs"]) == [f"{pdf[:-4]}_{i}.json" for i in range(4)]


def test_texts_match_the_expected(ocr_run):
    _, out, _, _ = ocr_run
    general = json.loads((EXPECTED / "general_ocr_002.jpg.expected.json").read_text())
    assert similarity("".join(general["paddleocr_3x"]["rec_texts"]), rec_text(out / "general_ocr_002.json")) >= 0.85
    label = "".join(json.loads((EXPECTED / "tipc_web_test.jpg.expect.json").read_text())["text"])
    assert similarity(label, rec_text(out / "tipc_web_test.json")) >= 0.95
    assert similarity(label, rec_text(out / "11.json")) >= 0.95
    lines = [l.rsplit(",", 1)[0] for l in (EXPECTED / "img_12.jpg.expected.txt").read_text().splitlines()]
    assert similarity("".join(lines), rec_text(out / "img_12.json")) >= 0.95
    docs = json.loads((EXPECTED / "paddleocr_docs_outputs.json").read_text())
    assert rec_text(out / "textline.json") == docs["textline.png"]["rec_text"]
    assert rec_text(out / "word_ch_1.json") == "韩国小馆"
    assert "发票专用章" in rec_text(out / "seal.json")
    for pdf in PDFS:
        pages = textlayer_pages(EXPECTED / f"{pdf}.textlayer.txt")
        for index, text in pages.items():
            data = json.loads((out / f"{pdf[:-4]}_{index}.json").read_text())
            assert data["page_index"] == index
            assert similarity(text, "".join(data["rec_texts"])) >= 0.95, (pdf, index)


def test_json_equals_a_direct_paddleocr_call(ocr_run, tmp_path):
    """Key by key, what PaddleOCR's own save_to_json writes for the same file."""
    from paddleocr import PaddleOCR

    inputs, out, _, _ = ocr_run
    ocr = PaddleOCR(device="cpu", cpu_threads=2, **MOBILE_OCR_PARAMS)
    for name in ["tipc_web_test.jpg", "textline.png", "img_12.jpg", "pdflatex-outline.pdf"]:
        path = str(inputs / name)
        for result in ocr.predict(path):
            direct_file = tmp_path / "direct.json"
            result.save_to_json(str(direct_file))
            direct = json.loads(direct_file.read_text())
            page = result["page_index"]
            ours_name = name.rsplit(".", 1)[0] + (f"_{page}" if page is not None else "") + ".json"
            ours = json.loads((out / ours_name).read_text())
            assert list(ours) == list(direct), name
            for key in direct:
                assert ours[key] == direct[key], (name, page, key)
            assert direct_file.read_text() == (out / ours_name).read_text()


def test_rerun_skips_finished_inputs(ocr_run):
    """A rerun redoes only the PDF that lost a page's JSON; nothing else is rewritten."""
    _, out, args, _ = ocr_run
    os.remove(out / "sample_pdf_2.json")
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*.json") if p.name != "summary.json"}
    proc = run_cli(*args)
    assert proc.returncode == 0 and f"{len(IMAGES) + len(PDFS) - 1} skipped" in proc.stdout, proc.stdout
    assert (out / "sample_pdf_2.json").exists()
    kept = {p: m for p, m in mtimes.items() if not p.name.startswith("sample_pdf_")}
    assert len(kept) == len(IMAGES) + 4
    assert {p: p.stat().st_mtime_ns for p in kept} == kept


def test_report_of_the_real_run_renders_its_numbers(ocr_run, tmp_path):
    """report.html from this run, in headless Chromium, shows summary.json's numbers."""
    need_chromium()
    _, out, _, _ = ocr_run
    summary = json.loads((out / "summary.json").read_text())
    page = Page(chromium(tmp_path, "--dump-dom", f"file://{out / 'report.html'}").stdout.decode())
    assert page.by_id["stat-inputs"] == str(summary["inputs"])
    assert page.by_id["stat-pages"] == str(summary["pages"])
    assert page.by_id["stat-failed"] == "0"
    cells = [cell for row in page.tables["actors"] for cell in row]
    for name in summary["actors"]:
        assert name in cells
    # The chart: one line per actor, each actor's batches on it.
    charted = {line["data-actor"]: len(line["points"].split()) for line in page.polylines}
    assert set(charted) == set(summary["actors"]) | {event["actor"] for event in summary["timeline"]}
    for name, points in charted.items():  # origin, one point per batch, flat to the end
        assert points == 2 + sum(1 for event in summary["timeline"] if event["actor"] == name), name
