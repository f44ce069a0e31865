"""Online OCR: `paddlex --serve` (one pipeline, one process) against ray_ocr.serve with
1 and 2 replicas, side by side in one run, same images, same pipeline parameters.

Each server runs in a fresh process on a free port; each is warmed up, then driven by
1, 8 and 32 concurrent clients (threads here, each a requests.Session) posting
`{"file": <base64>, "fileType": 1}` to /ocr as PaddleX's serving docs show, cycling over
the images. Requests/s = answered requests / wall time of the level; p50/p99 per request.
With --long_document, one more client posts a many-page PDF once at the start of each
level, just before the images; their p99 then shows how long a request waits behind it.

paddlex --serve runs offline with the same parameters: its pipeline config is PaddleX's
stock OCR config with samples/ocr_mobile_offline.yaml's models and switches (exported by
paddleocr's export_paddlex_config_to_yaml), plus `engine_config` giving Paddle all the
machine's cores (cpu_threads) like ray_ocr's single replica gets; the models are seeded
into the PaddleX cache first, with the bundled font its visualizations draw with.

    python scripts/bench_serve.py                      # 1/8/32 clients, 3 servers
    python scripts/bench_serve.py --quick              # 1/8 clients, fewer requests
    python scripts/bench_serve.py --servers ray_ocr:2 --clients 8 --requests 64
    # head-of-line blocking: a 6-page scanned PDF posted at the start of each level
    python scripts/bench_serve.py --servers paddlex,ray_ocr:2,ray_ocr:2:mor2 --clients 1,8 \
        --long_document ../shared/realdocs/pdfs/Seige_of_Vicksburg_Sample_OCR.pdf
    # what settings bring, each run twice, alternating (variants: VARIANTS below):
    python scripts/bench_serve.py --servers ray_ocr:2,ray_ocr:2:mor2,ray_ocr:2:serve_router,ray_ocr:2:mor2,ray_ocr:2:serve_router,ray_ocr:2
    python scripts/bench_serve.py --servers ray_ocr:2,ray_ocr:2:poll50,ray_ocr:2:poll50+mor2,ray_ocr:2:poll50+mor2,ray_ocr:2,ray_ocr:2:poll50
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
REALDOCS = REPO.parent / "shared" / "realdocs" / "paddleocr"
PARAMS_FILE = REPO / "samples" / "ocr_mobile_offline.yaml"
IMAGES = ["11.jpg", "1.jpg", "word_ch_1.jpg", "table.jpg", "textline.png", "android_det_90.jpg"]
PYTHON = sys.executable
PADDLEX = str(Path(sys.executable).with_name("paddlex"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_environment(workdir: Path) -> dict:
    """Environment for both servers: the PaddleX cache with the bundled models and font
    (PaddleX draws its visualizations with it, offline), no model source check."""
    env = dict(os.environ)
    env.setdefault("PADDLE_PDX_CACHE_HOME", str(workdir / "pdx"))
    env["PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK"] = "True"
    os.environ.update({k: env[k] for k in ("PADDLE_PDX_CACHE_HOME", "PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK")})
    from ray_ocr.models.model_cache import seed_bundled_models

    seed_bundled_models()
    return env


def paddlex_config(workdir: Path, env: dict, cpu_threads: int) -> Path:
    """The PaddleX pipeline YAML for `paddlex --serve --pipeline FILE` (exported by
    paddleocr in a child process, so this one never imports Paddle)."""
    path = workdir / "ocr_pipeline.yaml"
    code = (
        "import sys, yaml; from paddleocr import PaddleOCR; "
        "p = yaml.safe_load(open(sys.argv[1])); "
        "PaddleOCR(device='cpu', **p).export_paddlex_config_to_yaml(sys.argv[2])"
    )
    subprocess.run([PYTHON, "-c", code, str(PARAMS_FILE), str(path)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    config = yaml.safe_load(path.read_text())
    # What paddleocr passes create_pipeline for device="cpu" (paddleocr/_common_args.py).
    config["engine_config"] = {"paddle_static": {"cpu_threads": cpu_threads, "mkldnn_cache_capacity": 10,
                                                 "enable_cinn": False}}
    path.write_text(yaml.safe_dump(config))
    return path


class Server:
    def __init__(self, name: str, argv: list[str], env: dict, port: int, ready_line: str | None, log: Path):
        self.name, self.port, self.log = name, port, log
        self.url = f"http://127.0.0.1:{port}"
        self._log_handle = open(log, "w")
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=self._log_handle, text=True,
                                     start_new_session=True)
        self._ready = threading.Event()
        self._ready_line = ready_line
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self._log_handle.write(line)
            self._log_handle.flush()
            if self._ready_line and self._ready_line in line:
                self._ready.set()

    def wait_ready(self, timeout: float) -> float:
        import requests

        started = time.perf_counter()
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}; see {self.log}")
            if self._ready_line is None or self._ready.is_set():
                try:
                    if requests.get(self.url + "/health", timeout=2).status_code == 200:
                        return time.perf_counter() - started
                except requests.RequestException:
                    pass
            time.sleep(0.5)
        raise TimeoutError(f"{self.name} not ready after {timeout} s; see {self.log}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # ray_ocr.serve cleans up on SIGINT
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group this script started
                self.proc.wait()
        self._log_handle.close()


def _post_ocr(session, url: str, body: bytes, timeout: float):
    """POST /ocr as PaddleX's serving docs do (`session`: requests or a requests.Session)."""
    return session.post(url + "/ocr", data=body, timeout=timeout, headers={"Content-Type": "application/json"})


