"""How many pipeline actors to start, and what each asks Ray for. Pure: no Ray calls.

GPU: K = --instances_per_device actors per GPU, each asking ``num_gpus=1/K`` (or
--gpus_per_instance); Ray packs fractional requests onto one GPU and sets
``CUDA_VISIBLE_DEVICES`` for each actor, whose pipeline then uses ``gpu:0``.
CPU: K actors per node, sharing the node's CPUs; each pipeline's ``cpu_threads`` is its
whole-CPU share, so instances never oversubscribe cores.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ray_ocr.config import DeviceRequest
from ray_ocr.engine.cluster import ClusterInfo
from ray_ocr.errors import UsageError

# Ray tracks resources to 1e-4; round shares down so K shares always fit in one unit.
_RESOURCE_STEP = 10_000


def _share(total: float, parts: int) -> float:
    return math.floor(total / parts * _RESOURCE_STEP) / _RESOURCE_STEP


@dataclass(frozen=True)
class ActorSlot:
    """One actor to start: its name on the dashboard and its resource request."""

    name: str
    device: str  # what the pipeline is told: "cpu" or "gpu:0"
    num_cpus: float
    num_gpus: float
    cpu_threads: int | None
    node_id: str | None = None  # soft affinity: CPU actors spread over nodes

    def ray_resources(self) -> dict:
        """What the actor asks Ray for: ``ray.remote`` options for a batch actor,
        ``ray_actor_options`` for a Serve replica."""
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}

    def placed(self, spec):
        """The pipeline's RunnerSpec as this slot runs it: the device Ray leaves visible
        and its whole-CPU share as ``cpu_threads``."""
        return dataclasses.replace(spec, device=self.device, cpu_threads=self.cpu_threads)


def resolve_device_kind(device: DeviceRequest, cluster: ClusterInfo) -> str:
    if device.kind != "auto":
        return device.kind
    return "gpu" if cluster.total_gpus > 0 else "cpu"


def plan_actors(
    pipeline_name: str,
    device: DeviceRequest,
    cluster: ClusterInfo,
    instances_per_device: int = 1,
    gpus_per_instance: float | None = None,
    cpus_per_instance: float | None = None,
) -> list[ActorSlot]:
    kind = resolve_device_kind(device, cluster)
    k = instances_per_device
    if kind == "gpu":
        return _plan_gpu(pipeline_name, device, cluster, k, gpus_per_instance, cpus_per_instance)
    if gpus_per_instance is not None:  # --device auto on a cluster with no GPU
        raise UsageError(f"--gpus_per_instance {gpus_per_instance:g}: the Ray cluster has no GPU, so the run "
                         "is on CPU (--cpus_per_instance sets a CPU share)")
    return _plan_cpu(pipeline_name, cluster, k, cpus_per_instance)


def plan_for(options, cluster: ClusterInfo) -> list[ActorSlot]:
    """The slots for a config of ray_ocr/config.py (its device and GPU and CPU shares):
    batch runs start an actor per slot; ray_ocr.serve gives each replica a slot's shape."""
    return plan_actors(options.pipeline.display_name, options.device, cluster, options.instances_per_device,
                       options.gpus_per_instance, options.cpus_per_instance)


def _gpu_nodes(cluster: ClusterInfo) -> list:
    return [n for n in cluster.nodes if n.gpus > 0]


def _cpu_nodes(cluster: ClusterInfo) -> list:
    return [n for n in cluster.nodes if n.cpus >= 1]


def nodes_for(slots: list[ActorSlot], cluster: ClusterInfo) -> int:
    """How many nodes the slots run on: GPU slots on the GPU nodes; CPU slots on the
    nodes they were planned on (not a head started with ``--num-cpus 0``, nor a node
    too small for ``--cpus_per_instance``)."""
    if any(s.num_gpus for s in slots):
        return len(_gpu_nodes(cluster))
    return len({s.node_id for s in slots})  # one CPU node: no affinity, one None


def _plan_gpu(name, device, cluster, k, gpus_per_instance, cpus_per_instance) -> list[ActorSlot]:
    gpu_nodes = _gpu_nodes(cluster)
    if not gpu_nodes:
        raise UsageError(f"--device {device}: the Ray cluster has no GPU")
    if device.gpu_ids is not None and not cluster.embedded:
        whole = all(int(n.gpus) == len(device.gpu_ids) for n in gpu_nodes)
        if not (whole and sorted(device.gpu_ids) == list(range(len(device.gpu_ids)))):
            raise UsageError(
                f"--device {device}: picking GPU ids needs the embedded Ray; on a running "
                "cluster use --device gpu, and limit a node's GPUs with CUDA_VISIBLE_DEVICES "
                "when you `ray start` it"
            )
    per_actor = gpus_per_instance if gpus_per_instance is not None else _share(1.0, k)
    if per_actor * k > 1.0 + 1e-9:
        raise UsageError(
            f"--gpus_per_instance {per_actor} x --instances_per_device {k} is more than one GPU"
        )
    _check_cpus_fit(gpu_nodes, cpus_per_instance)
    threads = max(1, int(cpus_per_instance)) if cpus_per_instance else None
    slots = []
    gpu_index = 0
    for node in gpu_nodes:
        for _ in range(int(node.gpus)):
            for i in range(k):
                slots.append(
                    ActorSlot(
                        name=f"ray_ocr:{name}:gpu{gpu_index}:{i}",
                        device="gpu:0",
                        num_cpus=cpus_per_instance or 0,
                        num_gpus=per_actor,
                        cpu_threads=threads,
                    )
                )
            gpu_index += 1
    return slots


def _check_cpus_fit(nodes, cpus_per_instance: float | None) -> None:
    """An actor asking for more CPUs than any node has would wait for room forever."""
    if cpus_per_instance and not any(n.cpus + 1e-9 >= cpus_per_instance for n in nodes):
        largest = max(n.cpus for n in nodes)
        raise UsageError(f"--cpus_per_instance {cpus_per_instance:g}: no node has that many CPUs "
                         f"(the largest has {largest:g})")


def _plan_cpu(name, cluster, k, cpus_per_instance) -> list[ActorSlot]:
    cpu_nodes = _cpu_nodes(cluster)
    if not cpu_nodes:
        raise UsageError("--device cpu: the Ray cluster has no CPU to run on")
    _check_cpus_fit(cpu_nodes, cpus_per_instance)
    slots = []
    for node in cpu_nodes:
        share = cpus_per_instance if cpus_per_instance else _share(node.cpus, k)
        # An explicit share: only the actors that fit (none on a small node).
        fits = min(k, int(node.cpus / share + 1e-9)) if cpus_per_instance else k
        for _ in range(fits):
            slots.append(
                ActorSlot(
                    name=f"ray_ocr:{name}:cpu:{len(slots)}",
                    device="cpu",
                    num_cpus=share,
                    num_gpus=0,
                    cpu_threads=max(1, int(share)),
                    node_id=node.node_id if len(cpu_nodes) > 1 else None,
                )
            )
    return slots
