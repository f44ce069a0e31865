"""ray_ocr submitted as a Ray job to a real two-node cluster started with `ray start`.

The cluster is what a user builds by hand: a head (`ray start --head`, dashboard on)
and a second node (`ray start --address ...`), each with one CPU, token authentication
on. Ray 2.60's `ray start --head` turns it on by itself when a token exists, but
`ray start --address` does not (the node then fails to register: InvalidAuthToken), so
both nodes get RAY_AUTH_MODE=token (never turned off). The job runs
`python -m ray_ocr.run ... --address auto` through the Jobs API (the driver inherits
RAY_AUTH_MODE and RAY_ADDRESS from the head); on `cpu` ray_ocr starts one actor per
node, so both nodes must have worked.

Other Ray clusters may run on this machine at the same time, so:
- every port is one picked free here (never 6379/8265/10001/52365), and each node has its
  own short --temp-dir (unix socket paths are limited to ~107 characters);
- teardown never runs `ray stop` (it kills every Ray process of the user); it ends only
  the processes this test started: those in the process group of our `ray start`s,
  carrying a unique marker in their environment (inherited from `ray start`), or naming
  our temp dir on their command line, and all their descendants (workers, agents, the
  job's driver, which Ray puts in a session of its own). Then it checks none is left.
- `--node-ip-address 127.0.0.1` is passed, but Ray replaces a loopback node IP by the
  machine's address (services.resolve_ip_for_localhost); only the dashboard listens on
  127.0.0.1 alone (`--dashboard-host`).

The working_dir runtime env is not used: ray_ocr is installed (editable) in the venv
whose `python` the nodes run, as on a real cluster, where every node needs ray_ocr and
Paddle installed anyway for its actors; uploading the repository would only test Ray's
packaging.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from tests.conftest import MOBILE_OCR_PARAMS, cli_params, copy_docs

pytestmark = [pytest.mark.ray, pytest.mark.cluster]

# Three real text-dense pages, about 5 s each for one actor (1 CPU thread). ray_ocr admits
# an actor into its pool once its pipeline is built and ends the run without waiting for
# the others, so with tiny images (0.1-0.7 s each) the first actor up often did all three
# before the other was up, and summary.json listed one actor. With these, the second
# actor only has to be up within ~10 s of the first (they start together; measured ~2 s).
IMAGES = ["ppstructure_paper_page.jpg", "ppstructure_table_page.png", "doc_with_formula.png"]
JOB_TIMEOUT = 300
VENV_BIN = Path(sys.executable).parent
RAY_CLI = str(VENV_BIN / "ray")
MARKER = "RAY_OCR_TEST_CLUSTER"  # environment variable naming this test's processes


# -- ports ----------------------------------------------------------------------
def _free_ports(count: int, taken: set[int]) -> list[int]:
    """Free TCP ports, none of them in `taken` (which they join). The kernel hands a port
    out again once its socket is closed, so ports of earlier calls must be excluded by
    hand: a node's port once came back as the dashboard's, and `ray start` refused."""
    sockets, ports = [], []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("", 0))
            sockets.append(s)
            port = s.getsockname()[1]
            if port not in taken:
                ports.append(port)
                taken.add(port)
        return ports
    finally:
        for s in sockets:
            s.close()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True


def _free_port_range(size: int, taken: set[int]) -> tuple[int, int]:
    """A free block of ports for a node's workers, below the kernel's ephemeral range
    (so the kernel never hands one of them out meanwhile)."""
    rng = random.Random()
    for _ in range(200):
        low = rng.randrange(20000, 32000 - size)
        block = range(low, low + size)
        if not taken.intersection(block) and all(_port_free(p) for p in block):
            taken.update(block)
            return low, low + size - 1
    raise RuntimeError("no free block of worker ports")


# -- our processes ----------------------------------------------------------------
@dataclass
class Ours:
    """What names this test's processes."""

    tag: str  # value of MARKER in their environment
    temp_dir: str  # on the command line of gcs_server, raylet, dashboard, monitors
    since: float  # epoch seconds: nothing older is ours
    groups: set[int] = field(default_factory=set)  # process groups of our `ray start`s


