"""ray_ocr against PaddleOCR's own ways of running a pipeline, on one input set.

N copies of real documents (../shared/realdocs, or --docs), the OCR pipeline (PP-OCRv5
mobile, offline), each variant in a fresh process timed from before it starts:
  direct        PaddleOCR(..., cpu_threads=<cores>) in one process, predict() per file.
  multiprocess  PaddleOCR's infer_mp.py: K spawned processes per device, each with its own
                pipeline (cpu_threads = cores / K), taking whole files, B at a time, from one queue.
  ray_ocr       ray_ocr.run_batch(..., instances_per_device=K, batch_size=B).
  multidevice   PaddleOCR(device="gpu:0,1,...") over the whole list (GPU only).
"1st result" and "steady" (pages/s from the first result to the last) come from the JSONs'
mtimes, the actors' busy ratios from ray_ocr's summary.json, memory and CPU from
scripts/_measure.py. Every run must write the same JSON names, one per page, or the exit
code is 1. --repeat interleaves the runs; the fastest of each variant counts.

    python scripts/bench.py --quick --json /tmp/bench.json     # CI-sized: 4 files, K=2
    python scripts/bench.py --files 40 --instances 2 --repeat 2 --json bench.json
    python scripts/bench.py --long_pdf 30 --instances 2 --repeat 2  # one 30-page PDF, 4 images
    python scripts/bench.py --files 400 --instances 2 --batch_size 4 --device gpu:0,1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import yaml
from _measure import Sampler, cores, machine_busy_seconds, ratio, report_head, table, write_json

from ray_ocr.config import DEFAULT_PAGES_PER_TASK

REPO = Path(__file__).resolve().parent.parent
REALDOCS = REPO.parent / "shared" / "realdocs"
DEFAULT_MIX = ["general_ocr_002.jpg", "book.jpg", "img_12.jpg", "11.jpg", "table.jpg", "sample_img.jpg",
               "ppstructure_table.jpg", "tipc_web_test.jpg", "pdflatex-outline.pdf", "sample_pdf.pdf"]
QUICK_MIX = ["table.jpg", "11.jpg", "general_ocr_002.jpg", "pdflatex-outline.pdf"]
LONG_PDF_SOURCES = ["pdflatex-outline.pdf", "sample_pdf.pdf", "Seige_of_Vicksburg_Sample_OCR.pdf"]
LONG_PDF_IMAGES = ["general_ocr_002.jpg", "book.jpg", "img_12.jpg", "11.jpg"]
SUPPORTED = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pdf"}
OCR_PARAMS = yaml.safe_load((REPO / "samples" / "ocr_mobile_offline.yaml").read_text())  # no download
VARIANTS = ("direct", "multiprocess", "ray_ocr", "multidevice")
COUNTED = {"direct": ("root",), "multiprocess": ("workers",), "ray_ocr": ("root", "workers"),
           "multidevice": ("root",)}  # the processes whose summed RSS is the variant's peak
COLUMNS = [("wall s", "wall_seconds", ".1f"), ("files/s", "files_per_second", ".3f"),
           ("x direct", "x_direct_files_per_second", ".2f"), ("pages/s", "pages_per_second", ".3f"),
           ("x direct", "x_direct_pages_per_second", ".2f"), ("1st result s", "first_result_seconds", ".1f"),
           ("steady p/s", "steady_pages_per_second", ".3f"), ("x mp steady", "x_multiprocess_steady", ".2f"),
           ("x mp wall", "x_multiprocess_wall", ".2f"), ("CPU s/page", "cpu_seconds_per_page", ".2f"),
           ("peak RSS MB", "peak_rss_mb", ".0f"), ("other load", "other_load_cores", ".2f"), ("ok", "ok", "")]


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def realdoc(name: str) -> Path:
    matches = sorted(REALDOCS.glob(f"*/{name}"))  # a subfolder: never bad_inputs/ by accident
    if not matches:
        sys.exit(f"bench: {name} not found under {REALDOCS}")
    return matches[0]


def make_inputs(sources: list[Path], count: int, folder: Path) -> list[Path]:
    """`count` copies, round-robin; the numeric prefix keeps every output name unique."""
    if not sources:
        sys.exit("bench: no image or PDF to copy")
    folder.mkdir(parents=True)
    inputs = [folder / f"{i:05d}_{sources[i % len(sources)].name}" for i in range(count)]
    for i, dest in enumerate(inputs):
        shutil.copyfile(sources[i % len(sources)], dest)
    return inputs


def make_long_pdf(pages: int, folder: Path) -> list[Path]:
    """One `pages`-page PDF (the realdocs PDFs' pages in turn, repeated) and 4 images."""
    import pypdfium2

    docs = [pypdfium2.PdfDocument(str(realdoc(name))) for name in LONG_PDF_SOURCES]
    pdf = pypdfium2.PdfDocument.new()
    while len(pdf) < pages:
        for doc in docs:
            if len(pdf) < pages:
                pdf.import_pages(doc, list(range(min(len(doc), pages - len(pdf)))))
    inputs = make_inputs([realdoc(name) for name in LONG_PDF_IMAGES], len(LONG_PDF_IMAGES), folder)
    inputs.insert(0, folder / f"long_{pages}p.pdf")
    pdf.save(str(inputs[0]))
    return inputs


def count_pages(path: Path) -> int:
    """Results PaddleOCR returns for a file: a PDF's pages, a TIFF's frames, else 1."""
    import pypdfium2
    from PIL import Image

    if path.suffix.lower() == ".pdf":
        return len(pypdfium2.PdfDocument(str(path)))
    if path.suffix.lower() not in (".tif", ".tiff"):
        return 1
    with Image.open(path) as image:
        return getattr(image, "n_frames", 1)


def build_paddleocr(device: str, cpu_threads: int | None):
    from ray_ocr.models.model_cache import seed_bundled_models
    from ray_ocr.models.paddle_compat import cpu_pipeline_overrides

    seed_bundled_models()
    import paddleocr

    kwargs = dict(OCR_PARAMS, device=device)
    if device == "cpu":  # ray_ocr's guard too (oneDNN off where it crashes): the same kernels
        kwargs["cpu_threads"] = cpu_threads
        kwargs.update(cpu_pipeline_overrides(kwargs))
    return paddleocr.PaddleOCR(**kwargs)


def worker(tasks, reports, device: str, cpu_threads: int | None, batch_size: int, out_dir: str) -> None:
    """infer_mp.py's worker: its own pipeline, whole files from the queue, B per predict(),
    <stem>[_<page>].json as ray_ocr names them too; a failed batch is printed and counted."""
    pipeline = build_paddleocr(device, cpu_threads)
    files = pages = 0
    batch: list[str] = []
    while True:
        path = tasks.get()
        batch += [path] if path is not None else []
        if batch and (len(batch) == batch_size or path is None):
            try:
                for result in pipeline.predict(batch):
                    page = result.get("page_index")
                    name = Path(result["input_path"]).stem + ("" if page is None else f"_{page}")
                    result.save_to_json(os.path.join(out_dir, name + ".json"))
                    pages += 1
                files += len(batch)
            except Exception as exc:  # noqa: BLE001
                print(f"{batch} on {device}: {exc}", file=sys.stderr)
            batch = []
        if path is None:
            break
    reports.put({"files": files, "pages": pages})


def paddleocr_job(paths: list[str], out_dir: str, devices: list[str], processes: int,
                  cpu_threads: int | None, batch_size: int) -> dict:
    """`processes` spawned workers per device (multiprocess; a spawn Queue stands in for
    infer_mp.py's Manager().Queue(), without a manager process to blur the workers' memory),
    or 0: one worker in this process (direct; multidevice with B = all files)."""
    ctx = multiprocessing.get_context("spawn")
    tasks, reports = (ctx.Queue(), ctx.Queue()) if processes else (queue.Queue(), queue.Queue())
    workers = [ctx.Process(target=worker, args=(tasks, reports, device, cpu_threads, batch_size, out_dir))
               for device in devices for _ in range(processes)]
    for path in paths + [None] * max(1, len(workers)):  # one None ends one worker
        tasks.put(path)
    for process in workers:
        process.start()
    if not workers:
        worker(tasks, reports, devices[0], cpu_threads, batch_size, out_dir)
    for process in workers:
        process.join()
    done = []
    while not reports.empty():  # all have exited: their reports (a dead one's: none) are in
        done.append(reports.get())
    files = sum(r["files"] for r in done)
    return {"files": files, "pages": sum(r["pages"] for r in done), "failed": len(paths) - files}


def ray_ocr_job(paths: list[str], out_dir: str, device: str, instances: int, batch_size: int,
                pages_per_task: int) -> dict:
    import ray_ocr

    summary = ray_ocr.run_batch("OCR", os.path.dirname(paths[0]), out_dir, device=device, batch_size=batch_size,
                                instances_per_device=instances, pages_per_task=pages_per_task,
                                pipeline_params=OCR_PARAMS, overwrite=True, progress_interval=-1)
    return {"files": summary.succeeded, "pages": summary.pages, "failed": summary.failed}


def child(job, kwargs: dict, conn, log_path: str) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)  # Paddle's and Ray's output to the variant's log
    os.dup2(fd, 2)
    try:
        conn.send({"ok": True, **job(**kwargs)})
    except BaseException:  # noqa: BLE001 - the parent reports it
        traceback.print_exc()
        conn.send({"ok": False, "error": traceback.format_exc()})


