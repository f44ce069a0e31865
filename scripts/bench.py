"""ray_ocr against PaddleOCR's own ways of running a pipeline, side by side.

One invocation copies real documents (images and multi-page PDFs from
../shared/realdocs) into an input set of N files and runs the OCR pipeline
(PP-OCRv5 mobile det/rec, offline) over it with each variant, one after the other:

  direct        PaddleOCR in one process: PaddleOCR(..., cpu_threads=T) built once,
                predict() per file, save_to_json per result. T is the faster of the
                machine's core count and half of it on a short warm-up, or --direct_threads.
  multiprocess  PaddleOCR's documented multi-process script (infer_mp.py): K processes
                per device ("spawn"), each builds its own pipeline and takes whole file
                paths (batches of B) from one shared queue; on CPU cpu_threads = cores / K.
  ray_ocr       ray_ocr.run(..., instances_per_device=K, batch_size=B).
  multidevice   PaddleOCR's own PaddleOCR(device="gpu:0,1,...") (GPU only; skipped on CPU).

Each variant starts in a fresh process and writes into its own folder; its clock starts
before that process does, so start-up (imports, pipeline build, Ray start) is counted.
Measured per variant: wall seconds, files/s, pages/s (a PDF page is a page), both as a
ratio to direct, time to the first result JSON on disk, the steady rate between the first
and the last JSON, peak memory (summed RSS, sampled every 0.2 s: direct its process;
multiprocess its worker processes; ray_ocr the driver plus the `ray::` worker processes),
the CPU seconds of those processes, of the rest of the variant's process tree (Ray's
services) and of the whole tree per page, and for ray_ocr each actor's busy ratio (busy
seconds / wall). The JSON files written by each variant are checked: same count and names
for all (a mismatch is printed loudly and the exit code is 1).

Usage (from the repository root):

    python scripts/bench.py --quick --json /tmp/bench.json        # CI-sized: 4 files, K=2
    python scripts/bench.py --files 40 --instances 2 --json bench.json
    python scripts/bench.py --files 400 --instances 2 --batch_size 4 --device gpu:0,1
    python scripts/bench.py --docs my_scans/ --files 200 --variants direct,ray_ocr

Long PDFs (page-range tasks): `--long_pdf 30` makes the input one 30-page PDF (pages of the
realdocs PDFs, repeated) plus 4 images; the file-granular multiprocess variant holds that
PDF on one process while ray_ocr spreads its pages over its actors (--pages_per_task).

    python scripts/bench.py --long_pdf 30 --instances 2 --json long.json

Options: --files N, --instances K (per device), --batch_size B, --device cpu|gpu:0,1,...,
--long_pdf PAGES, --pages_per_task N (ray_ocr's; default its own),
--variants LIST, --docs DIR (every image/PDF under DIR instead of the default mix),
--repeat R (runs interleaved; the fastest run of each variant is reported), --direct_threads T, --json PATH,
--keep (keep the inputs, outputs and per-variant logs).
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import queue
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REALDOCS = REPO.parent / "shared" / "realdocs"

# Real documents of ../shared/realdocs (see its MANIFEST.md). Images of several sizes and
# two 4-page PDFs; PDF pages are rendered large, so they carry most of the OCR work.
DEFAULT_MIX = [
    "general_ocr_002.jpg", "book.jpg", "img_12.jpg", "11.jpg", "table.jpg", "sample_img.jpg",
    "ppstructure_table.jpg", "tipc_web_test.jpg", "pdflatex-outline.pdf", "sample_pdf.pdf",
]
QUICK_MIX = ["table.jpg", "11.jpg", "general_ocr_002.jpg", "pdflatex-outline.pdf"]
SUPPORTED = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pdf"}

# The offline OCR configuration of the tests (tests/conftest.py MOBILE_OCR_PARAMS): the two
# models the `models` extra ships, nothing that would need a download.
OCR_PARAMS = {
    "text_detection_model_name": "PP-OCRv5_mobile_det",
    "text_recognition_model_name": "PP-OCRv5_mobile_rec",
    "use_doc_orientation_classify": False,
    "use_doc_unwarping": False,
    "use_textline_orientation": False,
}
ALL_VARIANTS = ("direct", "multiprocess", "ray_ocr", "multidevice")
SAMPLE_SECONDS = 0.2
MB = 1024 * 1024
NOT_RESULTS = {"summary.json"}  # ray_ocr's run summary sits beside the result JSONs


# -- inputs -----------------------------------------------------------------------

def pick_sources(docs: Path | None, names: list[str]) -> list[Path]:
    """The distinct documents to copy: every image/PDF under --docs, else `names` from
    realdocs (searched in its subfolders, so bad_inputs/ is never picked by accident)."""
    if docs is not None:
        found = sorted(p for p in docs.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED)
        if not found:
            sys.exit(f"bench: no image or PDF under {docs}")
        return found
    if not REALDOCS.is_dir():
        sys.exit(f"bench: real documents not found at {REALDOCS} (../shared/realdocs)")
    sources = []
    for name in names:
        matches = sorted(REALDOCS.glob(f"*/{name}"))
        if not matches:
            sys.exit(f"bench: {name} not found under {REALDOCS}")
        sources.append(matches[0])
    return sources


def make_inputs(sources: list[Path], count: int, folder: Path) -> list[Path]:
    """Copy the sources round-robin into `count` files. The numeric prefix keeps every
    stem unique, so all variants name their outputs alike (<stem>[_<page>].json)."""
    folder.mkdir(parents=True)
    inputs = []
    for i in range(count):
        src = sources[i % len(sources)]
        dest = folder / f"{i:05d}_{src.name}"
        shutil.copyfile(src, dest)
        inputs.append(dest)
    return inputs


LONG_PDF_SOURCES = ["pdflatex-outline.pdf", "sample_pdf.pdf", "Seige_of_Vicksburg_Sample_OCR.pdf"]
LONG_PDF_IMAGES = ["general_ocr_002.jpg", "book.jpg", "img_12.jpg", "11.jpg"]


def make_long_pdf_inputs(pages: int, folder: Path) -> list[Path]:
    """One `pages`-page PDF (the realdocs PDFs' pages, in turn, repeated) and 4 images."""
    import pypdfium2

    folder.mkdir(parents=True)
    docs = [pypdfium2.PdfDocument(str(p)) for p in pick_sources(None, LONG_PDF_SOURCES)]
    out = pypdfium2.PdfDocument.new()
    while len(out) < pages:
        for doc in docs:
            take = min(len(doc), pages - len(out))
            if take > 0:
                out.import_pages(doc, list(range(take)))
    dest = folder / f"00000_long_{pages}p.pdf"
    out.save(str(dest))
    for doc in docs + [out]:
        doc.close()
    inputs = [dest]
    for i, src in enumerate(pick_sources(None, LONG_PDF_IMAGES), start=1):
        inputs.append(folder / f"{i:05d}_{src.name}")
        shutil.copyfile(src, inputs[-1])
    return inputs


def count_pages(path: Path) -> int:
    """Pages PaddleOCR will return results for: PDF pages, TIFF frames, else 1."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        import pypdfium2

        doc = pypdfium2.PdfDocument(str(path))
        try:
            return len(doc)
        finally:
            doc.close()
    if suffix in (".tif", ".tiff"):
        from PIL import Image

        with Image.open(path) as image:
            return getattr(image, "n_frames", 1)
    return 1


# -- inside the variant processes ---------------------------------------------------
# Everything below up to "measuring" runs in spawned processes; only paths, numbers and
# small dicts cross process boundaries.

def build_paddleocr(device: str, cpu_threads: int | None):
    """One PaddleOCR pipeline, offline, as a user of PaddleOCR would build it."""
    os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
    from ray_ocr.models.model_cache import seed_bundled_models
    from ray_ocr.models.paddle_compat import cpu_pipeline_overrides

    seed_bundled_models()  # the bundled mobile models into PaddleX's cache: no download
    import paddleocr

    kwargs = dict(OCR_PARAMS, device=device)
    if device.startswith("cpu"):
        kwargs["cpu_threads"] = cpu_threads
        # The same guard ray_ocr applies (oneDNN off on Paddle versions that crash with it),
        # so that all variants run the same kernels.
        kwargs.update(cpu_pipeline_overrides(kwargs))
    return paddleocr.PaddleOCR(**kwargs)


def save_result(result, out_dir: str) -> None:
    """infer_mp.py's naming, which is also ray_ocr's: <stem>.json, <stem>_<page>.json."""
    stem = Path(result["input_path"]).stem
    page = result.get("page_index")
    name = f"{stem}.json" if page is None else f"{stem}_{page}.json"
    result.save_to_json(os.path.join(out_dir, name))


def direct_job(paths: list[str], out_dir: str, device: str, cpu_threads: int | None) -> dict:
    pipeline = build_paddleocr(device, cpu_threads)
    files = pages = failed = 0
    for path in paths:
        try:
            for result in pipeline.predict(path):
                save_result(result, out_dir)
                pages += 1
            files += 1
        except Exception as exc:  # noqa: BLE001 - count it and go on, as infer_mp.py does
            failed += 1
            print(f"direct: {path}: {exc}", file=sys.stderr)
    return {"files": files, "pages": pages, "failed": failed}


def warmup_job(paths: list[str], device: str, cpu_threads: int) -> dict:
    """Seconds for a second pass over `paths` (the first pass warms Paddle's caches)."""
    started = time.perf_counter()
    pipeline = build_paddleocr(device, cpu_threads)
    build = time.perf_counter() - started
    for _ in pipeline.predict(paths):
        pass
    started = time.perf_counter()
    for _ in pipeline.predict(paths):
        pass
    return {"cpu_threads": cpu_threads, "build_seconds": round(build, 2),
            "seconds": round(time.perf_counter() - started, 3)}


def mp_worker(tasks, reports, device: str, cpu_threads: int | None, batch_size: int, out_dir: str):
    """infer_mp.py's worker: own pipeline, whole files from the shared queue, B at a time;
    a failed batch is printed and counted, not retried."""
    pipeline = build_paddleocr(device, cpu_threads)
    files = pages = failed = 0
    batch: list[str] = []
    while True:
        path = tasks.get()
        if path is not None:
            batch.append(path)
        if batch and (len(batch) == batch_size or path is None):
            try:
                for result in pipeline.predict(batch):
                    save_result(result, out_dir)
                    pages += 1
                files += len(batch)
            except Exception as exc:  # noqa: BLE001
                failed += len(batch)
                print(f"multiprocess: error processing {batch} on {device}: {exc}", file=sys.stderr)
            batch = []
        if path is None:
            break
    reports.put({"pid": os.getpid(), "device": device, "files": files, "pages": pages, "failed": failed})


def multiprocess_job(paths: list[str], out_dir: str, devices: list[str], instances: int,
                     cpu_threads: int | None, batch_size: int) -> dict:
    """K spawned workers per device on one queue. A spawn-context Queue stands in for
    infer_mp.py's Manager().Queue(): the same shared queue of paths, without a manager
    server process whose memory would blur the workers' peak. One None per worker ends
    it (a non-blocking get on a fresh multiprocessing.Queue can miss items still in its
    feeder thread)."""
    ctx = multiprocessing.get_context("spawn")
    tasks, reports = ctx.Queue(), ctx.Queue()
    workers = [ctx.Process(target=mp_worker, args=(tasks, reports, device, cpu_threads, batch_size, out_dir))
               for device in devices for _ in range(instances)]
    for path in paths:
        tasks.put(path)
    for _ in workers:
        tasks.put(None)
    for worker in workers:
        worker.start()
    per_worker = _collect_reports(reports, workers)
    for worker in workers:
        worker.join()
    done = sum(r["files"] for r in per_worker)
    return {
        "files": done,
        "pages": sum(r["pages"] for r in per_worker),
        "failed": len(paths) - done,  # failed batches, and whatever a dead worker held
        "workers": per_worker,
        "dead_workers": len(workers) - len(per_worker),
    }


def _collect_reports(reports, workers) -> list[dict]:
    """One report per worker; stop waiting when the rest have died without one."""
    collected: list[dict] = []
    while len(collected) < len(workers):
        try:
            collected.append(reports.get(timeout=1.0))
        except queue.Empty:
            if not any(w.is_alive() for w in workers):
                try:  # a report may have landed just before the last worker exited
                    collected.append(reports.get(timeout=1.0))
                except queue.Empty:
                    break
    return collected


def ray_ocr_job(input_dir: str, out_dir: str, device: str, instances: int, batch_size: int,
                pages_per_task: int | None = None) -> dict:
    import ray_ocr

    options = {} if pages_per_task is None else {"pages_per_task": pages_per_task}
    summary = ray_ocr.run(
        "OCR", input_dir, out_dir, device=device, instances_per_device=instances,
        batch_size=batch_size, pipeline_params=OCR_PARAMS, overwrite=True, progress_interval=-1,
        **options,
    )
    actors = {}
    for name, stats in summary.actors.items():
        events = [event for event in summary.timeline if event["actor"] == name]
        times = [event["t"] for event in events]
        # Steady state: from the start of the actor's first batch to the end of its
        # last; the gaps in between are what prefetch exists to remove.
        window = (times[-1] - (times[0] - events[0]["seconds"])) if events else 0.0
        actors[name] = {
            "steady_busy_ratio": round(sum(e["seconds"] for e in events) / window, 4) if window > 0 else None,
            "busy_seconds": round(stats["busy_seconds"], 3),
            "batches": stats["batches"],
            "restarts": stats.get("restarts", 0),
            # Seconds since the driver started when this actor returned its first and
            # last batch: how long it took to come up, and how early it ran dry.
            "first_batch_t": min(times) if times else None,
            "last_batch_t": max(times) if times else None,
        }
    return {"files": summary.succeeded, "pages": summary.pages, "failed": summary.failed,
            "summary_seconds": round(summary.seconds, 3), "actors": actors}


def multidevice_job(paths: list[str], out_dir: str, device: str) -> dict:
    """PaddleOCR's own multi-device mode: one pipeline object over all the GPUs; it
    splits each predict() input across them."""
    pipeline = build_paddleocr(device, None)
    pages = 0
    for result in pipeline.predict(paths):
        save_result(result, out_dir)
        pages += 1
    return {"files": len(paths), "pages": pages, "failed": 0}


def _child_entry(job: Callable, kwargs: dict, conn, log_path: str) -> None:
    """Run one job in this (spawned) process and send its result or its traceback."""
    # Paddle, PaddleX and Ray print a lot: send it to the variant's log (inherited by
    # the multiprocess workers) so the bench's own lines stay readable.
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        conn.send({"ok": True, "result": job(**kwargs)})
    except BaseException:  # noqa: BLE001 - the parent reports it
        traceback.print_exc()
        conn.send({"ok": False, "error": traceback.format_exc()})
    finally:
        conn.close()


# -- measuring (in the bench process) --------------------------------------------------

def _cmdline(proc) -> str:
    return " ".join(proc.cmdline())


def select_root(proc, root_pid: int) -> bool:
    """direct: the one process."""
    return proc.pid == root_pid


def select_workers(proc, root_pid: int) -> bool:
    """multiprocess: the workers (the coordinator only waits; Python's resource tracker
    is bookkeeping)."""
    return proc.pid != root_pid and "resource_tracker" not in _cmdline(proc)


# Per-node Ray services that also name themselves "ray::...": not workers.
RAY_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def select_ray(proc, root_pid: int) -> bool:
    """ray_ocr: the driver and the Ray worker processes (`ray::<Actor>`, `ray::IDLE`).
    Ray's own services (GCS, raylet, dashboard, agents) are in the tree peak only."""
    if proc.pid == root_pid:
        return True
    cmdline = _cmdline(proc)
    return cmdline.startswith("ray::") and not cmdline.startswith(RAY_AGENTS)


def count_result_jsons(out_dir: Path) -> list[str]:
    """Result JSON names (hidden temporary files and ray_ocr's summary.json excluded)."""
    try:
        return sorted(e.name for e in os.scandir(out_dir)
                      if e.name.endswith(".json") and not e.name.startswith(".") and e.name not in NOT_RESULTS)
    except FileNotFoundError:
        return []


class Monitor(threading.Thread):
    """Every SAMPLE_SECONDS: the summed RSS of a variant's process tree (the selected
    processes, and all of it) and how many result JSONs its output folder holds.

    Processes are found from the variant's root process down, so another agent's Ray or
    Paddle on the same machine is never counted. RSS counts shared pages in each process
    (Ray's object store, shared libraries), so sums overstate what the variant owns.
    """

    def __init__(self, root_pid: int, select: Callable, out_dir: Path, started: float):
        super().__init__(daemon=True)
        self.root_pid, self.select, self.out_dir, self.started = root_pid, select, out_dir, started
        self.peak_mb = 0.0
        self.tree_peak_mb = 0.0
        self.max_processes = 0
        self.samples = 0
        self.progress: list[tuple[float, int]] = []  # (seconds since start, JSONs) on change
        self.cpu: dict[int, tuple[str, float]] = {}  # pid -> (group, CPU seconds so far)
        # A process once selected stays in its group: an exiting process shows an empty
        # cmdline, and a Ray worker shows its real one before it renames itself ray::...
        self.ever_selected: set[int] = set()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()  # the last JSONs may have landed since the last tick

    def sample(self) -> None:
        seconds = time.perf_counter() - self.started
        selected, tree, processes = self._rss()
        self.peak_mb = max(self.peak_mb, selected)
        self.tree_peak_mb = max(self.tree_peak_mb, tree)
        self.max_processes = max(self.max_processes, processes)
        self.samples += 1
        count = len(count_result_jsons(self.out_dir))
        if not self.progress or count != self.progress[-1][1]:
            self.progress.append((round(seconds, 3), count))

    def _rss(self) -> tuple[float, float, int]:
        import psutil

        try:
            root = psutil.Process(self.root_pid)
            procs = [root] + root.children(recursive=True)
        except psutil.Error:
            return 0.0, 0.0, 0
        selected = tree = 0
        for proc in procs:
            try:
                rss = proc.memory_info().rss
                chosen = self.select(proc, self.root_pid)
                times = proc.cpu_times()
            except psutil.Error:  # exited between listing and reading
                continue
            tree += rss
            selected += rss if chosen else 0
            if chosen:
                self.ever_selected.add(proc.pid)
            group = ("root" if proc.pid == self.root_pid
                     else "selected" if proc.pid in self.ever_selected else "rest")
            self.cpu[proc.pid] = (group, times.user + times.system)
        return selected / MB, tree / MB, len(procs)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds of the root process, the other selected processes, and the rest of
        the tree (Ray's services), as last sampled (a process's final 0.2 s may be missed)."""
        totals = {"root": 0.0, "selected": 0.0, "rest": 0.0}
        for group, seconds in self.cpu.values():
            totals[group] += seconds
        return {group: round(seconds, 1) for group, seconds in totals.items()}


def run_measured(name: str, job: Callable, kwargs: dict, out_dir: Path, select: Callable,
                 log_path: Path) -> dict:
    """Run `job` in a fresh spawned process under a Monitor; return the measurements."""
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    out_dir.mkdir(parents=True)
    load = os.getloadavg()[0]
    machine_busy = busy_cpu_seconds()
    started = time.perf_counter()
    proc = ctx.Process(target=_child_entry, args=(job, kwargs, sender, str(log_path)), name=f"bench-{name}")
    proc.start()
    sender.close()
    monitor = Monitor(proc.pid, select, out_dir, started)
    monitor.start()
    reply = _wait_reply(proc, receiver)
    wall = time.perf_counter() - started
    machine_busy = busy_cpu_seconds() - machine_busy
    monitor.stop()
    proc.join()
    # CPU the rest of the machine used meanwhile (other agents' tests, ...): the noise
    # in this run's wall time, in cores.
    others = max(0.0, machine_busy - sum(monitor.cpu_seconds().values())) / wall if wall else 0.0
    return {"reply": reply, "wall_seconds": wall, "monitor": monitor, "load_1min_before": round(load, 2),
            "other_load_cores": round(others, 2)}


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores) since boot."""
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _wait_reply(proc, receiver) -> dict:
    while True:
        if receiver.poll(0.5):
            try:
                return receiver.recv()
            except EOFError:
                break
        if not proc.is_alive() and not receiver.poll(0.1):
            break
    proc.join()
    return {"ok": False, "error": f"the variant process exited with code {proc.exitcode} without a result"}


def describe_run(name: str, measured: dict, out_dir: Path) -> dict:
    """The numbers of one run of one variant."""
    reply, wall, monitor = measured["reply"], measured["wall_seconds"], measured["monitor"]
    result = reply.get("result") or {}
    pages = result.get("pages", 0)
    files = result.get("files", 0)
    progress = monitor.progress
    first = next(((t, n) for t, n in progress if n > 0), None)
    last = progress[-1] if progress and progress[-1][1] > 0 else None
    if last:  # the monitor's final look comes after the reply; the JSON was there before
        last = (min(last[0], round(wall, 3)), last[1])
    steady = None
    if first and last and last[0] > first[0]:
        # Results per second between the first and the last JSON: the rate once
        # start-up is over, before the tail (Ray shutdown, process exit).
        steady = (last[1] - first[1]) / (last[0] - first[0])
    run = {
        "variant": name,
        "ok": reply.get("ok", False),
        "files": files,
        "failed": result.get("failed", 0),
        "pages": pages,
        "json_files": len(count_result_jsons(out_dir)),
        "wall_seconds": round(wall, 3),
        "files_per_second": round(files / wall, 4) if wall else 0.0,
        "pages_per_second": round(pages / wall, 4) if wall else 0.0,
        "first_result_seconds": first[0] if first else None,
        "last_result_seconds": last[0] if last else None,
        "tail_seconds": round(max(0.0, wall - last[0]), 3) if last else None,
        "steady_pages_per_second": round(steady, 4) if steady is not None else None,
        "peak_rss_mb": round(monitor.peak_mb, 1),
        "tree_peak_rss_mb": round(monitor.tree_peak_mb, 1),
        "max_processes": monitor.max_processes,
        "cpu_seconds": monitor.cpu_seconds(),
        # CPU time of the whole tree per page: the cost of a page, which other load on a
        # shared machine disturbs much less than it disturbs wall time.
        "cpu_seconds_per_page": round(sum(monitor.cpu_seconds().values()) / pages, 3) if pages else None,
        "rss_samples": monitor.samples,
        "load_1min_before": measured["load_1min_before"],
        "other_load_cores": measured["other_load_cores"],
    }
    if not run["ok"]:
        run["error"] = reply.get("error")
    details = {k: v for k, v in result.items() if k not in ("files", "pages", "failed")}
    if name == "ray_ocr":
        for stats in details.get("actors", {}).values():
            stats["busy_ratio"] = round(stats["busy_seconds"] / wall, 4) if wall else None
    run["details"] = details
    return run


def read_texts(out_dir: Path) -> dict[str, list]:
    """rec_texts per result JSON, to tell whether two variants found the same text."""
    texts = {}
    for name in count_result_jsons(out_dir):
        try:
            texts[name] = json.loads((out_dir / name).read_text(encoding="utf-8")).get("rec_texts")
        except (OSError, ValueError):
            texts[name] = None
    return texts


# -- planning -------------------------------------------------------------------------

def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_device(text: str) -> tuple[str, list[str]]:
    """('cpu', ['cpu']) or ('gpu', ['gpu:0', 'gpu:1']) for --device gpu:0,1."""
    text = text.strip().lower()
    if text == "cpu":
        return "cpu", ["cpu"]
    if text.startswith("gpu:"):
        try:
            ids = [int(part) for part in text[4:].split(",")]
        except ValueError:
            sys.exit(f"bench: --device {text}: expected gpu:0,1,...")
        return "gpu", [f"gpu:{i}" for i in ids]
    sys.exit(f"bench: --device {text}: expected cpu or gpu:0,1,... (name the GPUs)")


def choose_direct_threads(args, cores: int, warmup_paths: list[str], work: Path) -> tuple[int | None, str, list]:
    """cpu_threads for `direct`: --direct_threads, else the faster of cores and cores/2 on
    a short warm-up (in fresh processes: each pipeline sets its own thread pools)."""
    kind, devices = parse_device(args.device)
    if kind == "gpu":
        return None, "GPU: PaddleOCR's default", []
    if args.direct_threads:
        return args.direct_threads, "--direct_threads", []
    if args.quick:
        return cores, "the core count; --quick skips the warm-up", []
    trials = []
    for threads in sorted({cores, max(1, cores // 2)}, reverse=True):
        log(f"warm-up: direct with cpu_threads={threads} on {len(warmup_paths)} files")
        measured = run_measured(f"warmup{threads}", warmup_job,
                                {"paths": warmup_paths, "device": devices[0], "cpu_threads": threads},
                                work / f"warmup_{threads}", select_root, work / "logs" / f"warmup_{threads}.log")
        if measured["reply"].get("ok"):
            trials.append(measured["reply"]["result"])
    if not trials:
        return cores, "the core count; the warm-up failed", []
    best = min(trials, key=lambda trial: trial["seconds"])
    return best["cpu_threads"], "fastest on the warm-up", trials


def plan_variants(args, inputs: list[Path], input_dir: Path, cores: int, direct_threads: int | None):
    """name -> (job, kwargs without out_dir, RSS selector, details) or a skip reason."""
    kind, devices = parse_device(args.device)
    paths = [str(p) for p in inputs]
    mp_threads = max(1, cores // args.instances) if kind == "cpu" else None
    plans: dict[str, tuple | str] = {}
    for name in args.variants:
        if name == "direct":
            plans[name] = (direct_job, {"paths": paths, "device": devices[0], "cpu_threads": direct_threads},
                           select_root, {"device": devices[0], "cpu_threads": direct_threads})
        elif name == "multiprocess":
            plans[name] = (multiprocess_job,
                           {"paths": paths, "devices": devices, "instances": args.instances,
                            "cpu_threads": mp_threads, "batch_size": args.batch_size},
                           select_workers,
                           {"processes": args.instances * len(devices), "cpu_threads": mp_threads,
                            "batch_size": args.batch_size})
        elif name == "ray_ocr":
            plans[name] = (ray_ocr_job,
                           {"input_dir": str(input_dir), "device": args.device, "instances": args.instances,
                            "batch_size": args.batch_size, "pages_per_task": args.pages_per_task},
                           select_ray,
                           {"instances_per_device": args.instances, "batch_size": args.batch_size,
                            "cpu_threads": mp_threads, "pages_per_task": args.pages_per_task})
        elif name == "multidevice":
            if kind != "gpu":
                plans[name] = "skipped: PaddleOCR's multi-device mode needs --device gpu:0,1,... (this run is on CPU)"
            else:
                plans[name] = (multidevice_job, {"paths": paths, "device": args.device}, select_root,
                               {"device": args.device})
    return plans


# -- the run -------------------------------------------------------------------------

def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run_all(args, plans: dict, work: Path) -> tuple[dict[str, list[dict]], dict]:
    """Every runnable variant, --repeat times, interleaved and rotated (d m r, m r d,
    r d m, ...) so that drifts of a shared machine's load hit all variants alike."""
    runs: dict[str, list[dict]] = {name: [] for name, plan in plans.items() if not isinstance(plan, str)}
    texts: dict[str, dict] = {}
    names = list(runs)
    for rep in range(args.repeat):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            job, kwargs, select, details = plans[name]
            out_dir = work / f"out_{name}_{rep}"
            log_path = work / "logs" / f"{name}_{rep}.log"
            log(f"{name} (run {rep + 1}/{args.repeat}) ...")
            measured = run_measured(name, job, dict(kwargs, out_dir=str(out_dir)), out_dir, select, log_path)
            run = describe_run(name, measured, out_dir)
            run["details"] = {**details, **run["details"]}
            run["json_names"] = count_result_jsons(out_dir)
            if name not in texts:
                texts[name] = read_texts(out_dir)
            if not run["ok"]:
                log(f"{name} FAILED; log {log_path}:\n{_tail(log_path)}\n{run.get('error')}")
            else:
                log(f"{name}: {run['files']} files, {run['pages']} pages in {run['wall_seconds']:.1f} s")
            runs[name].append(run)
            if not args.keep:  # outputs of many runs add up; names and texts are kept
                shutil.rmtree(out_dir, ignore_errors=True)
    return runs, texts


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def representative(runs: list[dict]) -> dict:
    """The fastest run: on a shared machine other load only ever adds time, so the
    fastest run is the least disturbed one. All wall times are kept beside it."""
    best = min(range(len(runs)), key=lambda i: runs[i]["wall_seconds"])
    chosen = dict(runs[best], run_index=best)
    chosen["all_wall_seconds"] = [run["wall_seconds"] for run in runs]
    return chosen


def add_ratios(variants: dict[str, dict]) -> None:
    """files/s and pages/s of each variant over direct's (None when direct did not run)."""
    base = variants.get("direct")
    mp = variants.get("multiprocess")
    for run in variants.values():
        for key in ("files_per_second", "pages_per_second"):
            ok = base and base["ok"] and base[key] > 0
            run[f"ratio_{key}"] = round(run[key] / base[key], 3) if ok else None
        # The long-PDF target is a time: this variant's wall time over multiprocess's.
        ok = mp and mp["ok"] and mp["wall_seconds"] > 0 and run["ok"]
        run["wall_vs_multiprocess"] = round(run["wall_seconds"] / mp["wall_seconds"], 3) if ok else None


def check_outputs(variants: dict[str, dict], runs: dict[str, list[dict]], texts: dict,
                  expected_files: int, expected_pages: int) -> list[str]:
    """Problems: a failed variant, missing files, or JSON sets that differ between variants."""
    problems = []
    reference_name = next(iter(variants), None)
    for name, name_runs in runs.items():
        for i, run in enumerate(name_runs):
            label = f"{name} (run {i + 1})"
            if not run["ok"]:
                problems.append(f"{label} failed: {str(run.get('error')).strip().splitlines()[-1:]}")
            if run["files"] != expected_files or run["failed"]:
                problems.append(f"{label}: {run['files']} of {expected_files} files done, {run['failed']} failed")
            if run["json_files"] != expected_pages:
                problems.append(f"{label}: {run['json_files']} JSON files, expected {expected_pages} (one per page)")
            ref_names = runs[reference_name][0]["json_names"]
            if run["json_names"] != ref_names:
                only_here = sorted(set(run["json_names"]) - set(ref_names))[:5]
                only_ref = sorted(set(ref_names) - set(run["json_names"]))[:5]
                problems.append(f"{label}: JSON names differ from {reference_name}: "
                                f"only here {only_here}, only in {reference_name} {only_ref}")
    if reference_name in texts:
        ref = texts[reference_name]
        for name, variant in variants.items():
            same = sum(1 for key, value in texts.get(name, {}).items() if ref.get(key) == value)
            variant["same_texts_as_" + reference_name] = f"{same}/{len(ref)}"
    return problems


def machine_info(cores: int) -> dict:
    import psutil

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cores": cores, "cpu_model": model, "ram_gb": round(psutil.virtual_memory().total / 1024**3, 1),
            "platform": platform.platform(), "hostname": platform.node()}


def versions() -> dict:
    found = {"python": platform.python_version()}
    for dist in ("paddlepaddle", "paddlepaddle-gpu", "paddleocr", "paddlex", "ray", "ray-ocr", "psutil"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return found


# -- the report ------------------------------------------------------------------------

def _fmt(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def format_report(report: dict) -> str:
    s = report["settings"]
    m = report["machine"]
    lines = [
        f"ray_ocr bench {report['date']}  {m['cores']} cores, {m['ram_gb']} GB RAM ({m['cpu_model'] or 'cpu ?'})",
        "versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        (f"input: {s['files']} files ({s['images']} images, {s['pdfs']} PDF), {s['pages']} pages; "
         f"device {s['device']}, K={s['instances']} per device, batch {s['batch_size']}, "
         f"repeat {s['repeat']}; load average before {report['load_before']}"),
        "",
        (f"{'variant':<13}{'files':>6}{'pages':>6}{'wall s':>8}{'files/s':>9}{'pages/s':>9}"
         f"{'x files/s':>10}{'x pages/s':>10}{'1st res s':>10}{'steady p/s':>11}{'tail s':>8}{'peak RSS MB':>12}"
         f"{'CPU s/page':>11}{'other load':>11}"),
    ]
    for name, v in report["variants"].items():
        lines.append(
            f"{name:<13}{v['files']:>6}{v['pages']:>6}{v['wall_seconds']:>8.1f}{v['files_per_second']:>9.3f}"
            f"{v['pages_per_second']:>9.3f}{_fmt(v['ratio_files_per_second']):>10}"
            f"{_fmt(v['ratio_pages_per_second']):>10}{_fmt(v['first_result_seconds'], '.1f'):>10}"
            f"{_fmt(v['steady_pages_per_second'], '.3f'):>11}{_fmt(v['tail_seconds'], '.1f'):>8}"
            f"{v['peak_rss_mb']:>12.0f}{_fmt(v['cpu_seconds_per_page']):>11}{v['other_load_cores']:>11.2f}"
            + ("" if v["ok"] else "  FAILED"))
    for name, reason in report["skipped"].items():
        lines.append(f"{name:<13}{reason}")
    lines.append("")
    lines += _detail_lines(report)
    return "\n".join(lines)


def _detail_lines(report: dict) -> list[str]:
    s, variants = report["settings"], report["variants"]
    lines = []
    if "direct" in variants:
        warm = ", ".join(f"{t['cpu_threads']} threads {t['seconds']:.2f} s" for t in s["direct_warmup"])
        lines.append(f"direct: cpu_threads={s['direct_threads']} ({s['direct_threads_reason']}"
                     + (f"; warm-up {warm}" if warm else "") + ")")
    if "multiprocess" in variants:
        d = variants["multiprocess"]["details"]
        lines.append(f"multiprocess: {d['processes']} spawned processes x cpu_threads={d['cpu_threads']}, "
                     f"batch {d['batch_size']}")
    if "ray_ocr" in variants:
        v = variants["ray_ocr"]
        lines.append(f"ray_ocr: summary.seconds {_fmt(v['details'].get('summary_seconds'), '.1f')} "
                     f"(wall {v['wall_seconds']:.1f} s includes the process start and imports)")
        for actor, a in v["details"].get("actors", {}).items():
            lines.append(f"  {actor}: busy {a['busy_seconds']:.1f} s = {a['busy_ratio']:.0%} of wall, "
                         f"{_fmt(a.get('steady_busy_ratio'), '.1%')} from its first batch's start to its last's end, "
                         f"{a['batches']} batches, first batch back at {_fmt(a['first_batch_t'], '.1f')} s, "
                         f"last at {_fmt(a['last_batch_t'], '.1f')} s")
    if "multiprocess" in variants:
        lines.append("wall time / multiprocess's: " + ", ".join(
            f"{n} {_fmt(v.get('wall_vs_multiprocess'), '.2f')}" for n, v in variants.items()))
    if s["repeat"] > 1:
        lines.append("wall s of every run (the fastest is in the table): " + "; ".join(
            f"{n} " + ", ".join(f"{w:.1f}" for w in v["all_wall_seconds"]) for n, v in variants.items()))
    lines.append("peak RSS: direct its process; multiprocess its workers; ray_ocr driver + ray:: workers. "
                 "Whole trees (Ray's services too): "
                 + ", ".join(f"{n} {v['tree_peak_rss_mb']:.0f} MB" for n, v in variants.items()))
    lines.append("CPU seconds (variant process / its selected children / rest of its tree): "
                 + ", ".join(f"{n} {c['root']:.0f} / {c['selected']:.0f} / {c['rest']:.0f}"
                             for n, v in variants.items() for c in [v["cpu_seconds"]]))
    texts = [f"{n} {v[k]}" for n, v in variants.items() for k in v if k.startswith("same_texts_as_")]
    if texts:
        lines.append("same rec_texts per JSON as the first variant: " + ", ".join(texts))
    lines.append("outputs: " + ("OK, every variant wrote the same JSON files"
                                if not report["problems"] else "PROBLEMS, see below"))
    lines.append("other load: cores busy with processes outside the variant while it ran (other users "
                 f"of a shared machine: noise); load average after: {report['load_after']}")
    return lines


# -- main ------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=None, help="input files (default 40; --quick 4)")
    parser.add_argument("--instances", type=int, default=2, help="K: processes/actors per device (default 2)")
    parser.add_argument("--batch_size", type=int, default=1, help="files per task for multiprocess and ray_ocr")
    parser.add_argument("--device", default="cpu", help="cpu, or gpu:0,1,... (default cpu)")
    parser.add_argument("--variants", default=",".join(ALL_VARIANTS), help="comma list of " + ", ".join(ALL_VARIANTS))
    parser.add_argument("--docs", type=Path, default=None, help="use every image/PDF under DIR")
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant; the fastest is reported")
    parser.add_argument("--direct_threads", type=int, default=None, help="cpu_threads for direct (skips the warm-up)")
    parser.add_argument("--quick", action="store_true",
                        help="CI size: 4 small files (3 images, a 4-page PDF), no warm-up")
    parser.add_argument("--long_pdf", type=int, default=None, metavar="PAGES",
                        help="input: one PAGES-page PDF and 4 images (instead of --files/--docs)")
    parser.add_argument("--pages_per_task", type=int, default=None,
                        help="ray_ocr's --pages_per_task (default: ray_ocr's own)")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary inputs, outputs and logs")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in ALL_VARIANTS]
    if unknown or not args.variants:
        parser.error(f"--variants: unknown {unknown}; choose from {', '.join(ALL_VARIANTS)}")
    args.files = args.files or (4 if args.quick else 40)
    for flag in ("files", "instances", "batch_size", "repeat"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1")
    if args.long_pdf is not None and args.long_pdf < 1:
        parser.error("--long_pdf must be >= 1")
    if args.pages_per_task is not None and args.pages_per_task < 0:
        parser.error("--pages_per_task must be >= 0")
    parse_device(args.device)
    return args


def run_bench(args, work: Path) -> dict:
    cores = cpu_cores()
    if args.long_pdf:
        inputs = make_long_pdf_inputs(args.long_pdf, work / "in")
        sources = [p for p in inputs if p.suffix.lower() != ".pdf"]
    else:
        sources = pick_sources(args.docs, QUICK_MIX if args.quick and args.docs is None else DEFAULT_MIX)
        inputs = make_inputs(sources, args.files, work / "in")
    pages = sum(count_pages(p) for p in inputs)
    pdfs = sum(1 for p in inputs if p.suffix.lower() == ".pdf")
    (work / "logs").mkdir()
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "machine": machine_info(cores),
        "versions": versions(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }
    log(f"{len(inputs)} files ({pdfs} PDF, {pages} pages) from {min(len(sources), len(inputs))} documents; work dir {work}")
    # Warm-up on the first few distinct images: short, and large enough for threads to matter.
    warmup = [str(p) for p in sources if p.suffix.lower() != ".pdf"][:3] or [str(sources[0])]
    threads, reason, trials = choose_direct_threads(args, cores, warmup, work)
    plans = plan_variants(args, inputs, work / "in", cores, threads)
    runs, texts = run_all(args, plans, work)
    variants = {name: representative(name_runs) for name, name_runs in runs.items()}
    add_ratios(variants)
    problems = check_outputs(variants, runs, texts, len(inputs), pages)
    for run in variants.values():
        run.pop("json_names", None)
    report.update({
        "settings": {
            "files": len(inputs), "images": len(inputs) - pdfs, "pdfs": pdfs, "pages": pages,
            "sources": [str(p) for p in sources], "device": args.device, "instances": args.instances,
            "batch_size": args.batch_size, "repeat": args.repeat, "quick": args.quick,
            "long_pdf": args.long_pdf, "pages_per_task": args.pages_per_task,
            "direct_threads": threads, "direct_threads_reason": reason, "direct_warmup": trials,
            "sample_seconds": SAMPLE_SECONDS,
        },
        "variants": variants,
        "runs": {name: [{k: v for k, v in run.items() if k != "json_names"} for run in name_runs]
                 for name, name_runs in runs.items()} if args.repeat > 1 else {},
        "skipped": {name: plan for name, plan in plans.items() if isinstance(plan, str)},
        "problems": problems,
        "load_after": [round(x, 2) for x in os.getloadavg()],
    })
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    # Inherited by every variant process (and Ray's workers): offline, no hoster probe.
    os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
    work = Path(tempfile.mkdtemp(prefix="ray_ocr_bench_"))
    report = None
    try:
        report = run_bench(args, work)
    finally:
        # On problems the logs are the evidence: keep them.
        if args.keep or report is None or report["problems"]:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    if report["problems"]:
        banner = "!" * 78
        print(f"\n{banner}\nBENCH PROBLEMS (outputs differ or a variant failed):", file=sys.stderr)
        for problem in report["problems"]:
            print(f"  - {problem}", file=sys.stderr)
        print(banner, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
