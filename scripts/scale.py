"""ray_ocr's driver on many small files: throughput, memory and exactly-once at scale.

Not an OCR benchmark: the actors run the scheduling stand-in (it decodes each image and
returns its shape, no Paddle), so what is measured is the engine: listing the inputs,
Ray round trips, writing one JSON per input, the manifest, the summary. Each run is a
fresh driver process (its memory is its own, Ray's start counts), sampled by
scripts/_measure.py, over N distinct 8x8 PNGs in nested folders of 1000:

    python -m ray_ocr.run --pipeline ray_ocr.testing.standin:SchedulingTestPipeline \
        --input_glob_pattern '**/*.png' --device cpu --instances_per_device K --batch_size B

Three tables (--parts):
- engine: each --sizes (default 10,000 and 100,000), results written by the driver: wall
  seconds and files/s; the steady files/s (summary.json's timeline: the files of every
  batch after the first over the seconds from the first batch back to the last); the
  driver's peak RSS and CPU per file (all of it, and over the steady stretch); the cost per
  file of the largest size against the smallest (1.0 is linear) and the target (steady
  >= 1000 files/s, driver peak RSS <= 1 GB).
- modes: who writes the results (--write_outputs), local folder vs an S3 server (moto's,
  started here, tests/s3server.py): local-driver, local-actors, s3-driver, s3-actors; the
  driver's CPU per file over the steady stretch (target with the actors writing: 0.05 ms),
  and for S3 the steady rate against the PUT/s the server takes from 8 plain client threads,
  measured in the same run (target with the actors writing: 0.75x).
- listing: a bucket of each --listing_sizes objects (default 10,000 and 100,000) on an
  in-process moto: the driver run on it, stopped --listing_seconds after its first batch
  (each input is a GET by an actor), with summary.json's milestones (first input found,
  Ray up, first batch sent) and its peak RSS; and ray_ocr's lister alone walking the
  whole bucket (seconds, microseconds per object, peak RSS).
Checked for every run that finishes: exactly one result JSON per input with its expected
name, exactly one manifest line per input, all "done", no temporary file left; a failed
check makes the exit code 1. With --repeat, the engine run with the best steady rate of
each size and batch size counts.

    python scripts/scale.py --quick --json /tmp/scale.json          # CI-sized: 2000 files, engine
    python scripts/scale.py                                         # all three tables (~15 min)
    python scripts/scale.py --parts modes --work /tmp/scale --keep  # one table; inputs kept
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

from _measure import Sampler, ratio, report_head, table, write_json

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tests/s3server.py: the tests' S3 server

PIPELINE = "ray_ocr.testing.standin:SchedulingTestPipeline"
GLOB = "**/*.png"
DEFAULT_BATCH = 256  # 64 pays the actors' per-batch cost 4x over; 128..512 alike (2 cores)
TARGET_FILES_PER_SECOND, TARGET_PEAK_RSS_MB = 1000.0, 1024.0
STATE_FILES = {"summary.json", "ray_ocr_manifest.jsonl", "ray_ocr_run.jsonl", "failures.jsonl", "report.html"}
COLUMNS = [("files", "size", "d"), ("batch", "batch_size", "d"), ("wall s", "wall_seconds", ".1f"),
           ("files/s", "files_per_second", ".0f"), ("steady files/s", "steady_files_per_second", ".0f"),
           ("1st batch s", "first_batch_t", ".1f"), ("driver peak MB", "driver_peak_rss_mb", ".0f"),
           ("driver CPU s", "driver_cpu_seconds", ".1f"), ("ms/file", "driver_cpu_ms_per_file", ".3f"),
           ("ms/file steady", "driver_steady_cpu_ms_per_file", ".3f"),
           ("JSONs", "output_jsons", "d"), ("done", "manifest_done", "d"), ("ok", "ok", "")]


def log(message: str) -> None:
    print(f"[scale] {message}", file=sys.stderr, flush=True)


def input_relpath(i: int) -> str:
    """g<group>/d<folder>/img_<i>.png: 1000 files a folder, 10 folders a group."""
    return f"g{i // 10_000:03d}/d{i // 1000:04d}/img_{i:07d}.png"


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


PNG_HEAD = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
PNG_ROWS = b"".join(b"\x00" + bytes((x * 32 + y * 4) % 256 for x in range(24)) for y in range(1, 8))


def tiny_png(i: int) -> bytes:
    """An 8x8 RGB PNG whose first row carries `i`: no two files alike."""
    first_row = b"\x00" + i.to_bytes(6, "big") + bytes(18)
    return PNG_HEAD + chunk(b"IDAT", zlib.compress(first_row + PNG_ROWS, 1)) + chunk(b"IEND", b"")


def inputs_for(work: Path, size: int) -> Path:
    """work/inputs/n<size>, generated once (a marker says it is complete; --work reuses it)."""
    folder = work / "inputs" / f"n{size}"
    if not (folder.parent / f"n{size}.complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        for i in range(size):
            path = folder / input_relpath(i)
            if i % 1000 == 0:
                path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tiny_png(i))
        (folder.parent / f"n{size}.complete").write_text(str(size))
        log(f"{size} inputs generated in {time.perf_counter() - started:.1f} s")
    return folder


def list_outputs(location) -> tuple[list[str], str]:
    """(every file's path under `location`, the manifest's text): a local folder or a URI."""
    import pyarrow.fs

    fs, root = pyarrow.fs.FileSystem.from_uri(str(location))
    root = root.rstrip("/")
    infos = fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True))
    paths = [i.path[len(root) + 1:] for i in infos if i.type == pyarrow.fs.FileType.File]
    with fs.open_input_stream(f"{root}/ray_ocr_manifest.jsonl") as stream:
        return paths, stream.read().decode("utf-8")


def read_summary(location) -> dict:
    import pyarrow.fs

    fs, root = pyarrow.fs.FileSystem.from_uri(str(location))
    with fs.open_input_stream(f"{root.rstrip('/')}/summary.json") as stream:
        return json.loads(stream.read())


def check_outputs(out_dir, size: int) -> dict:
    """Exactly once: one JSON per input with its name, one manifest line per input (all
    "done", no key twice), no temporary (hidden) file left. `out_dir`: a folder or a URI."""
    expected = {input_relpath(i)[:-len(".png")] + ".json" for i in range(size)}
    paths, manifest = list_outputs(out_dir)
    found, temporary = set(), 0
    for path in paths:
        name = path.rsplit("/", 1)[-1]
        temporary += name.startswith(".")
        if name.endswith(".json") and not name.startswith(".") and path not in STATE_FILES:
            found.add(path)
    lines = [json.loads(line) for line in manifest.splitlines() if line]
    done = sum(record["status"] == "done" for record in lines)
    keys = len({record["key"] for record in lines})
    problems = [f"{len(names)} {what} JSONs, e.g. {sorted(names)[:3]}"
                for what, names in (("missing", expected - found), ("unexpected", found - expected)) if names]
    if not len(lines) == keys == done == size:
        problems.append(f"manifest: {len(lines)} lines, {keys} keys, {done} done; expected {size} of each")
    if temporary:
        problems.append(f"{temporary} temporary files left in the output folder")
    return {"output_jsons": len(found), "manifest_lines": len(lines), "manifest_done": done,
            "temporary_files": temporary, "problems": problems}


def run_driver(argv: list[str], log_path: Path, env: dict | None = None, stop_after: float | None = None) -> dict:
    """`python -m ray_ocr.run argv` in a fresh process, sampled: wall seconds, exit code,
    the driver's peak RSS and CPU seconds. `stop_after`: SIGTERM it (a clean stop) that
    many seconds after its dispatch began (its "results written by" line)."""
    with open(log_path, "wb") as log_file:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "ray_ocr.run", *argv], stdout=log_file,
                                stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        sampler = Sampler(proc.pid, counted=("root",), interval=0.1)
        sampler.start()
        if stop_after is not None:
            stop_once_dispatching(proc, log_path, stop_after)
        sampler.finish()
        wall = time.perf_counter() - started
        code = proc.wait()
    cpu = sampler.cpu_seconds()["root"]
    return {"exit_code": code, "wall_seconds": round(wall, 2), "driver_peak_rss_mb": round(sampler.root_peak_mb, 1),
            "tree_peak_rss_mb": round(sampler.tree_peak_mb), "driver_cpu_seconds": cpu}


def stop_once_dispatching(proc, log_path: Path, seconds: float) -> None:
    import signal

    while proc.poll() is None and b"results written by" not in log_path.read_bytes():
        time.sleep(0.2)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)


def timeline_numbers(summary: dict) -> dict:
    """From summary.json: batches, when the first and last came back, the steady rate
    (files of the batches after the first over the seconds between), the driver's CPU
    per input over that stretch, and the actors' busy seconds."""
    timeline = sorted(summary["timeline"], key=lambda event: event["t"])
    first, last = timeline[0], timeline[-1]
    later_files = sum(e["files"] for e in timeline[1:])
    span = last["t"] - first["t"]
    return {"summary_wall_seconds": summary["wall_seconds"], "batches": len(timeline), "first_batch_t": first["t"],
            "last_batch_t": last["t"], "milestones": summary.get("milestones", {}),
            "steady_files_per_second": round(later_files / span, 1) if span > 0 else None,
            **{f"{name}_steady_cpu_ms_per_file": round(1000 * (last[field] - first[field]) / later_files, 4)
               if later_files else None for name, field in (("driver", "driver_cpu"), ("loop", "driver_loop_cpu"))},
            "actors_busy_seconds": round(sum(a["busy_seconds"] for a in summary["actors"].values()), 2)}


