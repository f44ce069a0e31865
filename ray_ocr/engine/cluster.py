"""Starting an embedded Ray, or joining a running cluster, and reading its resources."""

from __future__ import annotations

import json
import logging
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ray_ocr.config import DeviceRequest
from ray_ocr.errors import UsageError

logger = logging.getLogger(__name__)

_OVERRIDE = "RAY_OVERRIDE_RESOURCES"  # Ray's own per-node resource override (JSON)


@dataclass(frozen=True)
class NodeResources:
    node_id: str
    address: str
    cpus: float
    gpus: float


@dataclass(frozen=True)
class ClusterInfo:
    nodes: tuple[NodeResources, ...]
    dashboard_url: str | None
    embedded: bool

    @property
    def total_gpus(self) -> float:
        return sum(n.gpus for n in self.nodes)

    @property
    def total_cpus(self) -> float:
        return sum(n.cpus for n in self.nodes)

    @property
    def ships_models(self) -> bool:
        """Whether actors and replicas get the models from this process: the embedded
        Ray's are on this machine and read its disk; a joined cluster's nodes, now or
        joining later, may have neither the models nor a network to fetch them."""
        return not self.embedded


def _visible_id_list() -> list[str] | None:
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    if cvd is None:
        return None
    return [part.strip() for part in cvd.split(",") if part.strip()]


def _override_resources() -> dict:
    raw = os.environ.get(_OVERRIDE)
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}


def local_gpu_ids() -> list[str]:
    """The GPU ids an embedded Ray on this machine would own, as Ray decides them.

    Ray counts GPUs with NVML (or ``RAY_OVERRIDE_RESOURCES``'s "GPU", which also
    declares logical GPUs on machines without any) and names them by
    ``CUDA_VISIBLE_DEVICES`` when that is set.
    """
    override = _override_resources()
    if "GPU" in override:
        count = int(override["GPU"])
    else:
        try:
            from ray._private.accelerators import get_accelerator_manager_for_resource

            manager = get_accelerator_manager_for_resource("GPU")
            count = int(manager.get_current_node_num_accelerators()) if manager else 0
        except Exception:  # detection is best effort; no GPU is the safe answer
            count = 0
    visible = _visible_id_list()
    if visible is None:
        return [str(i) for i in range(count)]
    return visible[:count]


def select_embedded_gpus(device: DeviceRequest) -> list[str] | None:
    """Which of this machine's GPUs the embedded Ray gets; None leaves Ray's default.

    Checked before Ray starts, so `--device gpu:7` on a 4-GPU machine is a usage error.
    """
    if device.kind == "cpu":
        return None
    available = local_gpu_ids()
    if device.gpu_ids is None:
        if device.kind == "gpu" and not available:
            raise UsageError("--device gpu: this machine has no GPU that Ray can see")
        return None
    missing = [i for i in device.gpu_ids if i >= len(available)]
    if missing:
        seen = f"gpu:0..{len(available) - 1}" if available else "no GPU"
        raise UsageError(f"--device {device}: GPU {missing[0]} is not visible (Ray sees {seen})")
    return [available[i] for i in device.gpu_ids]


def gpus_for_this_run(address: str | None, device: DeviceRequest) -> list[str] | None:
    """The GPUs an embedded Ray gets, when this run starts one (no --address, and this
    process has not joined a Ray already); None otherwise."""
    import ray

    embedded = address is None and not ray.is_initialized()
    return select_embedded_gpus(device) if embedded else None


def _token_available() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return Path(path).is_file()
    return (Path.home() / ".ray" / "auth_token").is_file()


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """A `host:port` (or `ray://host:port`) that nothing listens on is a usage error
    now, not minutes of Ray retrying to connect ("auto" is left to Ray)."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if address == "auto" or "://" in host or not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise UsageError(f"--address {address}: cannot connect ({exc.strerror or exc}); is the cluster up "
                         "(`ray status` on its head)?") from None


_TOKEN_MODE_CHOSEN_HERE = False  # set by prepare_client_auth: for auth_hint


def auth_hint() -> str:
    """When actors die at once, why it may be: a token left by an earlier cluster made
    this driver use token auth, and a cluster without it rejects its workers' calls."""
    if not _TOKEN_MODE_CHOSEN_HERE:
        return ""
    return ("; this driver used token authentication because a Ray token is present (RAY_AUTH_TOKEN, "
            "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token): if the cluster runs without it, run with "
            "RAY_AUTH_MODE=disabled")