def _post_timed(session, url: str, body: bytes, timeout: float) -> tuple[bool, str, float]:
    """(answered with errorCode 0, the replica that answered or the exception, seconds)."""
    import requests

    started = time.perf_counter()
    try:
        r = _post_ocr(session, url, body, timeout)
        ok, who = r.status_code == 200 and r.json().get("errorCode") == 0, r.headers.get("x-ray-ocr-replica", "-")
    except requests.RequestException as exc:
        ok, who = False, type(exc).__name__
    return ok, who, time.perf_counter() - started


def drive(url: str, bodies: dict[str, bytes], clients: int, total: int, timeout: float,
          long_body: bytes | None = None) -> dict:
    """`total` requests from `clients` threads (a requests.Session each), cycling over
    `bodies` (by image name); the row of the level: requests/s, p50/p99 of the answered
    ones, and the slowest request's image. With `long_body`, one more client posts it
    once, first (its figures: the row's "long_document")."""
    import requests

    names = list(bodies)
    outcomes: list[tuple[bool, str, float, str]] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def client():
        session = requests.Session()
        while (i := _next(counter, lock)) is not None:
            name = names[i % len(names)]
            outcome = _post_timed(session, url, bodies[name], timeout)
            with lock:
                outcomes.append((*outcome, name))

    long_client = LongDocumentClient(url, long_body, timeout) if long_body else None
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    row = _level_row(clients, total, outcomes, time.perf_counter() - started)
    if long_client:
        row["long_document"] = long_client.finish()
    return row


class LongDocumentClient:
    """Posts one long document (a many-page PDF) from a thread, just before the image
    clients start: how long they then wait behind it is head-of-line blocking."""

    ADMITTED_S = 0.2  # the document is in the server's queue before the first image

    def __init__(self, url: str, body: bytes, timeout: float):
        self._outcome: tuple[bool, str, float] | None = None
        self._thread = threading.Thread(target=self._post, args=(url, body, timeout))
        self._thread.start()
        time.sleep(self.ADMITTED_S)

    def _post(self, url: str, body: bytes, timeout: float) -> None:
        import requests

        self._outcome = _post_timed(requests.Session(), url, body, timeout)

    def finish(self) -> dict:
        """Waits for the document (so the next level starts on an idle server): whether
        it was answered, and its seconds."""
        self._thread.join()
        ok, _, seconds = self._outcome
        return {"answered": ok, "seconds": round(seconds, 2)}