def stand_in_args(input_dir, out, batch: int, instances: int) -> list[str]:
    return ["--pipeline", PIPELINE, "--input_dir", str(input_dir), "--output_dir", str(out), "--input_glob_pattern",
            GLOB, "--device", "cpu", "--instances_per_device", str(instances), "--batch_size", str(batch),
            "--progress_interval", "-1"]


def measure(size: int, batch: int, args, work: Path, mode: str | None = None, s3=None) -> dict:
    """One driver process over `size` inputs; its numbers and its checks. `mode` (see
    MODES) says where the results go and who writes them; None: the engine table's run."""
    input_dir = inputs_for(work, size)
    name = f"n{size}_b{batch}" + (f"_{mode}" if mode else "")
    out, extra, env = fresh_folder(work / "out" / name), [], {}
    if mode:
        where, writer = MODES[mode]
        extra = ["--write_outputs", writer]
        if where == "s3":
            out, env = s3.uri(name), s3.env
    os.sync()  # fresh inputs' and deleted outputs' writeback is not the driver's to wait for
    log(f"{size} files, batch {batch}, K={args.instances}{', ' + mode if mode else ''} ...")
    run = {"size": size, "batch_size": batch, "instances": args.instances, "mode": mode,
           **run_driver(stand_in_args(input_dir, out, batch, args.instances) + extra,
                        work / "out" / f"{name}.log", env)}
    run.update(files_per_second=round(size / run["wall_seconds"], 1),
               driver_cpu_ms_per_file=round(1000 * run["driver_cpu_seconds"] / size, 3))
    try:
        run.update(timeline_numbers(read_summary(out)), **check_outputs(out, size))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        run["problems"] = [f"no usable summary.json or manifest ({type(exc).__name__}: {exc})"]
    if run["exit_code"] != 0:
        run["problems"].insert(0, f"driver exit code {run['exit_code']}; log {work / 'out' / name}.log")
    run["ok"] = not run["problems"]
    log(f"PROBLEMS: {'; '.join(run['problems'])}" if run["problems"] else
        f"{size} files in {run['wall_seconds']:.1f} s, steady {run['steady_files_per_second']} files/s, "
        f"driver {run['driver_steady_cpu_ms_per_file']} ms CPU per file (steady), "
        f"peak {run['driver_peak_rss_mb']:.0f} MB")
    if run["ok"] and not args.keep and not mode:
        shutil.rmtree(out, ignore_errors=True)
    return run