def prepare_client_auth() -> None:
    """Clusters started by ``ray start`` (Ray >= 2.60) require token auth from clients.

    When the user has not chosen a mode and a token is present, use it; this never
    turns authentication off. Ray reads RAY_AUTH_MODE when it is imported, so an
    already imported Ray is told to read its configuration again (as Ray's own
    token setup does).
    """
    global _TOKEN_MODE_CHOSEN_HERE
    if os.environ.get("RAY_AUTH_MODE") is not None or not _token_available():
        return
    os.environ["RAY_AUTH_MODE"] = "token"
    _TOKEN_MODE_CHOSEN_HERE = True
    if "ray" in sys.modules:
        try:
            from ray._raylet import Config

            Config.initialize("")
        except Exception as exc:  # noqa: BLE001 - private API; the env var still helps workers
            logger.debug("could not refresh Ray's config for token auth: %s", exc)


def describe_cluster(embedded: bool) -> ClusterInfo:
    import ray

    nodes = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        res = node.get("Resources", {})
        nodes.append(
            NodeResources(
                node_id=node["NodeID"],
                address=node.get("NodeManagerAddress", ""),
                cpus=float(res.get("CPU", 0)),
                gpus=float(res.get("GPU", 0)),
            )
        )
    dashboard = None
    try:
        ctx = ray.get_runtime_context()
        dashboard = getattr(ctx, "dashboard_url", None)
    except Exception:
        pass
    if not dashboard:
        try:
            from ray._private.worker import global_worker

            dashboard = global_worker.node.address_info.get("webui_url") if global_worker.node else None
        except Exception:
            dashboard = None
    if dashboard and not dashboard.startswith("http"):
        dashboard = "http://" + dashboard
    return ClusterInfo(tuple(nodes), dashboard, embedded)


@contextmanager
def ray_session(
    address: str | None,
    gpu_ids: list[str] | None,
    *,
    num_cpus: int | None = None,
    quiet: bool = True,
) -> Iterator[ClusterInfo]:
    """Yield the cluster to run on: the one this process already joined, the one at
    `address`, or an embedded single-node Ray owning exactly `gpu_ids`.

    Only a Ray this function started is shut down at the end.
    """
    import ray

    level = logging.WARNING if quiet else logging.INFO
    if quiet:
        # Ray's notice that the embedded cluster uses token auth (it stays on).
        logging.getLogger("ray._private.authentication").setLevel(logging.ERROR)
    if ray.is_initialized():
        yield describe_cluster(embedded=False)
        return
    if address:
        check_reachable(address)
        prepare_client_auth()
        logger.info("joining the Ray cluster at %s", address)
        ray.init(address=address, logging_level=level, log_to_driver=not quiet)
        embedded = False
    else:
        logger.info("starting Ray on this machine (a few seconds)")  # the first line after a silence
        with _owning_gpus(gpu_ids):
            # address="local": never join whatever cluster Ray's current-cluster file names.
            ray.init(address="local", num_cpus=num_cpus, num_gpus=len(gpu_ids) if gpu_ids is not None else None,
                     logging_level=level, log_to_driver=not quiet)
        embedded = True
    try:
        yield describe_cluster(embedded)
    finally:
        ray.shutdown()


@contextmanager
def _owning_gpus(gpu_ids: list[str] | None) -> Iterator[None]:
    """While the embedded Ray starts, its raylet inherits CUDA_VISIBLE_DEVICES (and Ray's
    resource override) naming only `gpu_ids`: Ray then owns and hands out just those."""
    saved: dict[str, str | None] = {}
    if gpu_ids is not None:
        saved["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES")
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
        override = _override_resources()
        if "GPU" in override:
            saved[_OVERRIDE] = os.environ.get(_OVERRIDE)
            override["GPU"] = len(gpu_ids)
            os.environ[_OVERRIDE] = json.dumps(override)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