def _our_processes(ours: Ours) -> dict[int, psutil.Process]:
    """Live processes this test started, plus all their descendants. Matched by the
    marker in their environment, our temp dir on their command line, or the process
    group of our `ray start`; the renamed ones (``ray::DashboardAgent``, workers,
    whose environment reads empty after setproctitle) are found as descendants of the
    raylets. Zombies are dead, only not yet reaped."""
    me = os.getpid()
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if proc.create_time() < ours.since:
                continue
            cmdline = " ".join(proc.cmdline())
            mine = ours.temp_dir in cmdline or os.getpgid(proc.pid) in ours.groups
            if not mine:
                try:
                    mine = proc.environ().get(MARKER) == ours.tag
                except (psutil.AccessDenied, OSError):
                    mine = False
            if mine:
                found[proc.pid] = proc
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, ProcessLookupError):
            continue
    for proc in list(found.values()):
        try:
            for child in proc.children(recursive=True):
                found.setdefault(child.pid, child)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    alive = {}
    for pid, proc in found.items():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive[pid] = proc
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return alive


def _stop_our_processes(ours: Ours) -> list[str]:
    """SIGTERM our processes, SIGKILL what is left after a grace period; repeat while
    new ones appear (a raylet may start a worker meanwhile). Returns survivors."""
    for _ in range(4):
        procs = list(_our_processes(ours).values())
        if not procs:
            return []
        for proc in procs:
            try:
                proc.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=8)
        for proc in alive:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)
    time.sleep(1)
    return [f"{p.pid} {' '.join(p.cmdline())[:200]}" for p in _our_processes(ours).values()]


# -- the cluster --------------------------------------------------------------------
@dataclass
class Cluster:
    temp_dir: str
    env: dict
    ours: Ours
    gcs_port: int
    dashboard_port: int
    token: str = ""
    metrics_ports: list = field(default_factory=list)  # each node's Prometheus export

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def auth_headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def api(self, path: str, headers: dict | None = None):
        request = urllib.request.Request(self.dashboard_url + path, headers=headers or {})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def state(self, resource: str) -> list[dict]:
        """Ray's state API (`ray list nodes/actors`), over HTTP with the token."""
        data = self.api(f"/api/v0/{resource}?limit=1000&detail=true", self.auth_headers)
        return data["data"]["result"]["result"]

    def alive_nodes(self) -> list[dict]:
        return [n for n in self.state("nodes") if n.get("state") == "ALIVE"]


def _node_ports(taken: set[int], cluster: Cluster) -> list[str]:
    (om, nm, agent_http, agent_grpc, env_agent, metrics) = _free_ports(6, taken)
    cluster.metrics_ports.append(metrics)
    low, high = _free_port_range(40, taken)
    return [
        "--object-manager-port", str(om), "--node-manager-port", str(nm),
        "--dashboard-agent-listen-port", str(agent_http), "--dashboard-agent-grpc-port", str(agent_grpc),
        "--runtime-env-agent-port", str(env_agent), "--metrics-export-port", str(metrics),
        "--min-worker-port", str(low), "--max-worker-port", str(high),
    ]


def _token_env(env: dict, temp_dir: str) -> None:
    """Token auth on, with the user's token if there is one; otherwise a token of our own
    in our temp dir (never written to ~/.ray, never auth off)."""
    env["RAY_AUTH_MODE"] = "token"
    has_token = (
        env.get("RAY_AUTH_TOKEN")
        or (env.get("RAY_AUTH_TOKEN_PATH") and Path(env["RAY_AUTH_TOKEN_PATH"]).is_file())
        or (Path.home() / ".ray" / "auth_token").is_file()
    )
    if not has_token:
        token_file = Path(temp_dir) / "auth_token"
        token_file.write_text(secrets.token_hex(32))
        env["RAY_AUTH_TOKEN_PATH"] = str(token_file)