# -- where the results go: the four modes of the "who writes" table -----------------
MODES = {"local-driver": ("local", "driver"), "local-actors": ("local", "actors"),
         "s3-driver": ("s3", "driver"), "s3-actors": ("s3", "actors")}
MODE_COLUMNS = [("files", "size", "d"), ("steady files/s", "steady_files_per_second", ".0f"),
                ("x S3 capacity", "of_capacity", ".2f"), ("driver ms CPU/file (steady)", "driver_steady_cpu_ms_per_file",
                                                          ".3f"),
                ("its loop's", "loop_steady_cpu_ms_per_file", ".3f"),
                ("driver ms CPU/file (all)", "driver_cpu_ms_per_file", ".3f"),
                ("driver peak MB", "driver_peak_rss_mb", ".0f"), ("ok", "ok", "")]
TARGET_DRIVER_MS, TARGET_OF_CAPACITY = 0.05, 0.75


class S3:
    """moto's S3 server on loopback (tests/s3server.py), as the driver and its actors
    reach it: a URI per output folder, the credentials in the environment."""

    def __init__(self, port: int):
        from tests.s3server import CREDENTIALS, filesystem, query

        self.port, self.env, self.query = port, dict(CREDENTIALS), query(port)
        self.fs = filesystem(port)
        self.fs.create_dir("scale")

    def uri(self, name: str) -> str:
        return f"s3://scale/{name}?{self.query}"

    def put_capacity(self, puts: int = 800, threads: int = 8, size: int = 300) -> float:
        """PUT/s the server takes from `threads` plain client threads (pyarrow's S3 client,
        ray_ocr's own), objects of `size` bytes (a stand-in result's JSON)."""
        from concurrent.futures import ThreadPoolExecutor

        body = b"x" * size
        prefix = f"scale/capacity_{time.monotonic_ns()}"

        def put(i: int) -> None:
            with self.fs.open_output_stream(f"{prefix}/{i:06d}.json") as stream:
                stream.write(body)

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(put, range(puts)))
        return round(puts / (time.perf_counter() - started), 1)