def actor_stats(out_dir: Path, wall: float) -> dict:
    """Per ray_ocr actor, from its summary.json: batches, busy seconds over the wall, and
    busy over its own span (its first batch's start to its last's end)."""
    summary = json.loads((out_dir / "summary.json").read_text())
    actors = {}
    for name, stats in summary["actors"].items():
        events = [e for e in summary["timeline"] if e["actor"] == name]
        span = events[-1]["t"] - events[0]["t"] + events[0]["seconds"] if events else 0.0
        actors[name] = {"batches": stats["batches"], "busy_seconds": round(stats["busy_seconds"], 2),
                        "busy_ratio": round(stats["busy_seconds"] / wall, 4),
                        "steady_busy_ratio": round(sum(e["seconds"] for e in events) / span, 4) if span else None,
                        "last_batch_t": events[-1]["t"] if events else None}
    return {"summary_wall_seconds": summary["wall_seconds"], "actors": actors}


def run_variant(name: str, job, kwargs: dict, paths: list[str], out_dir: Path, log_path: Path) -> dict:
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    out_dir.mkdir(parents=True)
    busy_before, epoch, started = machine_busy_seconds(), time.time(), time.perf_counter()
    proc = ctx.Process(target=child, args=(job, dict(kwargs, paths=paths, out_dir=str(out_dir)), sender,
                                                 str(log_path)))
    proc.start()
    sender.close()
    sampler = Sampler(proc.pid, COUNTED[name])
    sampler.start()
    try:
        reply = receiver.recv()
    except EOFError:
        reply = {"ok": False, "error": f"the {name} process died without a result"}
    wall = time.perf_counter() - started
    sampler.finish()
    proc.join()
    cpu = sampler.cpu_seconds()
    jsons = sorted((e for e in os.scandir(out_dir) if e.name.endswith(".json") and not e.name.startswith(".")
                    and e.name != "summary.json"), key=lambda e: e.name)  # ray_ocr's summary is not a result
    landed = sorted(e.stat().st_mtime - epoch for e in jsons)
    files, pages = reply.get("files", 0), reply.get("pages", 0)
    run = {"ok": reply["ok"], "files": files, "pages": pages, "failed": reply.get("failed", 0),
           "json_names": [e.name for e in jsons], "wall_seconds": round(wall, 2),
           "files_per_second": round(files / wall, 4), "pages_per_second": round(pages / wall, 4),
           "first_result_seconds": round(landed[0], 2) if landed else None,
           "steady_pages_per_second": (round((len(landed) - 1) / (landed[-1] - landed[0]), 4)
                                       if len(landed) > 1 and landed[-1] > landed[0] else None),
           "peak_rss_mb": round(sampler.peak_mb), "tree_peak_rss_mb": round(sampler.tree_peak_mb),
           "cpu_seconds": cpu, "cpu_seconds_per_page": round(sum(cpu.values()) / pages, 3) if pages else None,
           # cores the rest of the machine kept busy meanwhile: the noise in this wall time
           "other_load_cores": round(max(0.0, machine_busy_seconds() - busy_before - sum(cpu.values())) / wall, 2)}
    if name == "ray_ocr" and (out_dir / "summary.json").exists():
        run.update(actor_stats(out_dir, wall))
    if not reply["ok"]:
        run["error"] = reply["error"]
        log(f"{name} FAILED (log {log_path}):\n{reply['error']}")
    return run


