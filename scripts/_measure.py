"""What scripts/bench.py and scripts/scale.py share: the sampler of a process tree's memory
and CPU, the rest of the machine's load, the machine, and the report's table and JSON."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import threading
from importlib import metadata
from pathlib import Path

MB = 1024 * 1024
RAY_SERVICES = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")  # Ray's own, though named ray::...


def group_of(proc, root_pid: int) -> str:
    """root: the process started; workers: Ray's worker processes (ray::<Actor>, ray::IDLE)
    and multiprocessing's spawned ones; rest: the others (Ray's services, resource tracker)."""
    if proc.pid == root_pid:
        return "root"
    cmdline = " ".join(proc.cmdline())
    ray_worker = cmdline.startswith("ray::") and not cmdline.startswith(RAY_SERVICES)
    return "workers" if ray_worker or "spawn_main" in cmdline else "rest"


def _high_water_mb(pid: int) -> float:
    """The kernel's peak RSS of one process so far (VmHWM; 0 where /proc has none)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            return next((int(line.split()[1]) / 1024 for line in handle if line.startswith("VmHWM:")), 0.0)
    except OSError:
        return 0.0


class Sampler(threading.Thread):
    """Every `interval` s, the processes under `root_pid` (never other users' processes):
    the peak of the summed RSS of the `counted` groups and of the whole tree, the root's own
    peak RSS, and the CPU seconds of each process by group (as last seen; the root's are
    read once more after it exits). RSS counts shared pages in every process, so sums
    overstate what the processes own."""

    def __init__(self, root_pid: int, counted=("root",), interval: float = 0.2):
        super().__init__(daemon=True)
        import psutil

        self.root, self.counted, self.interval = psutil.Process(root_pid), set(counted), interval
        self.peak_mb = self.tree_peak_mb = self.root_peak_mb = 0.0
        self.groups: dict[int, str] = {}
        self.cpu: dict[int, float] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def sample(self) -> None:
        import psutil

        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        counted = tree = 0
        for proc in procs:
            try:
                # Decided again while "rest": a Ray worker renames itself ray::... only once up.
                if self.groups.get(proc.pid, "rest") == "rest":
                    self.groups[proc.pid] = group_of(proc, self.root.pid)
                rss, times = proc.memory_info().rss, proc.cpu_times()
            except psutil.Error:  # exited between listing and reading
                continue
            tree += rss
            counted += rss if self.groups[proc.pid] in self.counted else 0
            self.cpu[proc.pid] = times.user + times.system
        self.peak_mb = max(self.peak_mb, counted / MB)
        self.tree_peak_mb = max(self.tree_peak_mb, tree / MB)
        self.root_peak_mb = max(self.root_peak_mb, _high_water_mb(self.root.pid))

    def finish(self) -> None:
        """Wait for the root to exit (not reaped: its parent still waits for it), stop
        sampling, and read the root's final CPU seconds from its exit status."""
        import psutil

        os.waitid(os.P_PID, self.root.pid, os.WEXITED | os.WNOWAIT)
        self._halt.set()
        self.join()
        try:
            times = self.root.cpu_times()
            self.cpu[self.root.pid] = times.user + times.system
        except psutil.Error:
            pass

    def cpu_seconds(self) -> dict[str, float]:
        totals = dict.fromkeys(("root", "workers", "rest"), 0.0)
        for pid, seconds in self.cpu.items():
            totals[self.groups[pid]] += seconds
        return {group: round(seconds, 2) for group, seconds in totals.items()}


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine have been busy since boot (to tell other load)."""
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def report_head() -> dict:
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": sys.argv, "machine": machine()}


def machine() -> dict:
    import psutil

    model = ""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    versions = {"python": platform.python_version()}
    for dist in ("paddlepaddle", "paddlepaddle-gpu", "paddleocr", "paddlex", "ray", "ray-ocr"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return {"cores": cores(), "cpu_model": model, "ram_gb": round(psutil.virtual_memory().total / 1024**3, 1),
            "platform": platform.platform(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "versions": versions}


def ratio(a, b) -> float | None:
    return round(a / b, 3) if a and b else None


def fmt(value, spec: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return "-" if value is None else format(value, spec)


def table(columns: list[tuple[str, str, str]], rows: list[dict], label: str = "", width: int = 0) -> list[str]:
    """A header and a line per row: (title, key, format spec) columns, each as wide as its
    title; `label` names a row's first column (`width` wide)."""
    lines = [f"{label:<{width}}" + "".join(f"{title:>{len(title) + 2}}" for title, _, _ in columns)]
    return lines + [f"{row.get(label, ''):<{width}}" + "".join(f"{fmt(row.get(key), spec):>{len(title) + 2}}"
                                                            for title, key, spec in columns) for row in rows]


def write_json(report: dict, path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=str))
