"""Ray's cluster launcher driven for real: `ray up`, `ray rsync-up`, `ray submit`,
`ray exec`, `ray rsync-down` and `ray down` with examples/cluster-local.yaml, over SSH to
this machine, as the README's "Cluster" section tells a user.

The config is tests/cluster/cluster-local.test.yaml: the shipped file with head_ip
127.0.0.1, no workers, ssh_user root and no `pip install` lines (no network here; the test
links ~/ray_ocr_venv to the venv the tests run in). tests/unit/test_launcher_configs.py
checks that it differs from examples/cluster-local.yaml in nothing else.

`ray stop`, the first of the config's start commands (and what `ray down` runs on the
head), stops EVERY Ray process on the machine it runs on, whoever started it. This test
must therefore not run in parallel with other Ray tests (pytest runs the suite's tests one
after another). It also confines the launcher to namespaces of its own, so that other Ray
clusters on a shared machine survive it:

- a PID namespace (`unshare --pid --fork --mount-proc`): an sshd started there runs every
  command the launcher sends (setup, `ray stop`, `ray start`, the job) inside it, and the
  `ray` CLI runs there too (`nsenter`). `ray stop` finds processes through /proc, which
  shows only this namespace: the test checks that, before `ray up`, nothing from outside
  is visible. When the namespace's first process ends, the kernel kills everything left
  in it: that is the teardown, checked afterwards from outside.
- a network namespace with only a loopback: the sshd listens on 127.0.0.1:22, and the
  shipped start commands' fixed ports (6379, 8076, the dashboard's 8265) collide with
  no other Ray. Ray, finding no route out, uses 127.0.0.1 as the node's IP, which is the
  config's head_ip.
- a mount namespace: /tmp (Ray's /tmp/ray sessions, the launcher's cluster state and
  SSH control sockets) and /run (sshd's privilege-separation directory) are folders of the
  test; the SSH user's home (root's, from the password file) is a throwaway folder, so
  the launcher's `~` paths (~/ray_ocr, ~/.bashrc, ~/.ray/auth_token, ~/ocr_in...) never
  touch root's real home. The base Python of the venv, if it lives in that home (pyenv),
  is mounted read-only into the throwaway one.

The machine that runs `ray` (the "laptop") has a HOME of its own (another throwaway
folder): its token, made by `ray get-auth-token --generate`, reaches the head only through
the config's file mount. The results are compared with a local run (`python -m
ray_ocr.run`, embedded Ray, in the namespace after `ray down`) over the same folder
(the head's ~/ocr_in), so every JSON, `input_path` included, must be byte-equal.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REALDOCS

pytestmark = [pytest.mark.ray, pytest.mark.cluster]

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "tests" / "cluster" / "cluster-local.test.yaml"
CONFIG_ARG = str(CONFIG.relative_to(REPO))  # `ray up` runs from the repository root
PARAMS_FILE = "samples/ocr_mobile_offline.yaml"
VENV = Path(sys.prefix)
DOCS = ["general_ocr_002.jpg", "table.jpg", "textline.png"]  # three real images, ~20 s each here
TOOLS = ["unshare", "nsenter", "ip", "mount", "sshd", "ssh", "ssh-keygen", "rsync"]
STEP_TIMEOUT = 900
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# The raylet gives the dashboard agent a fixed 15 s to report its ports and aborts
# otherwise; on a machine whose cores other jobs keep busy the agent can take longer.
AGENT_TIMEOUT = "Timed out waiting for file"
UP_ATTEMPTS = 3

# The namespace's first process: lo up, the mounts, sshd; then it reaps orphans until
# its stdin (a pipe from pytest) closes, and exits, which ends the whole namespace.
NS_INIT = r"""
import json, os, subprocess, sys, threading, time
spec = json.loads(sys.argv[1])
def run(*cmd):
    subprocess.run(cmd, check=True)
run("ip", "link", "set", "lo", "up")
for src, dst, ro in spec["binds"]:
    run("mount", "--rbind", src, dst)
    if ro:
        run("mount", "-o", "remount,bind,ro", dst)
os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
log = open(spec["sshd_log"], "ab")
subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", spec["sshd_config"]], stdout=log, stderr=log)
print("ready", flush=True)
def leave():
    sys.stdin.read()
    os._exit(0)