def _ray_start(args: list[str], cluster: Cluster) -> None:
    # A session of its own: the Ray processes it starts share its process group, and
    # never the pytest process's.
    proc = subprocess.Popen([RAY_CLI, "start", *args], env=cluster.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    cluster.ours.groups.add(proc.pid)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    assert proc.returncode == 0, f"ray start {' '.join(args)} failed:\n{stdout[-2000:]}\n{stderr[-4000:]}"


@pytest.fixture(scope="module")
def two_node_cluster():
    # Short path: Ray puts unix sockets under <temp-dir>/session_<date>_<pid>/sockets/.
    temp_dir = tempfile.mkdtemp(prefix="rocr", dir="/tmp")
    ours = Ours(tag=f"{os.getpid()}-{secrets.token_hex(8)}", temp_dir=temp_dir, since=time.time() - 1)
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"  # the job's `python`
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env[MARKER] = ours.tag
    assert env.get("PADDLE_PDX_CACHE_HOME"), "conftest sets the test model cache"
    _token_env(env, temp_dir)
    taken: set[int] = set()  # every port handed to a Ray component, so none is handed out twice
    gcs_port, dashboard_port, client_port = _free_ports(3, taken)
    cluster = Cluster(temp_dir, env, ours, gcs_port, dashboard_port)
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--num-gpus", "0",
              "--object-store-memory", str(100 * 2**20), "--disable-usage-stats"]
    try:
        _ray_start([
            "--head", "--port", str(gcs_port), "--include-dashboard", "true",
            "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
            "--ray-client-server-port", str(client_port), "--temp-dir", f"{temp_dir}/h",
            # Metrics reach the export every second (default 10 s), so the test is quick.
            "--system-config", json.dumps({"metrics_report_interval_ms": 1000}),
            *common, *_node_ports(taken, cluster),
        ], cluster)
        _ray_start([
            "--address", f"127.0.0.1:{gcs_port}", "--temp-dir", f"{temp_dir}/w",
            *common, *_node_ports(taken, cluster),
        ], cluster)
        cluster.token = subprocess.run([RAY_CLI, "get-auth-token"], env=env, capture_output=True,
                                       text=True, check=True, timeout=60).stdout.strip()
        assert cluster.token
        deadline = time.monotonic() + 60
        while len(cluster.alive_nodes()) < 2:
            assert time.monotonic() < deadline, f"the second node never joined: {cluster.alive_nodes()}"
            time.sleep(0.5)
        yield cluster
    finally:
        survivors = _stop_our_processes(ours)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not survivors, f"processes of the test cluster still running: {survivors}"


