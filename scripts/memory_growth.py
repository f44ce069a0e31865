"""Actor memory on a long run, with and without recycling.

Runs the real OCR pipeline (offline mobile models) over N real inputs twice in one
invocation: once with actors kept for the whole run, once with --max_tasks_per_actor,
and prints each actor's resident memory (RSS, reported by the actor after every batch)
at the start and the end of the run, as a table and as JSON.

    python scripts/memory_growth.py --inputs 300 --max_tasks_per_actor 50
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DOCS = REPO.parent / "shared" / "realdocs" / "paddleocr"
# Small and medium real pictures: enough variety for Paddle's shape caches to grow.
PICTURES = ["general_ocr_002.jpg", "11.jpg", "table.jpg", "textline.png", "word_ch_1.jpg",
            "word_en_10.png", "formula.png", "medal_table.png", "android_det_90.jpg", "sample_img.jpg"]
OFFLINE_PARAMS = REPO / "samples" / "ocr_mobile_offline.yaml"  # the quickstart's models


def make_inputs(docs: Path, count: int, folder: Path) -> None:
    pictures = [docs / name for name in PICTURES if (docs / name).exists()] or sorted(docs.glob("*.*"))
    if not pictures:
        sys.exit(f"no pictures in {docs}")
    folder.mkdir(parents=True)
    for i in range(count):
        src = pictures[i % len(pictures)]
        shutil.copy(src, folder / f"{i:05d}_{src.name}")


def rss_profile(summary) -> dict:
    """Per actor: RSS after its first and its last batch, and the peak (MB)."""
    per_actor: dict[str, list[float]] = {}
    for event in summary.timeline:
        per_actor.setdefault(event["actor"], []).append(event["rss_mb"])
    return {
        name: {"first_mb": values[0], "last_mb": values[-1], "peak_mb": max(values), "batches": len(values)}
        for name, values in per_actor.items()
    }


def run_variant(inputs: Path, out: Path, args, max_tasks: int) -> dict:
    import ray_ocr

    summary = ray_ocr.run_batch(
        "OCR", str(inputs), str(out), device="cpu", instances_per_device=args.instances,
        batch_size=args.batch_size, pipeline_params=yaml.safe_load(OFFLINE_PARAMS.read_text()),
        max_tasks_per_actor=max_tasks, overwrite=True, progress_interval=-1,
    )
    return {
        "max_tasks_per_actor": max_tasks,
        "files": summary.succeeded,
        "failed": summary.failed,
        "seconds": round(summary.seconds, 1),
        "recycled": summary.recycled,
        "actors": rss_profile(summary),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=300)
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--max_tasks_per_actor", type=int, default=50)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ray_ocr_memory_"))
    try:
        make_inputs(args.docs, args.inputs, work / "in")
        results = [
            run_variant(work / "in", work / "out_keep", args, 0),
            run_variant(work / "in", work / "out_recycle", args, args.max_tasks_per_actor),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{'variant':<28}{'files':>7}{'s':>8}{'recycled':>10}  actor RSS MB: first -> last (peak)")
    for r in results:
        label = "keep actors" if not r["max_tasks_per_actor"] else f"recycle every {r['max_tasks_per_actor']} tasks"
        rss = "; ".join(f"{a['first_mb']:.0f} -> {a['last_mb']:.0f} ({a['peak_mb']:.0f})" for a in r["actors"].values())
        print(f"{label:<28}{r['files']:>7}{r['seconds']:>8}{r['recycled']:>10}  {rss}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