threading.Thread(target=leave, daemon=True).start()
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
"""

SSHD_CONFIG = """\
ListenAddress 127.0.0.1
Port 22
HostKey {ws}/sshd/host_key
PidFile {ws}/sshd/sshd.pid
AuthorizedKeysFile {ws}/sshd/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 50
MaxSessions 50
"""


def _clean(text: str) -> str:
    return ANSI.sub("", text).replace("\r", "")


class Namespace:
    """The PID + network + mount namespace, its sshd, and a way to run commands in it."""

    def __init__(self, ws: Path):
        self.ws = ws
        self.head_home = ws / "head_home"  # mounted over the SSH user's home
        self.laptop_home = ws / "laptop_home"  # HOME of the `ray` commands
        self.laptop = ws / "laptop"  # the laptop's folders: scans, results
        self.proc: subprocess.Popen | None = None
        self.init_pid = 0
        self.pid_ns = ""
        self.user_home = Path(pwd.getpwuid(os.getuid()).pw_dir)

    # -- setup -------------------------------------------------------------------------
    def start(self) -> None:
        ws = self.ws
        for folder in (self.head_home / ".ssh", self.laptop_home / ".ssh", self.laptop,
                       ws / "sshd", ws / "tmp", ws / "run"):
            folder.mkdir(parents=True, exist_ok=True)
        for folder in (self.head_home, self.head_home / ".ssh", self.laptop_home / ".ssh"):
            folder.chmod(0o700)
        (ws / "tmp").chmod(0o1777)
        key = self.laptop_home / ".ssh" / "id_ed25519"  # the config's auth.ssh_private_key
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ray-ocr-test",
                        "-f", str(key)], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ws / "sshd" / "host_key")],
                       check=True)
        shutil.copy(f"{key}.pub", ws / "sshd" / "authorized_keys")
        # ssh expands the `~` of `-i ~/.ssh/id_ed25519` with the passwd home, not $HOME:
        # the key must be there too (on a real laptop both are the same folder).
        for name in ("id_ed25519", "id_ed25519.pub"):
            shutil.copy2(key.parent / name, self.head_home / ".ssh" / name)
        (ws / "sshd" / "sshd_config").write_text(SSHD_CONFIG.format(ws=ws))
        # The server as provisioned: a login shell's dotfiles, and the venv the config's
        # setup commands expect at ~/ray_ocr_venv (theirs would come from pip).
        for dotfile in (".bashrc", ".profile"):
            skel = Path("/etc/skel") / dotfile
            if skel.is_file():
                shutil.copy(skel, self.head_home / dotfile)
        (self.head_home / ".bashrc").touch()
        (self.head_home / "ray_ocr_venv").symlink_to(VENV)

        binds = []
        # Paths the venv needs that live in the real home (pyenv's Python), read-only.
        for needed in sorted({Path(sys.base_prefix).resolve(), Path(os.path.realpath(sys.executable)).parent,
                              VENV.resolve(), REPO}):
            if needed.is_relative_to(self.user_home) and not any(
                    needed.is_relative_to(Path(b[0])) for b in binds):
                mount_point = self.head_home / needed.relative_to(self.user_home)
                mount_point.mkdir(parents=True, exist_ok=True)
                binds.append([str(needed), str(mount_point), needed != REPO])
        binds += [[str(self.head_home), str(self.user_home), False],
                  [str(ws / "tmp"), "/tmp", False], [str(ws / "run"), "/run", False]]
        spec = {"binds": binds, "sshd_config": str(ws / "sshd" / "sshd_config"),
                "sshd_log": str(ws / "sshd" / "sshd.log")}
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--net", "--mount", "--fork", "--mount-proc", "--propagation", "private",
             sys.executable, "-c", NS_INIT, json.dumps(spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = self._read_line(self.proc, 60)
        assert ready == "ready", f"namespace did not start: {ready!r}\n{self.proc.stdout.read() if self.proc.poll() is not None else ''}"
        import psutil

        (child,) = psutil.Process(self.proc.pid).children()
        self.init_pid = child.pid
        self.pid_ns = os.readlink(f"/proc/{self.init_pid}/ns/pid")
        assert self.pid_ns != os.readlink("/proc/self/ns/pid")
        self._wait_for_sshd()

    @staticmethod
    def _read_line(proc: subprocess.Popen, timeout: float) -> str:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        return line[0].strip() if line else ""

    def _wait_for_sshd(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            probe = self.run(["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                              "-o", "UserKnownHostsFile=/dev/null", "-i", "~/.ssh/id_ed25519",
                              "root@127.0.0.1", "echo $HOME"], timeout=60)
            if probe.returncode == 0:
                assert probe.stdout.strip().splitlines()[-1] == str(self.user_home), probe.stdout
                return
            assert time.monotonic() < deadline, f"no SSH to the namespace's sshd:\n{probe.stdout}\n{self.sshd_log()}"
            time.sleep(1)

    def sshd_log(self) -> str:
        path = self.ws / "sshd" / "sshd.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    # -- commands ------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "HOME": str(self.laptop_home),
            "USER": "root", "LOGNAME": "root", "LANG": "C.UTF-8", "TERM": "dumb",
            "PATH": f"{VENV / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        env.update(extra)
        return env

    def run(self, argv: list[str], timeout: float = STEP_TIMEOUT, env: dict | None = None) -> subprocess.CompletedProcess:
        """`argv` inside the namespace, from the repository root, with a clean environment
        (never pytest's: no PADDLE_PDX_CACHE_HOME, no RAY_ADDRESS). stdout is stdout and
        stderr together, without colours."""
        env = env or self.env()
        cmd = ["nsenter", f"--target={self.init_pid}", "--pid", "--net", "--mount", f"--wd={REPO}",
               "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()], *argv]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", timeout=timeout)
        done.stdout = _clean(done.stdout)
        return done

    def ray(self, *args: str, timeout: float = STEP_TIMEOUT) -> subprocess.CompletedProcess:
        return self.run(["ray", *args], timeout=timeout)

    def processes(self) -> list[tuple[int, str]]:
        """(pid, command line) of every process psutil sees inside the namespace."""
        probe = self.run(["python", "-c", "import json, psutil; print(json.dumps("
                          "[(p.pid, ' '.join(p.cmdline()) or p.name()) for p in psutil.process_iter()]))"],
                         timeout=120)
        assert probe.returncode == 0, probe.stdout
        return [tuple(item) for item in json.loads(probe.stdout.strip().splitlines()[-1])]

    # -- teardown -------------------------------------------------------------------------
    def outside_members(self) -> list[int]:
        """PIDs (as seen from outside) of processes still in the namespace."""
        members = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "ns" / "pid") == self.pid_ns:
                        members.append(int(entry.name))
                except OSError:
                    continue
        return members

    def stop(self) -> list[int]:
        """End the namespace: its init leaves when its stdin closes, and the kernel kills
        the rest. Returns the PIDs still in it afterwards (none expected)."""
        if self.proc is None:
            return []
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            if self.init_pid:
                os.kill(self.init_pid, signal.SIGKILL)  # ends the namespace the same way
            self.proc.wait(timeout=30)
        if not self.pid_ns:
            return []
        deadline = time.monotonic() + 30
        while (left := self.outside_members()) and time.monotonic() < deadline:
            time.sleep(0.5)
        return left


def _missing_tools() -> list[str]:
    return [tool for tool in TOOLS if not (shutil.which(tool) or Path(f"/usr/sbin/{tool}").exists())]


@pytest.fixture(scope="module")
def namespace():
    if os.geteuid() != 0:
        pytest.skip("needs root: namespaces, mounts and an sshd of its own")
    missing = _missing_tools()
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (.ci/run installs openssh-server rsync iproute2)")
    # Not under /tmp: the namespace gets a /tmp of its own, and the workspace must have
    # one path inside and outside.
    ws = Path(tempfile.mkdtemp(prefix="ray_ocr_launcher_", dir="/var/tmp"))
    ns = Namespace(ws)
    try:
        ns.start()
        yield ns
    finally:
        left = ns.stop()
        shutil.rmtree(ws, ignore_errors=True)
        assert not left, f"processes of the test namespace still running: {left}"


def _raylet_timed_out(ns: Namespace) -> bool:
    sessions = sorted((ns.ws / "tmp" / "ray").glob("session_2*"), key=lambda p: p.stat().st_mtime)
    if not sessions:
        return False
    log = sessions[-1] / "logs" / "raylet.out"
    return log.is_file() and AGENT_TIMEOUT in log.read_text(errors="replace")


def _ray_up(ns: Namespace) -> subprocess.CompletedProcess:
    for attempt in range(1, UP_ATTEMPTS + 1):
        up = ns.ray("up", "-y", CONFIG_ARG)
        if up.returncode == 0 or not _raylet_timed_out(ns) or attempt == UP_ATTEMPTS:
            return up
        print(f"ray up, attempt {attempt}: the raylet gave up waiting for its dashboard agent "
              "(a busy machine); running `ray up` again", file=sys.stderr)
    return up


def _summary_line(output: str) -> str:
    lines = [line for line in output.splitlines() if re.match(r"ray_ocr: (\d+ files|stopped)", line)]
    assert lines, output[-4000:]
    return lines[-1]


def _submit(ns: Namespace, *flags: str) -> subprocess.CompletedProcess:
    """As the README: flags after `--`, a quoted `~` that the head's shell expands."""
    return ns.ray("submit", CONFIG_ARG, "scripts/ray_ocr_job.py", "--", *flags)


@pytest.mark.timeout(3600)
def test_ray_up_submit_rsync_down(namespace, tmp_path):
    ns = namespace
    head = ns.head_home
    t0 = time.monotonic()
    timings = {}

    # Isolation: psutil in the namespace (what `ray stop` uses) sees only the namespace's
    # init, its sshd and the probe itself: no Ray of anyone else, not this pytest.
    seen = ns.processes()
    assert len(seen) <= 4, seen
    assert not [c for _, c in seen if re.search(r"raylet|gcs_server|pytest|dashboard", c)], seen
    assert "import json, os, subprocess" in dict(seen)[1] and any("sshd" in c for _, c in seen), seen

    # Without a token on the laptop, `ray up` fails (the token's file mount has no source)
    # instead of starting an open cluster.
    tokenless = ns.ray("up", "-y", CONFIG_ARG)
    assert tokenless.returncode != 0 and "auth_token" in tokenless.stdout, tokenless.stdout[-4000:]
    assert not [c for _, c in ns.processes() if re.search(r"raylet|gcs_server", c)]
    timings["tokenless ray up"] = time.monotonic() - t0

    # The token, once, on the laptop (README: `ray get-auth-token --generate`).
    made = ns.ray("get-auth-token", "--generate", timeout=120)
    assert made.returncode == 0, made.stdout
    laptop_token = ns.laptop_home / ".ray" / "auth_token"
    assert laptop_token.is_file() and not (head / ".ray").exists()

    # ray up
    t = time.monotonic()
    up = _ray_up(ns)
    timings["ray up"] = time.monotonic() - t
    assert up.returncode == 0, f"ray up failed:\n{up.stdout[-8000:]}"
    # `ulimit -n 65536` where the hard limit is lower: the start command raises the soft
    # limit to the hard one instead of printing an error.
    assert "cannot modify limit" not in up.stdout, up.stdout[-3000:]
    # What the setup did on the head: the repository (without .gitignore'd files such as
    # .venv), the token (copied over SSH, owner-only), the venv and token mode in
    # ~/.bashrc, the bundled models in PaddleX's cache.
    assert (head / "ray_ocr" / "scripts" / "ray_ocr_job.py").is_file()
    assert (head / "ray_ocr" / PARAMS_FILE).is_file()
    assert not (head / "ray_ocr" / ".venv").exists() and not (head / "ray_ocr" / ".git").exists()
    head_token = head / ".ray" / "auth_token"
    assert head_token.read_bytes() == laptop_token.read_bytes()
    assert head_token.stat().st_mode & 0o777 == 0o600
    bashrc = (head / ".bashrc").read_text().splitlines()
    assert "source ~/ray_ocr_venv/bin/activate" in bashrc and "export RAY_AUTH_MODE=token" in bashrc
    assert (head / ".paddlex" / "official_models" / "PP-OCRv5_mobile_det").is_dir()

    # ray rsync-up of a folder of real documents
    scans = ns.laptop / "scans"
    scans.mkdir()
    for name in DOCS:
        (match,) = REALDOCS.glob(f"*/{name}")
        shutil.copy(match, scans / name)
    synced = ns.ray("rsync-up", CONFIG_ARG, f"{scans}/", f"{ns.user_home}/ocr_in/")
    assert synced.returncode == 0, synced.stdout[-4000:]
    assert sorted(p.name for p in (head / "ocr_in").iterdir()) == sorted(DOCS)

    # ray submit: the run, on the head, joined to the cluster (--address auto)
    flags = ["--pipeline", "OCR", "--input_dir", "~/ocr_in", "--output_dir", "~/ocr_out",
             "--device", "cpu", "--params_file", f"~/ray_ocr/{PARAMS_FILE}"]
    t = time.monotonic()
    first = _submit(ns, *flags)
    timings["first submit"] = time.monotonic() - t
    assert first.returncode == 0, first.stdout[-8000:]
    assert _summary_line(first.stdout).startswith(f"ray_ocr: {len(DOCS)} files, {len(DOCS)} pages, 0 failures, 0 skipped")
    assert "ray_ocr_job: exit code" not in first.stdout
    summary = json.loads((head / "ocr_out" / "summary.json").read_text())
    assert summary["succeeded"] == len(DOCS) and summary["failed"] == 0
    assert len(summary["actors"]) >= 1  # actors of the launcher's cluster, not an embedded Ray

    # A second submit resumes: everything is skipped.
    second = _submit(ns, *flags)
    assert second.returncode == 0, second.stdout[-8000:]
    assert _summary_line(second.stdout).startswith(f"ray_ocr: {len(DOCS)} files, 0 pages, 0 failures, {len(DOCS)} skipped")

    # A bad flag: ray_ocr exits 2 on the head; `ray submit` reports any failure as 1,
    # and the job's last line names ray_ocr's code.
    bad = _submit(ns, "--pipeline", "OCR", "--input_dir", "~/ocr_in", "--output_dir", "~/ocr_bad",
                  "--no_such_flag")
    assert bad.returncode == 1, bad.stdout[-4000:]
    assert "unrecognized arguments: --no_such_flag" in bad.stdout
    assert "ray_ocr_job: exit code 2 (usage or setup error)" in bad.stdout, bad.stdout[-4000:]

    # ray exec 'ray status': the head, alive, with its CPUs.
    status = ns.ray("exec", CONFIG_ARG, "ray status", timeout=300)
    assert status.returncode == 0, status.stdout[-4000:]
    assert "1 local.cluster.node" in status.stdout and re.search(r"/\d+(\.\d+)? CPU", status.stdout), status.stdout[-3000:]

    # Token authentication is on: a client without the token, or with another one, is
    # refused; with the cluster's token (the laptop's copy) it gets in.
    refused = ns.run(["ray", "status", "--address", "127.0.0.1:6379"], timeout=300)
    assert refused.returncode != 0 and "InvalidAuthToken" in refused.stdout, refused.stdout[-3000:]
    wrong = ns.run(["ray", "status", "--address", "127.0.0.1:6379"], timeout=300,
                   env=ns.env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="0" * 64))
    assert wrong.returncode != 0 and "InvalidAuthToken" in wrong.stdout, wrong.stdout[-3000:]
    allowed = ns.run(["ray", "status", "--address", "127.0.0.1:6379"], timeout=300,
                     env=ns.env(RAY_AUTH_MODE="token"))
    assert allowed.returncode == 0 and "local.cluster.node" in allowed.stdout, allowed.stdout[-3000:]
    # The dashboard (and the Jobs API on its port) asks for the token too.
    http = ns.run(["python", "-c", "import urllib.request, urllib.error\n"
                   "try:\n urllib.request.urlopen('http://127.0.0.1:8265/api/jobs/', timeout=30); print('open')\n"
                   "except urllib.error.HTTPError as e: print('http', e.code)"], timeout=120)
    assert http.stdout.strip().splitlines()[-1] == "http 401", http.stdout

    # ray rsync-down of the results
    down_dir = ns.laptop / "ocr_out"
    fetched = ns.ray("rsync-down", CONFIG_ARG, f"{ns.user_home}/ocr_out/", f"{down_dir}/")
    assert fetched.returncode == 0, fetched.stdout[-4000:]

    # ray down: the head's Ray stops (`ray stop` over SSH), in the namespace.
    gone = ns.ray("down", "-y", CONFIG_ARG)
    assert gone.returncode == 0, gone.stdout[-4000:]
    deadline = time.monotonic() + 60
    while [c for _, c in ns.processes() if re.search(r"raylet|gcs_server", c)]:
        assert time.monotonic() < deadline, ns.processes()
        time.sleep(1)

    # The results are complete...
    stems = sorted(Path(name).stem for name in DOCS)
    results = sorted(p.stem for p in down_dir.glob("*.json") if p.name != "summary.json")
    assert results == stems
    manifest = [json.loads(line) for line in (down_dir / "ray_ocr_manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == len(DOCS), manifest
    for stem in stems:
        result = json.loads((down_dir / f"{stem}.json").read_text())
        assert [text for text in result["rec_texts"] if text.strip()], f"{stem}: no text"

    # ...and byte-equal to a local run's over the same folder (so `input_path` is the
    # same too): `python -m ray_ocr.run` with an embedded Ray, in the namespace.
    local_out = ns.laptop / "local_out"
    t = time.monotonic()
    local = ns.run(["python", "-m", "ray_ocr.run", "--pipeline", "OCR", "--input_dir", f"{ns.user_home}/ocr_in",
                    "--output_dir", str(local_out), "--device", "cpu", "--params_file", PARAMS_FILE])
    timings["local run"] = time.monotonic() - t
    assert local.returncode == 0, local.stdout[-6000:]
    for stem in stems:
        assert (down_dir / f"{stem}.json").read_bytes() == (local_out / f"{stem}.json").read_bytes(), stem
    timings["total"] = time.monotonic() - t0
    print("launcher test timings (s):", {k: round(v) for k, v in timings.items()})