def session_cpu_seconds(session_id: int) -> float:
    """CPU seconds (user + system) of every live process in a server's session: for
    ray_ocr.serve, the replicas, Serve's proxy and controller and Ray's own processes,
    which all descend from the command without leaving its session."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[3]) == session_id:  # field 6 of stat: the session
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _next(counter, lock: threading.Lock) -> int | None:
    with lock:
        return next(counter, None)


def _level_row(clients: int, total: int, outcomes: list, wall: float) -> dict:
    ordered = sorted(seconds for ok, _, seconds, _ in outcomes if ok)
    replicas = dict(Counter(who for ok, who, _, _ in outcomes if ok))
    slowest = max((o for o in outcomes if o[0]), key=lambda o: o[2], default=(None, None, None, None))[3]
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else float("nan")
    return {"clients": clients, "requests": total, "ok": len(ordered), "failed": len(outcomes) - len(ordered),
            "wall_s": round(wall, 2), "rps": round(len(ordered) / wall, 3),
            "p50_s": round(statistics.median(ordered), 3) if ordered else None,
            "p99_s": round(p99, 3), "per_replica": replicas, "slowest": slowest, "load_avg": round(os.getloadavg()[0], 2)}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="paddlex,ray_ocr:1,ray_ocr:2",
                        help="comma list of paddlex and ray_ocr:<replicas>[:<variant>[+<variant>...]] (a variant "
                             f"changes ray_ocr.serve's settings, to measure them: {', '.join(VARIANTS)})")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--requests", type=int, default=0,
                        help="requests per level (default: max(64, 4 x clients), enough that the "
                             "first and last seconds, when not every client is busy, weigh little)")
    parser.add_argument("--images", default=",".join(IMAGES))
    parser.add_argument("--visualize", choices=("default", "on", "off"), default="default",
                        help="send visualize (default: leave it out, PaddleX's default is on)")
    parser.add_argument("--long_document", type=Path,
                        help="a many-page PDF one more client posts at the start of every level, to "
                             "measure head-of-line blocking: the images' latency with a long request among them")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--quick", action="store_true", help="1 and 8 clients, 8 requests each")
    parser.add_argument("--json", help="write the results here")
    return parser.parse_args(argv)


def _with_request_router(config: str) -> list[str]:
    """python's arguments that run ray_ocr.serve with plan.REQUEST_ROUTER set to `config`."""
    return ["-c", f"import sys, ray_ocr.serve.plan as plan; plan.REQUEST_ROUTER = {config}; "
                  "from ray_ocr.serve.cli import main; sys.exit(main(sys.argv[1:]))"]


# ray_ocr:<replicas>:<variant>[+<variant>...]: ray_ocr.serve with settings changed, to
# measure what they bring: (how python starts it or None, extra environment, extra flags).
VARIANTS = {
    # Paddle's OpenMP threads waiting passively between operators instead of spinning
    # 200 ms (the runtime's default): less CPU, fewer requests/s for a lone replica
    "passive": (None, {"KMP_BLOCKTIME": "0"}, []),
    # Serve's own request router and backoff (up to 0.5 s between polls for a free replica)
    "serve_router": (_with_request_router("{}"), {}, []),
    # every replica's Paddle on all the machine's cores, waiting passively
    "shared": (None, {"KMP_BLOCKTIME": "0"}, ["--param", "cpu_threads=%(cores)d"]),
    # Serve's own router polling every 10-50 ms (ray_ocr's setting before its own router)
    "poll50": (_with_request_router("{'initial_backoff_s': 0.01, 'max_backoff_s': 0.05}"), {}, []),
    # two requests per replica (the default is one)
    "mor2": (None, {}, ["--max_ongoing_requests", "2"]),
}


def variant_launch(variant: str, cores: int) -> tuple[list[str], dict, list[str]]:
    """(python's arguments before the flags, extra environment, extra flags) for a
    variant ('' for ray_ocr.serve as it is, or names joined by '+')."""
    launch, env, flags = ["-m", "ray_ocr.serve"], {}, []
    for name in filter(None, variant.split("+")):
        its_launch, its_env, its_flags = VARIANTS[name]
        launch = its_launch or launch
        env.update(its_env)
        flags += [flag % {"cores": cores} for flag in its_flags]
    return launch, env, flags