def plan(args, files: int) -> dict:
    """name -> (job, its arguments but the paths and the output folder), or why it is skipped."""
    gpus = args.device.startswith("gpu")
    devices = [f"gpu:{d}" for d in args.device[4:].split(",")] if gpus else ["cpu"]
    threads = args.direct_threads = None if gpus else cores()
    mp_threads = args.worker_threads = None if gpus else max(1, threads // args.instances)
    k, b = args.instances, args.batch_size
    jobs = {"direct": (paddleocr_job, dict(devices=devices[:1], processes=0, cpu_threads=threads, batch_size=1)),
            "multiprocess": (paddleocr_job, dict(devices=devices, processes=k, cpu_threads=mp_threads, batch_size=b)),
            "ray_ocr": (ray_ocr_job, dict(device=args.device, instances=k, batch_size=b,
                                          pages_per_task=args.pages_per_task)),
            "multidevice": (paddleocr_job, dict(devices=[args.device], processes=0, cpu_threads=None, batch_size=files))
            if gpus else "skipped: PaddleOCR's multi-device mode needs --device gpu:0,1,..."}
    return {name: jobs[name] for name in args.variants}


def summarize(runs: dict[str, list[dict]], files: int, pages: int) -> tuple[dict, list[str]]:
    """The fastest run of each variant, with its ratios; and every problem of every run."""
    variants = {name: dict(min(rs, key=lambda r: r["wall_seconds"]), all_wall_seconds=[r["wall_seconds"] for r in rs])
                for name, rs in runs.items()}
    direct, mp = variants.get("direct") or {}, variants.get("multiprocess") or {}
    for v in variants.values():
        v["x_direct_files_per_second"] = ratio(v["files_per_second"], direct.get("files_per_second"))
        v["x_direct_pages_per_second"] = ratio(v["pages_per_second"], direct.get("pages_per_second"))
        v["x_multiprocess_steady"] = ratio(v["steady_pages_per_second"], mp.get("steady_pages_per_second"))
        v["x_multiprocess_wall"] = ratio(v["wall_seconds"], mp.get("wall_seconds"))
        del v["json_names"]
    problems, first = [], next(iter(runs), None)
    for name, name_runs in runs.items():
        for i, run in enumerate(name_runs, start=1):
            if not run["ok"] or run["files"] != files or run["failed"] or len(run["json_names"]) != pages:
                problems.append(f"{name} run {i}: ok={run['ok']}, {run['files']}/{files} files, {run['failed']} "
                                f"failed, {len(run['json_names'])} JSONs for {pages} pages")
            if run["json_names"] != runs[first][0]["json_names"]:
                diff = sorted(set(run["json_names"]) ^ set(runs[first][0]["json_names"]))[:5]
                problems.append(f"{name} run {i}: JSON names differ from {first}'s, e.g. {diff}")
    return variants, problems


def format_report(r: dict) -> str:
    s, m, variants = r["settings"], r["machine"], r["variants"]
    lines = [f"ray_ocr bench {r['date']}: {m['cores']} cores ({m['cpu_model']}), {m['ram_gb']} GB; "
             + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
             f"{s['files']} files ({s['pdfs']} PDF), {s['pages']} pages; {s['device']}, K={s['instances']}, "
             f"batch {s['batch_size']}, repeat {s['repeat']} (fastest shown); cpu_threads: direct "
             f"{s['direct_threads']}, multiprocess {s['worker_threads']} each; load before {m['load_average']}", ""]
    lines += table(COLUMNS, [dict(v, variant=name) for name, v in variants.items()], "variant", 13)
    lines += [f"{name:<13}{reason}" for name, reason in r["skipped"].items()]
    for name, a in variants.get("ray_ocr", {}).get("actors", {}).items():
        lines.append(f"actor {name}: {a['batches']} batches, busy {a['busy_ratio']:.1%} of the wall, "
                     f"{a['steady_busy_ratio'] or 0:.1%} from its first batch to its last "
                     f"(back at {a['last_batch_t'] or 0:.1f} s)")
    lines.append("peak RSS: direct its process, multiprocess its workers, ray_ocr its driver and ray:: workers")
    if s["repeat"] > 1:
        lines.append("wall s of each run: " + "; ".join(f"{n} {v['all_wall_seconds']}" for n, v in variants.items()))
    lines.append("outputs: " + ("every variant wrote the same JSON files" if not r["problems"] else "PROBLEMS"))
    return "\n".join(lines + [f"  - {p}" for p in r["problems"]])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=None, help="input files (default 40; --quick 4)")
    p.add_argument("--instances", type=int, default=2, help="K: processes/actors per device (default 2)")
    p.add_argument("--batch_size", type=int, default=1, help="files per task for multiprocess and ray_ocr")
    p.add_argument("--device", default="cpu", help="cpu, or gpu:0,1,... (default cpu)")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma list of " + ", ".join(VARIANTS))
    p.add_argument("--docs", type=Path, default=None, help="copy every image/PDF under DIR (default realdocs)")
    p.add_argument("--repeat", type=int, default=1, help="runs per variant, interleaved; the fastest counts")
    p.add_argument("--quick", action="store_true", help="CI size: 3 images and a 4-page PDF")
    p.add_argument("--long_pdf", type=int, default=None, metavar="PAGES", help="input: a PAGES-page PDF, 4 images")
    p.add_argument("--pages_per_task", type=int, default=DEFAULT_PAGES_PER_TASK, help="ray_ocr's (default its own)")
    p.add_argument("--json", type=Path, default=None, help="write every number here")
    args = p.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    args.files = args.files or (4 if args.quick else 40)
    if not args.variants or set(args.variants) - set(VARIANTS):
        p.error(f"--variants: choose from {', '.join(VARIANTS)}")
    if min(args.files, args.instances, args.batch_size, args.repeat, args.long_pdf or 1, args.pages_per_task + 1) < 1:
        p.error("--files, --instances, --batch_size, --repeat, --long_pdf must be >= 1, --pages_per_task >= 0")
    if args.device != "cpu" and not (args.device.startswith("gpu:") and args.device[4:].replace(",", "").isdigit()):
        p.error("--device: cpu or gpu:0,1,...")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")  # offline; inherited
    work = Path(tempfile.mkdtemp(prefix="ray_ocr_bench_"))
    report = report_head()
    if args.long_pdf:
        inputs = make_long_pdf(args.long_pdf, work / "in")
    else:
        sources = ([p for p in sorted(args.docs.rglob("*")) if p.suffix.lower() in SUPPORTED] if args.docs
                   else [realdoc(name) for name in (QUICK_MIX if args.quick else DEFAULT_MIX)])
        inputs = make_inputs(sources, args.files, work / "in")
    pages, pdfs = sum(count_pages(p) for p in inputs), sum(p.suffix.lower() == ".pdf" for p in inputs)
    jobs, paths = plan(args, len(inputs)), [str(p) for p in inputs]
    runs: dict[str, list[dict]] = {name: [] for name, job in jobs.items() if not isinstance(job, str)}
    names = list(runs)
    log(f"{len(inputs)} files ({pdfs} PDF, {pages} pages); work folder {work}")
    for rep in range(args.repeat):
        for name in names:
            log(f"{name} (run {rep + 1} of {args.repeat}) ...")
            out = work / f"{name}_{rep}"
            runs[name].append(run_variant(name, *jobs[name], paths, out, out.with_suffix(".log")))
        names = names[1:] + names[:1]  # rotated: drifts of the machine's load hit all variants alike
    variants, problems = summarize(runs, len(inputs), pages)
    report.update(settings=dict(vars(args), files=len(inputs), pdfs=pdfs, images=len(inputs) - pdfs, pages=pages),
                  variants=variants, skipped={n: j for n, j in jobs.items() if isinstance(j, str)},
                  problems=problems)
    print(format_report(report))
    write_json(report, args.json)
    if problems:
        log(f"PROBLEMS (outputs differ or a variant failed); kept {work}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