def measure_modes(args, work: Path) -> dict:
    """Each mode once, local ones at --mode_files inputs and S3 ones at --s3_files (moto
    takes about 100 PUT/s here); the S3 server's capacity before and after, averaged."""
    from tests.s3server import moto_server

    runs = [measure(args.mode_files, DEFAULT_BATCH, args, work, mode)
            for mode in args.modes if MODES[mode][0] == "local"]
    capacity = None
    s3_modes = [mode for mode in args.modes if MODES[mode][0] == "s3"]
    if s3_modes:
        with moto_server() as port:
            s3 = S3(port)
            before = s3.put_capacity()
            runs += [measure(args.s3_files, DEFAULT_BATCH, args, work, mode, s3) for mode in s3_modes]
            capacity = round((before + s3.put_capacity()) / 2, 1)
        log(f"S3 server capacity: {capacity} PUT/s from 8 client threads (before the runs {before})")
    for run in runs:
        if MODES[run["mode"]][0] == "s3" and run.get("steady_files_per_second"):
            run["of_capacity"] = ratio(run["steady_files_per_second"], capacity)  # one PUT per result
    return {"runs": runs, "s3_put_capacity": capacity}


# -- lazy listing of a large bucket ----------------------------------------------------
LISTING_COLUMNS = [("objects", "objects", "d"), ("first input s", "first_input_found", ".2f"),
                   ("Ray up s", "ray_started", ".1f"), ("first batch sent s", "first_batch_sent", ".1f"),
                   ("driver peak MB", "driver_peak_rss_mb", ".0f"), ("files done", "files_done", "d"),
                   ("walk s", "walk_seconds", ".1f"), ("walk us/object", "walk_us_per_object", ".1f"),
                   ("walk CPU us/object", "walk_cpu_us_per_object", ".1f"),
                   ("walk peak MB", "walk_peak_rss_mb", ".0f")]
# The listing's part of the start: the first input found (Ray's own start comes after it).
TARGET_FIRST_INPUT_S, TARGET_LISTING_RSS_MB = 5.0, 300.0
LISTING_BATCH = 64  # each input is a GET by an actor: small batches stop soon after the signal