def check_server_spec(spec: str) -> None:
    parts = spec.split(":")
    ok = spec == "paddlex" or (parts[0] == "ray_ocr" and len(parts) in (2, 3) and parts[1].isdigit()
                                and (len(parts) == 2 or all(v in VARIANTS for v in parts[2].split("+"))))
    if not ok:
        raise SystemExit(f"--servers: {spec!r} is not paddlex or ray_ocr:<replicas>[:<variant>[+<variant>]] "
                         f"(variants: {', '.join(VARIANTS)})")


def start_server(spec: str, workdir: Path, env: dict, cores: int, run: int = 1) -> Server:
    """`paddlex --serve` (one process, Paddle on every core) or ``ray_ocr:<replicas>``."""
    port = free_port()
    if spec == "paddlex":
        config = paddlex_config(workdir, env, cpu_threads=cores)
        argv = [PADDLEX, "--serve", "--pipeline", str(config), "--device", "cpu",
                "--host", "127.0.0.1", "--port", str(port)]
        return Server("paddlex --serve", argv, env, port, None, workdir / "paddlex.log")
    _, replicas, *variant = spec.split(":")
    flags = ["--pipeline", "OCR", "--device", "cpu", "--params_file", str(PARAMS_FILE),
             "--instances_per_device", replicas, "--port", str(port)]
    launch, extra_env, extra_flags = variant_launch(variant[0] if variant else "", cores)
    flags += extra_flags
    return Server(spec, [PYTHON, *launch, *flags], {**env, **extra_env}, port, "ray_ocr.serve: OCR at",
                  workdir / f"{spec.replace(':', '_')}_{run}.log")


def measure(server: Server, bodies: dict[str, bytes], levels: list[int], args,
            long_body: bytes | None) -> list[dict]:
    """The server's rows, one per level; server CPU per request counts each of the long
    document's pages as a request (with --long_document)."""
    ready = server.wait_ready(600)
    print(f"{server.name}: ready in {ready:.1f} s", flush=True)
    drive(server.url, bodies, 2, 4, args.timeout)  # warm-up: every replica's first calls
    pages, alone_s = time_long_document(server, long_body, args) if long_body else (0, None)
    rows = []
    for clients in levels:
        total = 8 if args.quick else (args.requests or max(64, 4 * clients))
        cpu_before = session_cpu_seconds(server.proc.pid)
        row = drive(server.url, bodies, clients, total, args.timeout, long_body)
        requests_done = row["ok"]
        if long_body:
            row["long_document"]["alone_s"] = alone_s
            requests_done += pages if row["long_document"]["answered"] else 0
        row["server_cpu_ms_per_request"] = round(1000 * (session_cpu_seconds(server.proc.pid) - cpu_before)
                                                 / max(1, requests_done), 1)
        print(f"  {server.name:15} clients={clients:<3} {json.dumps(row)}", flush=True)
        rows.append(row)
    return rows


def time_long_document(server: Server, body: bytes, args) -> tuple[int, float]:
    """Posts the long document once, on an idle server: its pages and seconds. A
    failure stops the run: the levels would measure nothing useful."""
    import requests

    started = time.perf_counter()
    response = _post_ocr(requests, server.url, body, args.timeout)
    answer = response.json() if response.headers.get("content-type") == "application/json" else {}
    if answer.get("errorCode") != 0:
        raise SystemExit(f"--long_document {args.long_document}: HTTP {response.status_code}: "
                         f"{answer.get('errorMsg') or response.text[:200]}")
    pages, seconds = len(answer["result"]["ocrResults"]), round(time.perf_counter() - started, 2)
    print(f"  {server.name:15} the long document alone: {pages} pages in {seconds} s")
    return pages, seconds


