"""ray_ocr's driver on many small files: its throughput, memory and bookkeeping at scale.

Not an OCR benchmark: the actors run the scheduling stand-in
(ray_ocr.testing.standin:SchedulingTestPipeline: it decodes each image and returns its
shape, no Paddle), so nearly all the cost left is the engine's own: listing the inputs,
reading and shipping bytes, Ray round trips, writing one JSON per input, the manifest,
the summary. One invocation generates N tiny distinct PNGs (8x8, nested folders of at
most 1000 files) per size and, for each size (and batch size), runs

    ray_ocr.run("ray_ocr.testing.standin:SchedulingTestPipeline", inputs, outputs,
                device="cpu", instances_per_device=K, batch_size=B,
                input_glob_pattern="**/*.png", progress_interval=-1)

in a fresh Python process (the "driver"), so its memory is its own and Ray's start is
counted. The inputs of the largest size are generated once; a smaller size is a folder of
hard links to the first files of the largest (a copy where links are not possible).

Measured per run: wall seconds (process start to exit: imports, listing, Ray start, the
run, Ray shutdown); files/s over the wall; steady files/s (from summary.json's timeline:
the files of every batch after the first, over the seconds between the first and the last
batch back, so start-up and the end are left out; also per tenth of that span, to show a
warm-up or a slowdown as the run grows); when the first batch came back; the driver's
phases (list = Driver.plan_inputs: with streaming discovery only up to the first input;
Ray start = ray_session's entry; tail = failures.jsonl + summary.json + report after the
last batch; timed by wrapping those functions inside the driver process); the driver
process's peak RSS (psutil every 0.1 s from this process, or its own ru_maxrss if higher),
its RSS when the first and the last batch came back (the growth in between, per input),
its CPU seconds (user + system, and per file); the CPU
seconds of the ray:: workers (the actors) and of Ray's services, the actors' busy seconds,
the peak RSS of the whole process tree (1 s samples); and, just before each run, the
milliseconds one small file takes to write the way ray_ocr writes its outputs (temp file,
fsync, os.replace) on the work folder's disk. Dirty pages are flushed (os.sync) before
each run, so the writeback of freshly generated inputs does not slow the next run.
Checked per run: the result JSONs on disk are exactly one per input, with the expected
names; the manifest has exactly one "done" line per input; no temporary file is left.
A run that lost, duplicated or failed files makes the exit code 1.

The report ends with the cost per file of the largest size against the smallest (wall,
steady and driver CPU; 1.0 is linear) and whether the largest size meets the target
(steady >= 1000 files/s, driver peak RSS <= 1 GB; informational, not in the exit code).
With --repeat, the run with the best steady rate of each size and batch size counts.

Usage (from the repository root):

    python scripts/scale.py --quick --json /tmp/scale.json          # CI-sized: 2000 files
    python scripts/scale.py                                         # 10000 and 100000 files
    python scripts/scale.py --sizes 10000 --batch_size 64,128,256 --repeat 2   # a sweep
    python scripts/scale.py --sizes 10000 --profile /tmp/scale.prof # driver under cProfile
    python scripts/scale.py --work /tmp/scale_work                  # reuse the inputs

A fixed version of ray_ocr (while the working tree is being edited): put a copy first on
PYTHONPATH (the actors inherit it), e.g.
    git archive HEAD ray_ocr | tar -x -C /tmp/snap && PYTHONPATH=/tmp/snap python scripts/scale.py
The report names the ray_ocr the drivers imported.

Options: --sizes LIST, --batch_size LIST (each size runs with each), --instances K,
--repeat R, --work DIR (generated inputs are kept and reused from there; default a
temporary folder), --keep (keep the work folder and the outputs), --profile PATH (run the
driver under cProfile, write PATH (suffixed per run when there are several) and print its
top functions; cProfile slows the driver, so those runs count in neither the scaling
ratio nor the target), --timeout S (per run), --json PATH.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PIPELINE = "ray_ocr.testing.standin:SchedulingTestPipeline"
GLOB = "**/*.png"
DEFAULT_SIZES = (10_000, 100_000)
QUICK_SIZES = (2_000,)
DEFAULT_BATCH = 256  # 64 pays the actors' per-batch cost 4x over; 128..512 alike within noise (2 cores)
FILES_PER_FOLDER = 1000
FOLDERS_PER_GROUP = 10
DRIVER_SAMPLE_SECONDS = 0.1
TREE_SAMPLE_SECONDS = 1.0
TARGET_FILES_PER_SECOND = 1000.0
TARGET_PEAK_RSS_MB = 1024.0
MB = 1024 * 1024
# ray_ocr's own files in the output folder (engine/manifest.py, engine/driver.py).
MANIFEST = "ray_ocr_manifest.jsonl"
STATE_FILES = {"summary.json", MANIFEST, "ray_ocr_run.jsonl", "failures.jsonl", "report.html"}


def log(message: str) -> None:
    print(f"[scale] {message}", file=sys.stderr, flush=True)


# -- inputs -------------------------------------------------------------------------------

def input_relpath(i: int) -> str:
    """g<group>/d<folder>/img_<i>.png: at most 1000 files a folder, 10 folders a group."""
    folder = i // FILES_PER_FOLDER
    return f"g{folder // FOLDERS_PER_GROUP:03d}/d{folder:04d}/img_{i:07d}.png"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


_PNG_HEAD = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
_PNG_TAIL = _chunk(b"IEND", b"")
_ROWS = b"".join(b"\x00" + bytes((x * 32 + y * 4) % 256 for x in range(24)) for y in range(1, 8))


def tiny_png(i: int) -> bytes:
    """An 8x8 RGB PNG; its first row carries `i`, so no two files are alike."""
    first = b"\x00" + i.to_bytes(6, "big") + bytes(18)
    return _PNG_HEAD + _chunk(b"IDAT", zlib.compress(first + _ROWS, 1)) + _PNG_TAIL


def _folders_of(count: int) -> list[str]:
    return sorted({os.path.dirname(input_relpath(i)) for i in range(0, count, FILES_PER_FOLDER)})


def generate(folder: Path, count: int) -> float:
    """Write `count` PNGs under `folder`; seconds taken."""
    started = time.perf_counter()
    for rel in _folders_of(count):
        (folder / rel).mkdir(parents=True, exist_ok=True)
    root = str(folder)
    for i in range(count):
        with open(os.path.join(root, input_relpath(i)), "wb") as handle:
            handle.write(tiny_png(i))
    return time.perf_counter() - started


def link_subset(source: Path, folder: Path, count: int) -> float:
    """The first `count` files of `source` under `folder`, as hard links (copies if the
    file system has none); seconds taken."""
    started = time.perf_counter()
    for rel in _folders_of(count):
        (folder / rel).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        rel = input_relpath(i)
        try:
            os.link(source / rel, folder / rel)
        except OSError:
            shutil.copyfile(source / rel, folder / rel)
    return time.perf_counter() - started


def prepare_inputs(work: Path, sizes: list[int]) -> dict[int, dict]:
    """inputs/n<size>/ for every size; a marker file beside each says it is complete, so a
    reused --work folder is not generated again."""
    base = work / "inputs"
    base.mkdir(parents=True, exist_ok=True)
    largest = max(sizes)
    prepared = {}
    for size in sorted(sizes, reverse=True):
        folder, marker = base / f"n{size}", base / f"n{size}.complete"
        if marker.exists():
            prepared[size] = {"dir": str(folder), "seconds": 0.0, "how": "reused"}
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if size == largest:
            seconds, how = generate(folder, size), "generated"
        else:
            seconds, how = link_subset(base / f"n{largest}", folder, size), "linked"
        marker.write_text(str(size))
        prepared[size] = {"dir": str(folder), "seconds": round(seconds, 2), "how": how}
        log(f"{size} inputs {how} in {seconds:.1f} s ({folder})")
    return prepared


def settle_disk() -> float:
    """Flush dirty pages (fresh inputs, deleted outputs) before a run: the driver fsyncs
    every output, and a background writeback of 100k files would be in its way."""
    started = time.perf_counter()
    os.sync()
    return time.perf_counter() - started


def disk_probe(folder: Path, count: int = 300) -> dict:
    """Milliseconds per small file written like ray_ocr's outputs (temp file, fsync,
    os.replace) and plainly, in `folder`: what the disk lets a driver do at best."""
    folder.mkdir(parents=True, exist_ok=True)
    data = b"{}" * 150
    times = {}
    for mode in ("fsync_replace", "plain"):
        settle_disk()
        started = time.perf_counter()
        for i in range(count):
            path = folder / f"{mode}_{i}.json"
            with open(f"{path}.tmp" if mode != "plain" else path, "wb") as handle:
                handle.write(data)
                if mode != "plain":
                    handle.flush()
                    os.fsync(handle.fileno())
            if mode != "plain":
                os.replace(f"{path}.tmp", path)
        times[f"{mode}_ms"] = round(1000 * (time.perf_counter() - started) / count, 3)
    shutil.rmtree(folder, ignore_errors=True)
    return times


# -- the driver process ---------------------------------------------------------------------
# `scale.py _driver ...` runs in a fresh process: one ray_ocr.run, then a small JSON of
# what only the driver can see (its phases, rusage) into --result.

def _time_calls(phases: dict, owner, name: str, key: str) -> None:
    """Wrap owner.name so the seconds of its calls add up in phases[key] (if it exists)."""
    original = getattr(owner, name, None)
    if original is None:
        return

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            phases[key] = phases.get(key, 0.0) + time.perf_counter() - started

    setattr(owner, name, timed)


def _time_entry(phases: dict, owner, name: str, key: str) -> None:
    """Wrap the context manager owner.name: seconds until its body starts."""
    import contextlib

    original = getattr(owner, name, None)
    if original is None:
        return

    @contextlib.contextmanager
    def timed(*args, **kwargs):
        started = time.perf_counter()
        with original(*args, **kwargs) as value:
            phases[key] = time.perf_counter() - started
            yield value

    setattr(owner, name, timed)


def driver_main(argv: list[str]) -> int:
    import resource

    parser = argparse.ArgumentParser(prog="scale.py _driver")
    parser.add_argument("--input_dir", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--batch_size", type=int, required=True)
    parser.add_argument("--instances", type=int, required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    import ray_ocr
    from ray_ocr.engine import cluster, driver, manifest

    imported = time.perf_counter() - started
    phases: dict[str, float] = {}
    _time_calls(phases, driver.Driver, "plan_inputs", "list_seconds")
    _time_entry(phases, cluster, "ray_session", "ray_start_seconds")
    _time_calls(phases, manifest.RunManifest, "write_failures", "tail_seconds")
    _time_calls(phases, driver, "write_summary", "tail_seconds")
    summary = ray_ocr.run(
        PIPELINE, args.input_dir, args.output_dir, device="cpu", instances_per_device=args.instances,
        batch_size=args.batch_size, input_glob_pattern=GLOB, progress_interval=-1,
    )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "import_seconds": round(imported, 3),
        "run_seconds": round(time.perf_counter() - started - imported, 3),
        "summary_seconds": round(summary.seconds, 3),
        "phases": {k: round(v, 3) for k, v in phases.items()},
        "files": summary.files, "succeeded": summary.succeeded, "failed": summary.failed,
        "skipped": summary.skipped, "interrupted": summary.interrupted,
        "failures": [f.one_line() for f in summary.failures[:5]],
        "ray_ocr": os.path.dirname(ray_ocr.__file__),  # which ray_ocr ran (PYTHONPATH may pick a snapshot)
        "ru_maxrss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "cpu_user_seconds": round(usage.ru_utime, 2), "cpu_system_seconds": round(usage.ru_stime, 2),
    }
    Path(args.result).write_text(json.dumps(result))
    return summary.exit_code


# -- measuring (in this process) ------------------------------------------------------------

# Per-node Ray services that also name themselves "ray::...": not workers.
RAY_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")


def _group(proc, root_pid: int) -> str:
    """driver, workers (the ray:: actor/idle worker processes) or ray (Ray's services)."""
    if proc.pid == root_pid:
        return "driver"
    cmdline = " ".join(proc.cmdline())
    return "workers" if cmdline.startswith("ray::") and not cmdline.startswith(RAY_AGENTS) else "ray"


class Monitor(threading.Thread):
    """The driver's RSS every 0.1 s (its peak); every 1 s its whole tree's RSS and the CPU
    seconds of each process in it (a process's last second before it exits is missed)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process(pid)
        self.peak_mb = 0.0
        self.tree_peak_mb = 0.0
        self.samples = 0
        self.cpu: dict[int, tuple[str, float]] = {}  # pid -> (group, CPU seconds so far)
        self.groups: dict[int, str] = {}
        self.series: list[tuple[float, float]] = []  # (seconds since started, driver RSS MB), 1 s apart
        self.started = time.perf_counter()
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        next_tree = 0.0
        while not self._halt.is_set():
            try:
                self.peak_mb = max(self.peak_mb, self.proc.memory_info().rss / MB)
                self.samples += 1
                if time.monotonic() >= next_tree:
                    next_tree = time.monotonic() + TREE_SAMPLE_SECONDS
                    self._sample_tree()
            except psutil.Error:
                return  # the driver has exited
            self._halt.wait(DRIVER_SAMPLE_SECONDS)

    def _sample_tree(self) -> None:
        import psutil

        total = 0
        self.series.append((round(time.perf_counter() - self.started, 2), round(self.proc.memory_info().rss / MB, 1)))
        for proc in [self.proc] + self.proc.children(recursive=True):
            try:
                total += proc.memory_info().rss
                times = proc.cpu_times()
                # A Ray worker shows its real cmdline before it renames itself ray::...
                if self.groups.get(proc.pid) in (None, "ray"):
                    self.groups[proc.pid] = _group(proc, self.proc.pid)
            except psutil.Error:
                continue
            self.cpu[proc.pid] = (self.groups[proc.pid], times.user + times.system)
        self.tree_peak_mb = max(self.tree_peak_mb, total / MB)

    def cpu_seconds(self) -> dict[str, float]:
        totals = {"driver": 0.0, "workers": 0.0, "ray": 0.0}
        for group, seconds in self.cpu.values():
            totals[group] += seconds
        return {group: round(seconds, 1) for group, seconds in totals.items()}

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run_driver(input_dir: str, out_dir: Path, size: int, batch_size: int, instances: int,
               timeout: float, log_path: Path, profile: Path | None) -> dict:
    """One driver process under a Monitor; what it measured."""
    shutil.rmtree(out_dir, ignore_errors=True)
    settle_disk()
    result_path = out_dir.parent / f"{out_dir.name}.result.json"
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable]
    if profile is not None:
        cmd += ["-m", "cProfile", "-o", str(profile)]
    cmd += [str(Path(__file__).resolve()), "_driver", "--input_dir", input_dir, "--output_dir", str(out_dir),
            "--batch_size", str(batch_size), "--instances", str(instances), "--result", str(result_path)]
    with open(log_path, "wb") as log_file:
        started = time.perf_counter()
        # cwd: not the repository, whose ray_ocr/ would shadow PYTHONPATH under `-m cProfile`.
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, cwd=str(out_dir.parent),
                                start_new_session=True)
        monitor = Monitor(proc.pid)
        monitor.start()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"driver still running after {timeout:.0f} s: stopping it (process group {proc.pid})")
            os.killpg(proc.pid, 15)
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                code = proc.wait()
        wall = time.perf_counter() - started
        monitor.stop()
    try:
        child = json.loads(result_path.read_text())
    except (OSError, ValueError):
        child = {}
    return {"exit_code": code, "wall_seconds": round(wall, 2), "driver_peak_rss_mb": round(monitor.peak_mb, 1),
            "tree_peak_rss_mb": round(monitor.tree_peak_mb, 1), "rss_samples": monitor.samples,
            "tree_cpu_seconds": monitor.cpu_seconds(), "rss_series": monitor.series, "driver": child}


def steady_rate(timeline: list[dict]) -> dict:
    """From summary.json's timeline (t: seconds since the run started, when each batch's
    files were written): the rate after the first batch, and when the first/last landed."""
    if not timeline:
        return {"first_batch_t": None, "last_batch_t": None, "steady_files_per_second": None, "batches": 0}
    events = sorted(timeline, key=lambda e: e["t"])
    first, last = events[0]["t"], events[-1]["t"]
    after_first = sum(e["files"] for e in events[1:])
    rate = after_first / (last - first) if last > first else None
    # files/s in each tenth of the steady phase: a warm-up, or a slowdown as the run grows
    tenths = [0] * 10
    for e in events[1:]:
        tenths[min(9, int(10 * (e["t"] - first) / (last - first)))] += e["files"]
    span = (last - first) / 10
    return {"first_batch_t": first, "last_batch_t": last, "batches": len(events),
            "steady_files_per_second": round(rate, 1) if rate else None,
            "steady_tenths_files_per_second": [round(n / span) for n in tenths] if rate else None}


def verify_outputs(out_dir: Path, size: int) -> dict:
    """One result JSON per input with the expected name, one "done" manifest line each."""
    expected = {input_relpath(i)[:-len(".png")] + ".json" for i in range(size)}
    found, temporary = set(), 0
    for folder, _dirs, names in os.walk(out_dir):
        rel_folder = os.path.relpath(folder, out_dir)
        for name in names:
            rel = name if rel_folder == "." else f"{rel_folder}/{name}"
            if name.startswith("."):
                temporary += 1
            elif rel not in STATE_FILES and name.endswith(".json"):
                found.add(rel)
    lines, keys, done = 0, set(), 0
    manifest = out_dir / MANIFEST
    if manifest.exists():
        with open(manifest, encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                lines += 1
                record = json.loads(line)
                keys.add(record.get("key"))
                done += record.get("status") == "done"
    missing, unexpected = expected - found, found - expected
    problems = []
    if missing:
        problems.append(f"{len(missing)} result JSONs missing (e.g. {sorted(missing)[:3]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected JSONs (e.g. {sorted(unexpected)[:3]})")
    if lines != size or len(keys) != size or done != size:
        problems.append(f"manifest: {lines} lines, {len(keys)} keys, {done} done (expected {size} of each)")
    if temporary:
        problems.append(f"{temporary} hidden/temporary files left in the output folder")
    return {"output_jsons": len(found), "manifest_lines": lines, "manifest_keys": len(keys),
            "manifest_done": done, "temporary_files": temporary, "problems": problems}


def measure(size: int, batch_size: int, args, inputs: dict, work: Path, profile: Path | None) -> dict:
    out_dir = work / "out" / f"n{size}_b{batch_size}"
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    log_path = work / "logs" / f"n{size}_b{batch_size}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    disk = disk_probe(work / "disk_probe")
    log(f"{size} files, batch {batch_size}, K={args.instances}" + (" (cProfile)" if profile else "")
        + f"; disk {disk['fsync_replace_ms']:.2f} ms per fsync'ed small file ...")
    measured = run_driver(inputs[size]["dir"], out_dir, size, batch_size, args.instances, args.timeout,
                          log_path, profile)
    summary_path = out_dir / "summary.json"
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        summary = {}
    steady = steady_rate(summary.get("timeline", []))
    checked = verify_outputs(out_dir, size)
    child = measured["driver"]
    # The driver's RSS (1 s samples) when its first and its last batch came back: growth in
    # between is a per-input cost of the run itself; the peak above the last is the tail's.
    series = measured["rss_series"]
    offset = child.get("import_seconds") or 0.0  # the timeline's clock starts after the imports

    def rss_at(t):
        if not series or t is None:
            return None
        return min(series, key=lambda point: abs(point[0] - (t + offset)))[1]

    at_first, at_last = rss_at(steady["first_batch_t"]), rss_at(steady["last_batch_t"])
    growth = at_last - at_first if at_first is not None and at_last is not None else None
    cpu_user, cpu_system = child.get("cpu_user_seconds"), child.get("cpu_system_seconds")
    problems = list(checked["problems"])
    if measured["exit_code"] != 0:
        problems.insert(0, f"driver exit code {measured['exit_code']} (log {log_path})")
    if not child:
        problems.append(f"the driver wrote no result (log {log_path})")
    elif child.get("failed"):
        problems.append(f"{child['failed']} files failed: {child.get('failures')}")
    cpu = (child.get("cpu_user_seconds") or 0) + (child.get("cpu_system_seconds") or 0)
    run = {
        "size": size, "batch_size": batch_size, "instances": args.instances, "profiled": profile is not None,
        "disk_fsync_write_ms": disk["fsync_replace_ms"], "disk_plain_write_ms": disk["plain_ms"],
        "wall_seconds": measured["wall_seconds"],
        "files_per_second": round(size / measured["wall_seconds"], 1),
        **steady,
        "import_seconds": child.get("import_seconds"),
        "summary_seconds": child.get("summary_seconds"),
        "list_seconds": child.get("phases", {}).get("list_seconds"),
        "ray_start_seconds": child.get("phases", {}).get("ray_start_seconds"),
        "tail_seconds": child.get("phases", {}).get("tail_seconds"),
        # sampled every 0.1 s, or the kernel's exact peak (ru_maxrss), whichever is higher
        "driver_peak_rss_mb": max(measured["driver_peak_rss_mb"], child.get("ru_maxrss_mb") or 0.0),
        "driver_sampled_peak_rss_mb": measured["driver_peak_rss_mb"],
        "driver_ru_maxrss_mb": child.get("ru_maxrss_mb"),
        "driver_rss_at_first_batch_mb": at_first,
        "driver_rss_at_last_batch_mb": at_last,
        "driver_rss_growth_kb_per_file": round(growth * 1024 / size, 3) if growth is not None else None,
        "driver_rss_series": series,
        "tree_peak_rss_mb": measured["tree_peak_rss_mb"],
        "driver_cpu_seconds": round(cpu, 2) if child else None,
        "driver_cpu_ms_per_file": round(1000 * cpu / size, 3) if child else None,
        "driver_cpu_user_seconds": cpu_user, "driver_cpu_system_seconds": cpu_system,
        "workers_cpu_seconds": measured["tree_cpu_seconds"]["workers"],
        "ray_services_cpu_seconds": measured["tree_cpu_seconds"]["ray"],
        "actors_busy_seconds": round(sum(a.get("busy_seconds", 0.0) for a in summary.get("actors", {}).values()), 2),
        "ray_ocr": child.get("ray_ocr"),
        "timeline_entries": len(summary.get("timeline", [])),
        "summary_json_bytes": summary_path.stat().st_size if summary_path.exists() else None,
        **{k: v for k, v in checked.items() if k != "problems"},
        "problems": problems,
        "ok": not problems,
        "log": str(log_path),
    }
    if problems:
        log(f"PROBLEMS with {size} files, batch {batch_size}: {'; '.join(problems)}")
    else:
        log(f"{size} files in {run['wall_seconds']:.1f} s, steady {run['steady_files_per_second']} files/s, "
            f"driver peak {run['driver_peak_rss_mb']:.0f} MB")
    if not args.keep and not problems:
        shutil.rmtree(out_dir, ignore_errors=True)
    return run


def profile_top(path: Path, limit: int = 25) -> dict:
    """The profile's top functions: by own time (all), by cumulative time (ray_ocr's)."""
    import io
    import pstats

    stats = pstats.Stats(str(path), stream=io.StringIO())
    total = stats.total_tt

    def rows(key: str, keep) -> list[dict]:
        out = []
        for (file, line, func), (_cc, calls, tt, ct, _callers) in sorted(
                stats.stats.items(), key=lambda item: item[1][2 if key == "tottime" else 3], reverse=True):
            if not keep(file):
                continue
            name = func if file == "~" else f"{_short(file)}:{line}({func})"
            out.append({"function": name, "calls": calls, "tottime": round(tt, 3), "cumtime": round(ct, 3),
                        "share": round((tt if key == "tottime" else ct) / total, 3) if total else None})
            if len(out) == limit:
                break
        return out

    return {"path": str(path), "total_seconds": round(total, 2),
            "by_tottime": rows("tottime", lambda f: True),
            "ray_ocr_by_cumtime": rows("cumtime", lambda f: "/ray_ocr/" in f)}


def _short(file: str) -> str:
    for marker in ("/ray_ocr/", "/site-packages/", "/lib/python"):
        if marker in file:
            return marker.strip("/") + "/" + file.split(marker, 1)[1]
    return file


# -- the report ------------------------------------------------------------------------------

def _fmt(value, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def _best(runs: list[dict]) -> dict[tuple[int, int], dict]:
    """Per (size, batch size): the run with the highest steady rate (of --repeat runs;
    a shared machine's noise only ever slows a run down)."""
    best: dict[tuple[int, int], dict] = {}
    for r in runs:
        if r["ok"] and not r["profiled"]:
            key = (r["size"], r["batch_size"])
            if key not in best or (r["steady_files_per_second"] or 0) > (best[key]["steady_files_per_second"] or 0):
                best[key] = r
    return best


def scaling(runs: list[dict]) -> list[dict]:
    """Per batch size: the cost per file of the largest size over the smallest's."""
    best = _best(runs)
    out = []
    for batch in sorted({b for _, b in best}):
        sizes = sorted(s for s, b in best if b == batch)
        if len(sizes) < 2:
            continue
        small, large = best[(sizes[0], batch)], best[(sizes[-1], batch)]
        entry = {"batch_size": batch, "small": small["size"], "large": large["size"],
                 "wall_per_file_ratio": round((large["wall_seconds"] / large["size"])
                                              / (small["wall_seconds"] / small["size"]), 3)}
        if small["steady_files_per_second"] and large["steady_files_per_second"]:
            entry["steady_per_file_ratio"] = round(small["steady_files_per_second"]
                                                   / large["steady_files_per_second"], 3)
        if small["driver_cpu_ms_per_file"] and large["driver_cpu_ms_per_file"]:
            entry["driver_cpu_per_file_ratio"] = round(large["driver_cpu_ms_per_file"]
                                                       / small["driver_cpu_ms_per_file"], 3)
        out.append(entry)
    return out


def target_check(runs: list[dict]) -> dict | None:
    ok = list(_best(runs).values())
    if not ok:
        return None
    largest = max(r["size"] for r in ok)
    best = max((r for r in ok if r["size"] == largest), key=lambda r: r["steady_files_per_second"] or 0)
    rate, rss = best["steady_files_per_second"] or 0.0, best["driver_peak_rss_mb"]
    return {"size": largest, "batch_size": best["batch_size"], "steady_files_per_second": rate,
            "driver_peak_rss_mb": rss, "rate_met": rate >= TARGET_FILES_PER_SECOND,
            "rss_met": rss <= TARGET_PEAK_RSS_MB,
            "target": (f">= {TARGET_FILES_PER_SECOND:.0f} files/s steady, "
                       f"driver peak RSS <= {TARGET_PEAK_RSS_MB:.0f} MB")}


def format_report(report: dict) -> str:
    m = report["machine"]
    lines = [
        (f"ray_ocr scale {report['date']}  {m['cores']} cores, {m['ram_gb']} GB RAM; pipeline {PIPELINE}, "
         f"K={report['settings']['instances']}, glob {GLOB!r}; load average before {report['load_before']}"),
        "",
        (f"{'files':>7}{'batch':>6}{'wall s':>8}{'files/s':>9}{'steady/s':>9}{'1st batch s':>12}{'list s':>7}"
         f"{'ray s':>7}{'tail s':>7}{'drv RSS MB':>11}{'tree MB':>8}{'drv CPU s':>10}{'ms/file':>8}"
         f"{'wrk CPU s':>10}{'busy s':>7}{'ray CPU s':>10}{'disk ms':>8}{'JSONs':>8}{'manifest':>9}  ok"),
    ]
    for r in report["runs"]:
        lines.append(
            f"{r['size']:>7}{r['batch_size']:>6}{r['wall_seconds']:>8.1f}{r['files_per_second']:>9.0f}"
            f"{_fmt(r['steady_files_per_second'], '.0f'):>9}{_fmt(r['first_batch_t']):>12}"
            f"{_fmt(r['list_seconds']):>7}{_fmt(r['ray_start_seconds']):>7}{_fmt(r['tail_seconds']):>7}"
            f"{r['driver_peak_rss_mb']:>11.0f}{r['tree_peak_rss_mb']:>8.0f}{_fmt(r['driver_cpu_seconds']):>10}"
            f"{_fmt(r['driver_cpu_ms_per_file'], '.2f'):>8}{_fmt(r['workers_cpu_seconds']):>10}"
            f"{_fmt(r['actors_busy_seconds']):>7}{_fmt(r['ray_services_cpu_seconds']):>10}"
            f"{r['disk_fsync_write_ms']:>8.2f}"
            f"{r['output_jsons']:>8}{r['manifest_lines']:>9}  "
            + ("yes" if r["ok"] else "NO") + (" (cProfile)" if r["profiled"] else ""))
    lines.append("")
    lines.append("steady/s: files of the batches after the first / seconds from the first to the last batch back "
                 "(summary.json timeline); wall: process start to exit; drv: the driver process alone; "
                 "wrk: the ray:: worker processes (actors); busy: the actors' seconds inside process(); "
                 "ray: Ray's services (GCS, raylet, dashboard, agents); disk ms: one small file written "
                 "with fsync + os.replace (as ray_ocr writes its outputs), probed just before the run")
    code = report.get("code") or {}
    if code:
        lines.append(f"code: ray_ocr from {', '.join(code.get('ray_ocr') or ['?'])}"
                     + (f" (this repository at {code['git_head']}"
                        + (f", uncommitted changes in {', '.join(code['dirty'])})" if code["dirty"] else ")")
                        if code.get("working_tree")
                        else f" (a copy on PYTHONPATH; this repository is at {code.get('git_head')})"))
    for r in report["runs"]:
        if r["steady_tenths_files_per_second"]:
            lines.append(f"{r['size']} files, batch {r['batch_size']}: files/s in each tenth of the steady phase "
                         f"{r['steady_tenths_files_per_second']}; "
                         f"driver RSS {_fmt(r['driver_rss_at_first_batch_mb'], '.0f')} MB "
                         f"at the first batch, {_fmt(r['driver_rss_at_last_batch_mb'], '.0f')} MB at the last "
                         f"({_fmt(r['driver_rss_growth_kb_per_file'], '+.2f')} KB per input), "
                         f"peak {r['driver_peak_rss_mb']:.0f} MB")
    for s in report["scaling"]:
        lines.append(f"cost per file, {s['large']} vs {s['small']} files (batch {s['batch_size']}; 1.0 = linear): "
                     f"wall x{s['wall_per_file_ratio']}, steady x{_fmt(s.get('steady_per_file_ratio'), '.3f')}, "
                     f"driver CPU x{_fmt(s.get('driver_cpu_per_file_ratio'), '.3f')}")
    t = report["target"]
    if t:
        verdict = "MET" if t["rate_met"] and t["rss_met"] else "NOT MET"
        lines.append(f"target at {t['size']} files ({t['target']}): {verdict} "
                     f"({t['steady_files_per_second']:.0f} files/s, {t['driver_peak_rss_mb']:.0f} MB, "
                     f"batch {t['batch_size']})")
    for prof in report["profiles"]:
        lines += ["", (f"profile {prof['path']} ({prof['size']} files, batch {prof['batch_size']}; "
                       f"{prof['total_seconds']} s profiled in the main thread)"),
                  f"  {'own s':>8}{'share':>7}{'calls':>10}  function (by own time)"]
        lines += [f"  {row['tottime']:>8.2f}{row['share']:>7.1%}{row['calls']:>10}  {row['function']}"
                  for row in prof["by_tottime"][:15]]
        lines.append(f"  {'cum s':>8}{'share':>7}{'calls':>10}  ray_ocr function (by cumulative time)")
        lines += [f"  {row['cumtime']:>8.2f}{row['share']:>7.1%}{row['calls']:>10}  {row['function']}"
                  for row in prof["ray_ocr_by_cumtime"][:15]]
    if report["problems"]:
        lines += ["", "PROBLEMS:"] + [f"  - {p}" for p in report["problems"]]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------

def _int_list(text: str) -> list[int]:
    try:
        values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma list of integers") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected integers >= 1")
    return values


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=_int_list, default=None,
                        help="comma list of input counts (default 10000,100000; --quick 2000)")
    parser.add_argument("--batch_size", type=_int_list, default=[DEFAULT_BATCH],
                        help=f"comma list of batch sizes; each size runs with each (default {DEFAULT_BATCH})")
    parser.add_argument("--instances", type=int, default=2, help="K: actors on the CPU (default 2)")
    parser.add_argument("--quick", action="store_true", help="CI size: 2000 files")
    parser.add_argument("--work", type=Path, default=None,
                        help="work folder (inputs are generated once and reused from it; default a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and the outputs")
    parser.add_argument("--profile", type=Path, default=None, help="run the drivers under cProfile, write here")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each size and batch size, interleaved (default 1)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per driver run (default 3600)")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    args = parser.parse_args(argv)
    args.sizes = sorted(set(args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)))
    for flag in ("instances", "repeat"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1")
    return args


def machine_info() -> dict:
    import psutil

    return {"cores": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 1024**3, 1),
            "platform": platform.platform(), "python": platform.python_version()}