def fill_bucket(bucket: str, count: int) -> None:
    """`count` tiny PNGs in nested folders (input_relpath), put straight into the
    in-process moto backend: 100,000 PUTs over HTTP would take a quarter of an hour."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(bucket, "us-east-1")
    for i in range(count):
        backend.put_object(bucket, input_relpath(i), tiny_png(i))


WALK = """
import sys, threading, time
import psutil
from ray_ocr.io.storage import open_folder
me, peak = psutil.Process(), [0]
def sample():  # during the walk (ru_maxrss would also count pyarrow's S3 shutdown at exit)
    while True:
        peak[0] = max(peak[0], me.memory_info().rss)
        time.sleep(0.01)
threading.Thread(target=sample, daemon=True).start()
started, cpu = time.perf_counter(), time.process_time(); first = None; count = 0
for group in open_folder(sys.argv[1]).groups("**/*.png"):
    first = first or time.perf_counter() - started
    count += len(group)
print(count, first, time.perf_counter() - started, max(peak[0], me.memory_info().rss) / 2**20,
      time.process_time() - cpu)
"""


def measure_listing(args, work: Path) -> list[dict]:
    """Per size: a bucket of that many objects on an in-process moto, and its row."""
    from moto.server import ThreadedMotoServer

    from tests.helpers import free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        return [listing_row(count, port, args, work) for count in args.listing_sizes]
    finally:
        server.stop()


def listing_row(count: int, port: int, args, work: Path) -> dict:
    """The driver run on a bucket of `count` objects for --listing_seconds (then stopped:
    each input is a GET by an actor), its milestones and peak RSS; and a full lazy walk
    of the bucket by ray_ocr's lister alone (time, its CPU, its peak RSS)."""
    from tests.s3server import CREDENTIALS, query

    bucket = f"listing{count}"
    started = time.perf_counter()
    fill_bucket(bucket, count)
    log(f"bucket of {count} objects filled in {time.perf_counter() - started:.1f} s; running the driver ...")
    uri, out = f"s3://{bucket}/?{query(port)}", fresh_folder(work / "out" / f"listing{count}")
    run = run_driver(stand_in_args(uri, out, LISTING_BATCH, args.instances), work / "out" / f"listing{count}.log",
                     CREDENTIALS, stop_after=args.listing_seconds)
    if not (out / "summary.json").exists():  # killed before it wrote one: say so, go on
        return {"objects": count, "exit_code": run["exit_code"], "driver_peak_rss_mb": None,
                "problem": f"no summary.json (exit code {run['exit_code']}); log in {work / 'out'}"}
    summary = json.loads((out / "summary.json").read_text())
    walked, first, seconds, peak_mb, cpu = subprocess.run(
        [sys.executable, "-c", WALK, uri], capture_output=True, text=True, env={**os.environ, **CREDENTIALS},
        check=True).stdout.split()
    row = {"objects": count, **summary.get("milestones", {}), "files_done": summary["succeeded"],
           "driver_peak_rss_mb": run["driver_peak_rss_mb"], "exit_code": run["exit_code"],
           "walk_objects": int(walked), "walk_first_group_seconds": round(float(first), 3),
           "walk_seconds": round(float(seconds), 1), "walk_us_per_object": round(1e6 * float(seconds) / int(walked), 1),
           "walk_peak_rss_mb": round(float(peak_mb)),
           "walk_cpu_us_per_object": round(1e6 * float(cpu) / int(walked), 1)}
    log(f"{count} objects: {row}")
    return row