def main(argv=None) -> int:
    args = parse_args(argv)
    for spec in args.servers.split(","):
        check_server_spec(spec)
    levels = [1, 8] if args.quick else [int(c) for c in args.clients.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    env = prepare_environment(workdir)
    cores = len(os.sched_getaffinity(0))
    extra = {} if args.visualize == "default" else {"visualize": args.visualize == "on"}
    bodies = {n: json.dumps({"file": base64.b64encode((REALDOCS / n).read_bytes()).decode(), "fileType": 1,
                             **extra}).encode() for n in args.images.split(",")}
    long_body = args.long_document and json.dumps(
        {"file": base64.b64encode(args.long_document.read_bytes()).decode(), "fileType": 0, **extra}).encode()
    results: dict[str, list[dict]] = {}
    for spec in args.servers.split(","):
        run = 1 + sum(name.split("#")[0] == spec for name in results)  # a spec given again: its next run
        server = start_server(spec, workdir, env, cores, run)
        try:
            results[spec if run == 1 else f"{spec}#{run}"] = measure(server, bodies, levels, args, long_body)
        finally:
            server.stop()
    if args.json:
        Path(args.json).write_text(json.dumps({"levels": levels, "results": results, "cores": cores}, indent=2))
    print_table(results, levels)
    print_variant_ratios(results, levels)
    answered_all = all(r["failed"] == 0 and r.get("long_document", {}).get("answered", True)
                       for rows in results.values() for r in rows)
    return 0 if answered_all else 1


def print_table(results: dict, levels: list[int]) -> None:
    base = results.get("paddlex")
    print(f"\n{'server':26} {'clients':>7} {'req/s':>8} {'p50 s':>7} {'p99 s':>7} {'x paddlex req/s':>16} "
          f"{'x paddlex p99':>14} {'CPU ms/req':>10} {'failed':>6} {'load':>5} {'long doc s':>10}")
    for name, rows in results.items():
        for i, row in enumerate(rows):
            ratio_rps = ratio_p99 = ""
            if base and name != "paddlex" and base[i]["rps"]:
                ratio_rps, ratio_p99 = _ratio(row["rps"], base[i]["rps"]), _ratio(row["p99_s"], base[i]["p99_s"])
            long_doc = row.get("long_document")
            long_cell = (f"{long_doc['seconds']}" if long_doc["answered"] else "failed") if long_doc else ""
            print(f"{name:26} {row['clients']:>7} {row['rps']:>8.3f} {row['p50_s'] or 0:>7.2f} {row['p99_s']:>7.2f} "
                  f"{ratio_rps:>16} {ratio_p99:>14} {row['server_cpu_ms_per_request']:>10} {row['failed']:>6} "
                  f"{row['load_avg']:>5} {long_cell:>10}")


def print_variant_ratios(results: dict, levels: list[int]) -> None:
    """For each variant (ray_ocr:<r>:<variant>), ray_ocr.serve as it is against it: the
    mean over the runs of each of requests/s, p99 and server CPU per request, as ratios."""
    def mean_of(spec: str, i: int, field: str) -> float:
        values = [rows[i][field] for name, rows in results.items() if name.split("#")[0] == spec]
        return statistics.mean(values) if values else float("nan")

    variants = sorted({name.split("#")[0] for name in results if name.count(":") == 2})
    for variant in variants:
        current = variant.rsplit(":", 1)[0]
        if current not in results:
            print(f"\n{variant}: no {current} run to compare it with")
            continue
        print(f"\n{current} against {variant} (means over runs): ratio of req/s, p99, CPU per request")
        for i, clients in enumerate(levels):
            ratios = [_ratio(mean_of(current, i, f), mean_of(variant, i, f))
                      for f in ("rps", "p99_s", "server_cpu_ms_per_request")]
            print(f"  clients={clients:<3} " + "  ".join(f"{r:>5}" for r in ratios))


def _ratio(a: float, b: float) -> str:
    """a / b to two places; empty when b is 0 (a level where nothing was answered)."""
    return f"{a / b:.2f}" if b else ""


if __name__ == "__main__":
    sys.exit(main())