def profile_path(base: Path, size: int, batch: int, rep: int, several: bool) -> Path:
    suffix = f"_n{size}_b{batch}" + (f"_r{rep}" if rep else "")
    return base if not several else base.with_name(f"{base.stem}{suffix}{base.suffix or '.prof'}")


def code_info(runs: list[dict]) -> dict:
    """Which ray_ocr the drivers imported, and this repository's state (it may be edited
    while this runs: a dirty tree's numbers belong to that moment's files). To measure a
    fixed version: git archive HEAD ray_ocr | tar -x -C /tmp/snap; PYTHONPATH=/tmp/snap ..."""
    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True, timeout=30,
                                  check=False).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    used = sorted({r["ray_ocr"] for r in runs if r.get("ray_ocr")})
    return {"ray_ocr": used, "git_head": git("rev-parse", "--short", "HEAD").strip(),
            "working_tree": any(Path(u).resolve().parent == REPO for u in used),
            "dirty": [line[3:] for line in git("status", "--porcelain", "--", "ray_ocr").splitlines()]}


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["_driver"]:
        return driver_main(argv[1:])
    args = parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="ray_ocr_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": [sys.executable, *sys.argv],
        "machine": machine_info(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "settings": {"sizes": args.sizes, "batch_sizes": args.batch_size, "instances": args.instances,
                     "pipeline": PIPELINE, "glob": GLOB, "quick": args.quick, "work": str(work)},
    }
    runs, profiles = [], []
    try:
        report["inputs"] = prepare_inputs(work, args.sizes)
        several = len(args.sizes) * len(args.batch_size) * args.repeat > 1
        for rep in range(args.repeat):
            for size in args.sizes:
                for batch in args.batch_size:
                    prof = profile_path(args.profile, size, batch, rep, several) if args.profile else None
                    runs.append(measure(size, batch, args, report["inputs"], work, prof))
                    if prof is not None and prof.exists():
                        profiles.append({"size": size, "batch_size": batch, **profile_top(prof)})
    finally:
        if args.keep or args.work is not None:
            log(f"kept {work}" + ("" if args.keep else " (inputs only)"))
        elif not any(not r["ok"] for r in runs):
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work} (logs and outputs of the failed runs)")
    report.update({
        "code": code_info(runs),
        "runs": runs, "scaling": scaling(runs), "target": target_check(runs), "profiles": profiles,
        "problems": [f"{r['size']} files, batch {r['batch_size']}: {p}" for r in runs for p in r["problems"]],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    })
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