def fresh_folder(folder: Path) -> Path:
    """`folder` emptied (an earlier run's outputs gone), its parent made."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder


def best_runs(runs: list[dict]) -> dict[tuple[int, int], dict]:
    """Per (size, batch size), the run with the best steady rate (noise only slows)."""
    best: dict[tuple[int, int], dict] = {}
    for r in (r for r in runs if r["ok"]):
        key = (r["size"], r["batch_size"])
        if key not in best or (r["steady_files_per_second"] or 0) > (best[key]["steady_files_per_second"] or 0):
            best[key] = r
    return best


def scaling(runs: list[dict]) -> tuple[list[dict], dict | None]:
    """Per batch size, the cost per file of the largest size over the smallest's; and the
    target at the largest size."""
    best, ratios = best_runs(runs), []
    for batch in sorted({b for _, b in best}):
        sizes = sorted(s for s, b in best if b == batch)
        small, large = best[(sizes[0], batch)], best[(sizes[-1], batch)]
        if len(sizes) > 1:
            ratios.append({"batch_size": batch, "small": small["size"], "large": large["size"],
                           "wall_per_file": ratio(large["wall_seconds"] / large["size"],
                                                  small["wall_seconds"] / small["size"]),
                           "steady_per_file": ratio(small["steady_files_per_second"], large["steady_files_per_second"]),
                           "driver_cpu_per_file": ratio(large["driver_cpu_ms_per_file"],
                                                        small["driver_cpu_ms_per_file"]),
                           "driver_peak_kb_per_extra_file": round(
                               (large["driver_peak_rss_mb"] - small["driver_peak_rss_mb"]) * 1024
                               / (large["size"] - small["size"]), 3)})
    if not best:
        return ratios, None
    top = max((r for r in best.values() if r["size"] == max(s for s, _ in best)),
              key=lambda r: r["steady_files_per_second"] or 0)
    return ratios, {"size": top["size"], "batch_size": top["batch_size"],
                    "met": (top["steady_files_per_second"] or 0) >= TARGET_FILES_PER_SECOND
                    and top["driver_peak_rss_mb"] <= TARGET_PEAK_RSS_MB,
                    "target": f">= {TARGET_FILES_PER_SECOND:.0f} files/s steady, "
                              f"driver peak RSS <= {TARGET_PEAK_RSS_MB:.0f} MB"}


def format_report(report: dict) -> str:
    m = report["machine"]
    lines = [f"ray_ocr scale {report['date']}: {m['cores']} cores, {m['ram_gb']} GB; {PIPELINE}, "
             f"K={report['settings']['instances']}; load before {m['load_average']}", ""]
    if report["runs"]:
        lines += table(COLUMNS, report["runs"])
        lines.append("steady: files of the batches after the first / seconds from the first batch back to the last "
                     "(summary.json); wall: the driver process's start to its exit")
    lines += [f"cost per file, {s['large']} vs {s['small']} files (batch {s['batch_size']}; 1.0 = linear): "
              f"wall x{s['wall_per_file']}, steady x{s['steady_per_file']}, driver CPU x{s['driver_cpu_per_file']}; "
              f"driver peak RSS {s['driver_peak_kb_per_extra_file']:+.3f} KB per extra file" for s in report["scaling"]]
    if report["target"]:
        t = report["target"]
        lines.append(f"target at {t['size']} files, batch {t['batch_size']} ({t['target']}): "
                     + ("MET" if t["met"] else "NOT MET"))
    lines += format_modes(report.get("modes")) + format_listing(report.get("listing"))
    every = report["runs"] + (report.get("modes") or {}).get("runs", [])
    return "\n".join(lines + [f"PROBLEM: {r['size']} files, batch {r['batch_size']}, {r.get('mode') or 'engine'}: {p}"
                              for r in every for p in r["problems"]])


def format_modes(modes: dict | None) -> list[str]:
    if not modes:
        return []
    lines = ["", "who writes the results (--write_outputs; batch 256):"]
    lines += table(MODE_COLUMNS, modes["runs"], label="mode", width=14)
    lines.append(f"S3 server capacity: {modes['s3_put_capacity']} PUT/s from 8 plain client threads; "
                 "driver ms CPU/file (steady): the driver's CPU seconds (all threads; its loop's: the dispatch "
                 "thread's alone) from the first batch back to the last over the files in between "
                 "(summary.json's timeline)")
    for run in (r for r in modes["runs"] if MODES[r["mode"]][1] == "actors" and r["ok"]):
        met = (run["driver_steady_cpu_ms_per_file"] or 1) <= TARGET_DRIVER_MS and (
            MODES[run["mode"]][0] == "local" or (run.get("of_capacity") or 0) >= TARGET_OF_CAPACITY)
        lines.append(f"target {run['mode']} (driver <= {TARGET_DRIVER_MS} ms CPU per file"
                     + ("" if MODES[run["mode"]][0] == "local" else f", >= {TARGET_OF_CAPACITY}x the S3 capacity")
                     + "): " + ("MET" if met else "NOT MET"))
    return lines


def format_listing(rows: list[dict] | None) -> list[str]:
    if not rows:
        return []
    lines = ["", "lazy listing of a bucket (the driver stopped after --listing_seconds; the walk: ray_ocr's "
                 "lister alone over the whole bucket; walk CPU: the lister's own, without the server's):"]
    lines += table(LISTING_COLUMNS, rows)
    top = max(rows, key=lambda r: r["objects"])
    met = "problem" not in top and (top["first_input_found"] < TARGET_FIRST_INPUT_S
                                    and max(top["driver_peak_rss_mb"], top["walk_peak_rss_mb"]) < TARGET_LISTING_RSS_MB)
    lines.append(f"target at {top['objects']} objects (first input listed < {TARGET_FIRST_INPUT_S:.0f} s, "
                 f"driver and walk peak RSS < {TARGET_LISTING_RSS_MB:.0f} MB): " + ("MET" if met else "NOT MET"))
    return lines + [f"PROBLEM: listing {r['objects']} objects: {r['problem']}" for r in rows if "problem" in r]


def int_list(text: str) -> list[int]:
    values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma list of integers >= 1")
    return values


def name_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in MODES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma list of {', '.join(MODES)}")
    return names


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int_list, default=None, help="input counts (default 10000,100000; --quick 2000)")
    p.add_argument("--batch_size", type=int_list, default=[DEFAULT_BATCH],
                   help=f"batch sizes; each size runs with each (default {DEFAULT_BATCH})")
    p.add_argument("--instances", type=int, default=2, help="K: actors on the CPU (default 2)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each size and batch size (default 1)")
    p.add_argument("--quick", action="store_true", help="CI size: 2000 files, the engine table only")
    p.add_argument("--parts", default="engine,modes,listing",
                   help="which tables: engine (sizes), modes (who writes), listing (default all three)")
    p.add_argument("--modes", type=name_list, default=list(MODES), help=f"of {', '.join(MODES)} (default all)")
    p.add_argument("--mode_files", type=int, default=10_000, help="inputs of each local mode (default 10000)")
    p.add_argument("--s3_files", type=int, default=2000, help="inputs of each S3 mode (default 2000)")
    p.add_argument("--listing_sizes", type=int_list, default=[10_000, 100_000],
                   help="bucket sizes (default 10000,100000)")
    p.add_argument("--listing_seconds", type=float, default=30.0,
                   help="stop each listing run's driver this long after its first batch (default 30)")
    p.add_argument("--work", type=Path, default=None, help="work folder; its inputs are kept and reused")
    p.add_argument("--keep", action="store_true", help="keep the work folder and the outputs")
    p.add_argument("--json", type=Path, default=None, help="write every number here")
    args = p.parse_args(argv)
    args.sizes = sorted(set(args.sizes or ([2000] if args.quick else [10_000, 100_000])))
    args.parts = {"engine"} if args.quick else {part.strip() for part in args.parts.split(",")}
    if not args.parts <= {"engine", "modes", "listing"}:
        p.error(f"--parts {','.join(sorted(args.parts))}: expected engine, modes, listing")
    if min(args.instances, args.repeat) < 1:
        p.error("--instances and --repeat must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="ray_ocr_scale_"))
    report = {**report_head(),
              "settings": {"sizes": args.sizes, "batch_sizes": args.batch_size, "instances": args.instances,
                           "repeat": args.repeat, "pipeline": PIPELINE, "glob": GLOB, "work": str(work),
                           "parts": sorted(args.parts)}}
    runs = [measure(size, batch, args, work) for _ in range(args.repeat) for size in args.sizes
            for batch in args.batch_size] if "engine" in args.parts else []
    ratios, target = scaling(runs)
    report.update(runs=runs, scaling=ratios, target=target)
    if "modes" in args.parts:
        report["modes"] = measure_modes(args, work)
    if "listing" in args.parts:
        report["listing"] = measure_listing(args, work)
    print(format_report(report))
    write_json(report, args.json)
    failed = any(not r["ok"] for r in runs + (report.get("modes") or {}).get("runs", [])) or any(
        "problem" in r for r in report.get("listing") or [])
    if args.keep or args.work or failed:
        log(f"kept {work}" + (" (logs and outputs of the failed runs)" if failed else ""))
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