# -- the test -------------------------------------------------------------------------
def test_ocr_job_runs_on_both_nodes(two_node_cluster, tmp_path):
    from ray.job_submission import JobStatus, JobSubmissionClient

    cluster = two_node_cluster
    # Token auth is really on: the Jobs API refuses a request without the token.
    with pytest.raises(urllib.error.HTTPError) as refused:
        cluster.api("/api/jobs/")
    assert refused.value.code == 401

    inputs = copy_docs(tmp_path / "in", IMAGES)
    out = tmp_path / "out"
    entrypoint = " ".join([
        "python", "-m", "ray_ocr.run", "--pipeline", "OCR", "--input_dir", str(inputs),
        "--output_dir", str(out), "--device", "cpu", "--address", "auto",
        *cli_params(MOBILE_OCR_PARAMS),
    ])
    # The client adds the token itself only when this process's Ray config says
    # RAY_AUTH_MODE=token, and Ray reads that once, when `ray` is first imported;
    # an explicit header works whatever this pytest process imported before.
    client = JobSubmissionClient(cluster.dashboard_url, headers=cluster.auth_headers)
    job_id = client.submit_job(entrypoint=entrypoint)

    deadline = time.monotonic() + JOB_TIMEOUT
    terminal = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}
    status = client.get_job_status(job_id)
    while status not in terminal:
        if time.monotonic() > deadline:
            client.stop_job(job_id)
            pytest.fail(f"job still {status} after {JOB_TIMEOUT} s:\n{client.get_job_logs(job_id)[-4000:]}")
        time.sleep(1)
        status = client.get_job_status(job_id)
    logs = client.get_job_logs(job_id)
    assert status == JobStatus.SUCCEEDED, f"job {status}:\n{logs[-6000:]}"

    # Every input has its JSON, with text recognised.
    for name in IMAGES:
        result = json.loads((out / f"{Path(name).stem}.json").read_text())
        assert [t for t in result["rec_texts"] if t.strip()], f"{name}: no text recognised"

    # One actor per node (cpu, instances_per_device 1), on our two nodes.
    summary = json.loads((out / "summary.json").read_text())
    assert summary["succeeded"] == len(IMAGES) and summary["failed"] == 0
    actor_nodes = [a["node"] for a in summary["actors"].values()]
    assert len(actor_nodes) == 2 and len(set(actor_nodes)) == 2, summary["actors"]
    our_nodes = {n["node_id"] for n in cluster.alive_nodes()}
    assert set(actor_nodes) == our_nodes
    assert all(a["batches"] >= 1 for a in summary["actors"].values()), summary["actors"]
    assert sum(a["batches"] for a in summary["actors"].values()) == len(IMAGES)
    # Ray's own record agrees: ray_ocr's two actors were placed one on each node.
    placed = {a["name"]: a["node_id"] for a in cluster.state("actors")
              if a.get("name", "").startswith("ray_ocr:OCR:cpu:")}
    assert set(placed) == set(summary["actors"]) and set(placed.values()) == our_nodes, placed

    # The driver's end-of-run line reached the job logs.
    assert f"ray_ocr: {len(IMAGES)} files" in logs, logs[-4000:]


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode()
    except OSError:
        return ""


def _metric_total(cluster: Cluster, name: str) -> float:
    """Sum of a metric's samples over every node's Prometheus export."""
    total = 0.0
    for port in cluster.metrics_ports:
        for line in _scrape(port).splitlines():
            if line.startswith(name) and not line.startswith("#") and 'pipeline="OCR"' in line:
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_cli_joins_a_token_auth_head_and_exports_metrics(two_node_cluster, tmp_path):
    """`--address host:port` from a plain shell (no RAY_AUTH_MODE): ray_ocr finds the token
    itself. Its counters reach the Prometheus export while the run goes on."""
    cluster = two_node_cluster
    names = ["word_ch_1.jpg", "textline.png", "11.jpg", "table.jpg"]
    inputs = copy_docs(tmp_path / "in", names)
    out = tmp_path / "out"
    env = {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_MODE"}
    before = _metric_total(cluster, "ray_ocr_files_done")  # earlier runs on this cluster count too
    proc = subprocess.Popen(
        [sys.executable, "-m", "ray_ocr.run", "--pipeline", "OCR", "--input_dir", str(inputs),
         "--output_dir", str(out), "--device", "cpu", "--address", f"127.0.0.1:{cluster.gcs_port}",
         *cli_params(MOBILE_OCR_PARAMS)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    seen_while_running = before
    while proc.poll() is None:
        seen_while_running = max(seen_while_running, _metric_total(cluster, "ray_ocr_files_done"))
        time.sleep(0.5)
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr[-3000:]
    assert "ray_ocr: 4 files" in stdout
    assert len(list(out.glob("*.json"))) == len(names) + 1  # + summary.json
    assert seen_while_running - before == len(names)  # every file counted before the driver left
    time.sleep(2)
    assert _metric_total(cluster, "ray_ocr_files_done") - before == len(names)  # and kept after
    assert _metric_total(cluster, "ray_ocr_pages_done") >= len(names)
    pages_text = "".join(_scrape(p) for p in cluster.metrics_ports)
    assert "ray_ocr_batch_seconds" in pages_text and "ray_ocr_batches_in_flight" in pages_text
