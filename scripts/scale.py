"""ray_ocr's driver on many small files: throughput, memory and exactly-once at scale.

Not an OCR benchmark: the actors run the scheduling stand-in (it decodes each image and
returns its shape, no Paddle), so what is measured is the engine: listing the inputs,
shipping bytes, Ray round trips, writing one JSON per input, the manifest, the summary.
For each size (and batch size) it generates N distinct 8x8 PNGs in nested folders of
1000 and runs, in a fresh process (the driver: its memory is its own, Ray's start counts),

    python -m ray_ocr.run --pipeline ray_ocr.testing.standin:SchedulingTestPipeline \\
        --input_glob_pattern '**/*.png' --device cpu --instances_per_device K --batch_size B

Measured: wall seconds (process start to exit) and files/s over it; the steady files/s
(summary.json's timeline: the files of every batch after the first over the seconds from
the first batch back to the last); when the first batch came back; the driver's peak RSS
and CPU seconds (per file), sampled by scripts/_measure.py. Checked: exactly one result
JSON per input with its expected name, exactly one manifest line per input, all "done", no
temporary file left; a run that fails a check makes the exit code 1. The report ends with
the cost per file of the largest size against the smallest (1.0 is linear) and whether the
largest meets the target (steady >= 1000 files/s, driver peak RSS <= 1 GB). With --repeat,
the run with the best steady rate of each size and batch size counts.

    python scripts/scale.py --quick --json /tmp/scale.json          # CI-sized: 2000 files
    python scripts/scale.py                                         # 10000 and 100000 files
    python scripts/scale.py --sizes 10000 --batch_size 64,256 --repeat 2 --work /tmp/scale

--modes (opt-in) compares who writes the outputs, side by side: local-driver, local-actors
(--write_outputs driver|actors into a local folder, at each --sizes) and s3-driver,
s3-actors (into s3://scale/... on a moto server started here, at --uri_size: moto takes
only ~100 PUT/s). It first measures that server's capacity: PUT/s from 8 plain boto3
threads; each s3 mode's steady outputs/s is reported as a ratio to it (target for the
actors: >= 0.75x). Driver CPU per input is reported over the whole process (Ray's start
included) and steady: from the first manifest line to the last (target for actor writes:
<= 0.05 ms). --listing N,M fills buckets of N and M tiny PNGs (folders of 1000) through
an in-process moto's backend (no HTTP), runs a driver over each and reports the seconds
from its start to its first output JSON and its peak RSS (targets: < 5 s whatever the
size, < 300 MB); the run is stopped (SIGTERM) --listing_seconds after that.

    python scripts/scale.py --modes all --sizes 1000 --uri_size 200 --listing 10000,100000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

from _measure import Sampler, ratio, report_head, table, write_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import s3server  # noqa: E402  (moto's S3 server and its client settings)

PIPELINE = "ray_ocr.testing.standin:SchedulingTestPipeline"
GLOB = "**/*.png"
MODES = ("local-driver", "local-actors", "s3-driver", "s3-actors")
URI_BUCKET, CAPACITY_THREADS = "scale", 8
TARGET_DRIVER_MS, TARGET_CAPACITY_RATIO, TARGET_FIRST_BATCH_S, TARGET_LISTING_RSS_MB = 0.05, 0.75, 5.0, 300.0
DEFAULT_BATCH = 256  # 64 pays the actors' per-batch cost 4x over; 128..512 alike (2 cores)
TARGET_FILES_PER_SECOND, TARGET_PEAK_RSS_MB = 1000.0, 1024.0
STATE_FILES = {"summary.json", "ray_ocr_manifest.jsonl", "ray_ocr_run.jsonl", "failures.jsonl", "report.html"}
COLUMNS = [("files", "size", "d"), ("batch", "batch_size", "d"), ("wall s", "wall_seconds", ".1f"),
           ("files/s", "files_per_second", ".0f"), ("steady files/s", "steady_files_per_second", ".0f"),
           ("1st batch s", "first_batch_t", ".1f"), ("driver peak MB", "driver_peak_rss_mb", ".0f"),
           ("driver CPU s", "driver_cpu_seconds", ".1f"), ("ms/file", "driver_cpu_ms_per_file", ".3f"),
           ("JSONs", "output_jsons", "d"), ("done", "manifest_done", "d"), ("        mode", "mode", ""), ("ok", "ok", "")]
MODE_COLUMNS = [("        mode", "mode", ""), ("inputs", "size", "d"), ("wall s", "wall_seconds", ".1f"),
                ("inputs/s", "files_per_second", ".0f"), ("steady inputs/s", "steady_files_per_second", ".0f"),
                ("driver ms/input", "driver_cpu_ms_per_file", ".3f"),
                ("steady ms/input", "driver_steady_cpu_ms_per_file", ".4f"), ("x capacity", "capacity_ratio", ".2f"),
                ("driver peak MB", "driver_peak_rss_mb", ".0f")]
LISTING_COLUMNS = [("objects", "size", "d"), ("1st output s", "first_output_seconds", ".1f"),
                   ("1st batch t (summary)", "first_batch_t", ".1f"), ("driver peak MB", "driver_peak_rss_mb", ".0f"),
                   ("done before stop", "inputs_done", "d"), ("met", "met", "")]


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


def check_outputs(out_dir: Path, size: int) -> dict:
    """Exactly once: one JSON per input with its name, one manifest line per input (all
    "done", no key twice), no temporary (hidden) file left."""
    names = []
    for folder, _dirs, files in os.walk(out_dir):
        rel = os.path.relpath(folder, out_dir)
        names += [name if rel == "." else f"{rel}/{name}" for name in files]
    return check_names(names, (out_dir / "ray_ocr_manifest.jsonl").read_text(), size)


class Progress(threading.Thread):
    """Every 0.1 s: the driver's CPU seconds and the manifest's size in bytes (it grows
    by one line per finished input), to tell the driver's steady CPU per input from its
    start-up (Ray's start, imports) and shut-down."""

    def __init__(self, pid: int, manifest: Path):
        super().__init__(daemon=True)
        import psutil

        self.proc, self.manifest, self.samples = psutil.Process(pid), manifest, []
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        while not self._halt.is_set():
            try:
                times = self.proc.cpu_times()
                size = self.manifest.stat().st_size if self.manifest.exists() else 0
            except (psutil.Error, OSError):
                break
            self.samples.append((time.perf_counter(), times.user + times.system, size))
            self._halt.wait(0.1)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def steady_ms_per_input(self, lines: int) -> float | None:
        """Driver CPU ms per input between the first manifest line and the last."""
        if not self.samples or lines < 2:
            return None
        final = self.samples[-1][2]
        grown = [s for s in self.samples if 0 < s[2]]
        ended = [s for s in grown if s[2] >= final]
        if not grown or not ended or final <= 0:
            return None
        first, last = grown[0], ended[0]
        inputs = (last[2] - first[2]) * lines / final
        return round(1000 * (last[1] - first[1]) / inputs, 4) if inputs >= 1 else None


def uri_outputs(port: int, prefix: str) -> tuple[list[str], str]:
    """Every object's key under s3://<prefix> (relative), and the manifest's text."""
    import pyarrow.fs

    fs = s3server.filesystem(port)
    names = [info.path[len(prefix) + 1:] for info in fs.get_file_info(pyarrow.fs.FileSelector(prefix, recursive=True))
             if info.type == pyarrow.fs.FileType.File]
    with fs.open_input_stream(f"{prefix}/ray_ocr_manifest.jsonl") as handle:
        return names, handle.read().decode()


def check_names(names, manifest_text: str, size: int) -> dict:
    """Exactly once over output names (relative paths) and the manifest's text."""
    expected = {input_relpath(i)[:-len(".png")] + ".json" for i in range(size)}
    found, temporary = set(), 0
    for path in names:
        name = path.rsplit("/", 1)[-1]
        temporary += name.startswith(".")
        if name.endswith(".json") and not name.startswith(".") and path not in STATE_FILES:
            found.add(path)
    lines = [json.loads(line) for line in manifest_text.splitlines() if line]
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


def measure(size: int, batch: int, args, work: Path, mode: str = "default", port: int | None = None) -> dict:
    """One driver process over `size` inputs; its numbers and its checks. `mode`:
    "default" (no --write_outputs), or MODES' local-/s3- (output folder) x -driver/-actors
    (who writes the outputs); s3 modes write to the moto server on `port`."""
    from ray_ocr.io.storage import UriFolder

    tag = f"n{size}_b{batch}" + ("" if mode == "default" else f"_{mode}")
    input_dir, out_dir = inputs_for(work, size), work / "out" / tag
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if mode.startswith("s3-"):
        prefix = f"{URI_BUCKET}/{tag}-{time.time_ns()}"
        output, env = f"s3://{prefix}?{s3server.query(port)}", {**env, **s3server.CREDENTIALS}
        state = Path(UriFolder(output).state_dir)
        shutil.rmtree(state, ignore_errors=True)
    else:
        output = state = out_dir
    os.sync()  # fresh inputs' and deleted outputs' writeback is not the driver's to wait for
    log(f"{size} files, batch {batch}, K={args.instances}, mode {mode} ...")
    cmd = [sys.executable, "-m", "ray_ocr.run", "--pipeline", PIPELINE, "--input_dir", str(input_dir),
           "--output_dir", str(output), "--input_glob_pattern", GLOB, "--device", "cpu",
           "--instances_per_device", str(args.instances), "--batch_size", str(batch), "--progress_interval", "-1"]
    if mode != "default":
        cmd += ["--write_outputs", mode.split("-")[1]]
    log_path = out_dir.parent / f"{tag}.log"
    with open(log_path, "wb") as log_file:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        sampler = Sampler(proc.pid, counted=("root",), interval=0.1)
        progress = Progress(proc.pid, state / "ray_ocr_manifest.jsonl")
        sampler.start()
        progress.start()
        sampler.finish()
        progress.stop()
        wall = time.perf_counter() - started
        code = proc.wait()
    run = {"size": size, "batch_size": batch, "instances": args.instances, "mode": mode, "exit_code": code,
           "wall_seconds": round(wall, 2), "files_per_second": round(size / wall, 1),
           "driver_peak_rss_mb": round(sampler.root_peak_mb, 1), "tree_peak_rss_mb": round(sampler.tree_peak_mb),
           "driver_cpu_seconds": sampler.cpu_seconds()["root"],
           "driver_cpu_ms_per_file": round(1000 * sampler.cpu_seconds()["root"] / size, 3),
           "driver_steady_cpu_ms_per_file": progress.steady_ms_per_input(size)}
    try:
        summary = json.loads((state / "summary.json").read_text())
        timeline = sorted(summary["timeline"], key=lambda event: event["t"])
        first, last = timeline[0]["t"], timeline[-1]["t"]
        run.update(summary_wall_seconds=summary["wall_seconds"], batches=len(timeline), first_batch_t=first,
                   last_batch_t=last, steady_files_per_second=round(sum(e["files"] for e in timeline[1:])
                                                                    / (last - first), 1) if last > first else None,
                   actors_busy_seconds=round(sum(a["busy_seconds"] for a in summary["actors"].values()), 2),
                   **(check_outputs(out_dir, size) if not mode.startswith("s3-")
                      else check_names(*uri_outputs(port, prefix), size)))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        run["problems"] = [f"no usable summary.json or manifest ({type(exc).__name__}: {exc})"]
    if code != 0:
        run["problems"].insert(0, f"driver exit code {code}; log {log_path}")
    run["ok"] = not run["problems"]
    log(f"PROBLEMS: {'; '.join(run['problems'])}" if run["problems"] else
        f"{size} files in {wall:.1f} s, steady {run['steady_files_per_second']} files/s, "
        f"driver peak {run['driver_peak_rss_mb']:.0f} MB, driver CPU {run['driver_cpu_ms_per_file']} ms/file "
        f"({run['driver_steady_cpu_ms_per_file']} steady)")
    if run["ok"] and not args.keep:
        shutil.rmtree(out_dir, ignore_errors=True)
        if mode.startswith("s3-"):
            shutil.rmtree(state, ignore_errors=True)
    return run


def put_capacity(port: int, puts: int) -> dict:
    """PUT/s the S3 server accepts from CAPACITY_THREADS plain boto3 clients (small objects)."""
    import boto3

    def client():
        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    body = json.dumps({"shape": [8, 8, 3], "pad": "x" * 120}).encode()
    per_thread = max(1, puts // CAPACITY_THREADS)

    def worker(n: int) -> None:
        c = client()
        for i in range(per_thread):
            c.put_object(Bucket=URI_BUCKET, Key=f"capacity/t{n}/o{i}.json", Body=body)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(CAPACITY_THREADS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    total = per_thread * CAPACITY_THREADS
    log(f"S3 server capacity: {total} PUTs from {CAPACITY_THREADS} threads in {seconds:.1f} s")
    return {"threads": CAPACITY_THREADS, "puts": total, "object_bytes": len(body), "seconds": round(seconds, 2),
            "puts_per_second": round(total / seconds, 1)}


def run_modes(args, work: Path) -> tuple[list[dict], dict | None]:
    """Each mode of --modes side by side: local modes at each --sizes, s3 modes at
    --uri_size on a moto server started here (and its PUT capacity, measured first)."""
    runs, capacity = [], None
    local = [m for m in args.modes if m.startswith("local-")]
    uri = [m for m in args.modes if m.startswith("s3-")]
    runs += [measure(size, batch, args, work, mode)
             for _ in range(args.repeat) for size in args.sizes for batch in args.batch_size for mode in local]
    if uri:
        with s3server.moto_server() as port:
            s3server.filesystem(port).create_dir(URI_BUCKET)
            capacity = put_capacity(port, args.capacity_puts)
            runs += [measure(args.uri_size, batch, args, work, mode, port)
                     for _ in range(args.repeat) for batch in args.batch_size for mode in uri]
        for r in runs:
            if r["mode"].startswith("s3-"):
                r["capacity_ratio"] = ratio(r.get("steady_files_per_second"), capacity["puts_per_second"])
                r["capacity_ratio_wall"] = ratio(r["files_per_second"], capacity["puts_per_second"])
    return runs, capacity


def listing_run(size: int, args, work: Path, port: int) -> dict:
    """A driver over s3://list<size>/ (size objects, folders of 1000): seconds from its
    process start to the first output JSON, its peak RSS meanwhile and --listing_seconds
    after; then SIGTERM (it finishes the batches in flight and writes summary.json)."""
    out_dir = work / "out" / f"listing_n{size}"
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "ray_ocr.run", "--pipeline", PIPELINE,
           "--input_dir", f"s3://list{size}/?{s3server.query(port)}", "--output_dir", str(out_dir),
           "--input_glob_pattern", GLOB, "--device", "cpu", "--instances_per_device", str(args.instances),
           "--batch_size", str(args.batch_size[0]), "--progress_interval", "-1"]
    log(f"listing: {size} objects ...")
    log_path = work / "out" / f"listing_n{size}.log"
    first = None
    with open(log_path, "wb") as log_file:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                                env={**os.environ, **s3server.CREDENTIALS}, start_new_session=True)
        sampler = Sampler(proc.pid, counted=("root",), interval=0.1)
        sampler.start()
        deadline = started + args.listing_timeout
        while first is None and proc.poll() is None and time.perf_counter() < deadline:
            if any(name.endswith(".json") and name not in STATE_FILES
                   for _d, _s, names in os.walk(out_dir) for name in names):
                first = time.perf_counter() - started
                break
            time.sleep(0.05)
        until = time.perf_counter() + args.listing_seconds
        while proc.poll() is None and time.perf_counter() < until:
            time.sleep(0.1)
        stopping = time.perf_counter()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        killer = threading.Timer(120, lambda: os.killpg(proc.pid, signal.SIGKILL))
        killer.start()
        sampler.finish()
        killer.cancel()
        code = proc.wait()
    run = {"size": size, "exit_code": code, "first_output_seconds": round(first, 2) if first else None,
           "driver_peak_rss_mb": round(sampler.root_peak_mb, 1), "driver_cpu_seconds": sampler.cpu_seconds()["root"],
           "stop_seconds": round(time.perf_counter() - stopping, 1)}
    try:
        summary = json.loads((out_dir / "summary.json").read_text())
        timeline = sorted(summary["timeline"], key=lambda event: event["t"])
        run.update(first_batch_t=timeline[0]["t"] if timeline else None, summary_wall_seconds=summary["wall_seconds"],
                   inputs_done=sum(e["files"] for e in timeline))
    except (OSError, ValueError, KeyError) as exc:
        run["summary_problem"] = f"{type(exc).__name__}: {exc}"
    run["met"] = bool(first and first < TARGET_FIRST_BATCH_S and run["driver_peak_rss_mb"] < TARGET_LISTING_RSS_MB)
    log(f"listing {size}: first output at {run['first_output_seconds']} s, driver peak "
        f"{run['driver_peak_rss_mb']:.0f} MB, {run.get('inputs_done')} done before the stop")
    if not args.keep:
        shutil.rmtree(out_dir, ignore_errors=True)
    return run


def run_listing(args, work: Path) -> list[dict]:
    """moto in this process: each bucket list<N> filled through moto's backend (no HTTP)."""
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on stderr
    port = s3server.free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        backend = s3_backends["123456789012"]["global"]
        for size in args.listing:
            started = time.perf_counter()
            backend.create_bucket(f"list{size}", "us-east-1")
            for i in range(size):
                backend.put_object(f"list{size}", input_relpath(i), tiny_png(i))
            log(f"bucket list{size}: {size} objects put in {time.perf_counter() - started:.1f} s")
        return [listing_run(size, args, work, port) for size in args.listing]
    finally:
        server.stop()



def best_runs(runs: list[dict]) -> dict[tuple[int, int], dict]:
    """Per (size, batch size), the run with the best steady rate (noise only slows)."""
    best: dict[tuple[int, int], dict] = {}
    for r in (r for r in runs if r["ok"]):
        key = (r["size"], r["batch_size"])
        if r.get("mode", "default") != runs[0].get("mode", "default"):
            continue  # sizes are compared within the first mode run
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
    lines += table(COLUMNS, report["runs"])
    lines.append("steady: files of the batches after the first / seconds from the first batch back to the last "
                 "(summary.json); wall: the driver process's start to its exit")
    lines += [f"cost per file, {s['large']} vs {s['small']} files (batch {s['batch_size']}; 1.0 = linear): "
              f"wall x{s['wall_per_file']}, steady x{s['steady_per_file']}, driver CPU x{s['driver_cpu_per_file']}; "
              f"driver peak RSS {s['driver_peak_kb_per_extra_file']:+.3f} KB per extra file" for s in report["scaling"]]
    if report.get("modes"):
        cap = report["capacity"]
        lines += ["", "who writes the outputs (driver CPU ms/input: whole process, and steady = from the first "
                      "manifest line to the last)"]
        lines += table(MODE_COLUMNS, report["modes"])
        if cap:
            lines.append(f"S3 server (moto) capacity: {cap['puts_per_second']:.0f} PUT/s from {cap['threads']} "
                         f"boto3 threads ({cap['puts']} PUTs of {cap['object_bytes']} B); x capacity = steady "
                         f"outputs/s over it")
        for row in report["modes"]:
            if "driver_cpu_met" in row:
                lines.append(f"target {row['mode']}: steady driver CPU <= {TARGET_DRIVER_MS} ms/input: "
                             + {True: "MET", False: "NOT MET", None: "not measured (one batch)"}[row["driver_cpu_met"]]
                             + (f"; >= {TARGET_CAPACITY_RATIO}x capacity: "
                                + {True: "MET", False: "NOT MET", None: "not measured"}[row["capacity_met"]]
                                if "capacity_met" in row else ""))
    if report.get("listing"):
        lines += ["", "lazy listing of an S3 bucket (moto, folders of 1000): from the driver's start"]
        lines += table(LISTING_COLUMNS, report["listing"])
        lines.append(f"target: first output < {TARGET_FIRST_BATCH_S:.0f} s whatever the size, driver peak RSS < "
                     f"{TARGET_LISTING_RSS_MB:.0f} MB")
    if report["target"]:
        t = report["target"]
        lines.append(f"target at {t['size']} files, batch {t['batch_size']} ({t['target']}): "
                     + ("MET" if t["met"] else "NOT MET"))
    return "\n".join(lines + [f"PROBLEM: {r['size']} files, batch {r['batch_size']}, {r['mode']}: {p}"
                              for r in report["runs"] for p in r["problems"]])


def int_list(text: str) -> list[int]:
    values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma list of integers >= 1")
    return values


def mode_list(text: str) -> list[str]:
    modes = list(MODES) if text.strip() == "all" else [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 'all' or a comma list of {', '.join(MODES)}")
    return [m for m in MODES if m in modes]


def mode_summary(runs: list[dict], capacity: dict | None) -> list[dict]:
    """Per mode (best steady run, largest size): the numbers the README's table shows."""
    rows = []
    for mode in MODES:
        ok = [r for r in runs if r["mode"] == mode and r["ok"]]
        if not ok:
            continue
        top = max(ok, key=lambda r: (r["size"], r["steady_files_per_second"] or 0))
        row = {k: top.get(k) for k in ("mode", "size", "wall_seconds", "files_per_second", "steady_files_per_second",
                                       "driver_cpu_ms_per_file", "driver_steady_cpu_ms_per_file",
                                       "capacity_ratio", "driver_peak_rss_mb")}
        if mode.endswith("-actors"):
            cpu = top["driver_steady_cpu_ms_per_file"]
            row["driver_cpu_met"] = None if cpu is None else cpu <= TARGET_DRIVER_MS  # None: one batch only
            if mode.startswith("s3-"):
                cap = top.get("capacity_ratio")
                row["capacity_met"] = None if cap is None else cap >= TARGET_CAPACITY_RATIO
        rows.append(row)
    return rows


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int_list, default=None, help="input counts (default 10000,100000; --quick 2000)")
    p.add_argument("--batch_size", type=int_list, default=[DEFAULT_BATCH],
                   help=f"batch sizes; each size runs with each (default {DEFAULT_BATCH})")
    p.add_argument("--instances", type=int, default=2, help="K: actors on the CPU (default 2)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each size and batch size (default 1)")
    p.add_argument("--quick", action="store_true", help="CI size: 2000 files")
    p.add_argument("--work", type=Path, default=None, help="work folder; its inputs are kept and reused")
    p.add_argument("--keep", action="store_true", help="keep the work folder and the outputs")
    p.add_argument("--modes", type=mode_list, default=[],
                   help=f"compare who writes the outputs: a comma list of {', '.join(MODES)} or 'all' "
                        "(local modes at each --sizes, s3 modes at --uri_size on a moto server started here)")
    p.add_argument("--uri_size", type=int, default=None, help="inputs of each s3 mode (default 1000; --quick 200)")
    p.add_argument("--capacity_puts", type=int, default=800,
                   help=f"PUTs measuring the S3 server's capacity ({CAPACITY_THREADS} threads; default 800)")
    p.add_argument("--listing", type=int_list, default=[],
                   help="bucket sizes (e.g. 10000,100000) for the lazy-listing run: first output and driver RSS")
    p.add_argument("--listing_seconds", type=float, default=5.0,
                   help="keep each listing run going this long after its first output, then stop it (default 5)")
    p.add_argument("--listing_timeout", type=float, default=300.0, help="give up on a first output after this")
    p.add_argument("--json", type=Path, default=None, help="write every number here")
    args = p.parse_args(argv)
    args.sizes = sorted(set(args.sizes or ([2000] if args.quick else [10_000, 100_000])))
    args.uri_size = args.uri_size or (200 if args.quick else 1000)
    if min(args.instances, args.repeat) < 1:
        p.error("--instances and --repeat must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="ray_ocr_scale_"))
    report = {**report_head(),
              "settings": {"sizes": args.sizes, "batch_sizes": args.batch_size, "instances": args.instances,
                           "repeat": args.repeat, "pipeline": PIPELINE, "glob": GLOB, "work": str(work),
                           "modes": args.modes, "uri_size": args.uri_size, "listing": args.listing}}
    capacity = None
    if args.modes:
        runs, capacity = run_modes(args, work)
    else:
        runs = [measure(size, batch, args, work)
                for _ in range(args.repeat) for size in args.sizes for batch in args.batch_size]
    ratios, target = scaling([r for r in runs if not r["mode"].startswith("s3-")])
    try:
        listing = run_listing(args, work) if args.listing else []
    except Exception as exc:  # the runs above still get reported
        log(f"listing failed: {type(exc).__name__}: {exc}")
        listing = [{"size": size, "first_output_seconds": None, "error": f"{type(exc).__name__}: {exc}"}
                   for size in args.listing]
    report.update(runs=runs, scaling=ratios, target=target, capacity=capacity, listing=listing,
                  modes=mode_summary(runs, capacity) if args.modes else [])
    print(format_report(report))
    write_json(report, args.json)
    failed = any(not r["ok"] for r in runs) or any(r["first_output_seconds"] is None for r in listing)
    if args.keep or args.work or failed:
        log(f"kept {work}" + (" (logs and outputs of the failed runs)" if failed else ""))
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
