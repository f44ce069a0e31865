import pytest

from ray_ocr.config import DeviceRequest
from ray_ocr.engine.cluster import ClusterInfo, NodeResources
from ray_ocr.engine.placement import nodes_for, plan_actors
from ray_ocr.errors import UsageError


def cluster(*nodes, embedded=True):
    return ClusterInfo(tuple(NodeResources(f"n{i}", "127.0.0.1", c, g) for i, (c, g) in enumerate(nodes)),
                       None, embedded)


def test_gpu_fractions_and_names():
    slots = plan_actors("SealRecognition", DeviceRequest.parse("gpu:0,1,2,3"), cluster((8, 4)), 4)
    assert len(slots) == 16
    assert all(s.num_gpus == 0.25 and s.device == "gpu:0" for s in slots)
    assert slots[5].name == "ray_ocr:SealRecognition:gpu1:1"


def test_thirds_fit_in_one_gpu():
    slots = plan_actors("OCR", DeviceRequest.parse("gpu"), cluster((8, 1)), 3)
    assert sum(s.num_gpus for s in slots) <= 1.0 and len(slots) == 3


def test_cpu_instances_share_cores_without_oversubscribing():
    slots = plan_actors("OCR", DeviceRequest.parse("cpu"), cluster((2, 0)), 2)
    assert [(s.num_cpus, s.cpu_threads) for s in slots] == [(1.0, 1), (1.0, 1)]
    one = plan_actors("OCR", DeviceRequest.parse("cpu"), cluster((2, 0)), 1)
    assert [(s.num_cpus, s.cpu_threads) for s in one] == [(2.0, 2)]
    explicit = plan_actors("OCR", DeviceRequest.parse("cpu"), cluster((8, 0)), 2, cpus_per_instance=3)
    assert [(s.num_cpus, s.cpu_threads) for s in explicit] == [(3, 3), (3, 3)]


def test_auto_picks_gpu_when_present():
    assert plan_actors("OCR", DeviceRequest(), cluster((2, 0)))[0].device == "cpu"
    assert plan_actors("OCR", DeviceRequest(), cluster((2, 2)))[0].device == "gpu:0"


def test_gpu_errors():
    with pytest.raises(UsageError, match="--gpus_per_instance 0.5: the Ray cluster has no GPU"):
        plan_actors("OCR", DeviceRequest(), cluster((2, 0)), gpus_per_instance=0.5)  # auto: on CPU
    with pytest.raises(UsageError, match="no GPU"):
        plan_actors("OCR", DeviceRequest.parse("gpu"), cluster((2, 0)))
    with pytest.raises(UsageError, match="more than one GPU"):
        plan_actors("OCR", DeviceRequest.parse("gpu"), cluster((2, 1)), 4, gpus_per_instance=0.5)
    with pytest.raises(UsageError, match="embedded Ray"):
        plan_actors("OCR", DeviceRequest.parse("gpu:0,2"), cluster((2, 4), embedded=False))


def test_multi_node_cpu_spreads_with_soft_affinity():
    slots = plan_actors("OCR", DeviceRequest.parse("cpu"), cluster((4, 0), (2, 0)), 2)
    assert [(s.node_id, s.num_cpus) for s in slots] == [("n0", 2.0), ("n0", 2.0), ("n1", 1.0), ("n1", 1.0)]


def test_cpu_requests_that_no_node_can_hold():
    """An actor that never fits would wait for room forever: a usage error if none can,
    and only the actors that fit on a node are planned there."""
    with pytest.raises(UsageError, match=r"--cpus_per_instance 8: no node has that many CPUs \(the largest has 4\)"):
        plan_actors("OCR", DeviceRequest.parse("cpu"), cluster((2, 0), (4, 0)), 1, cpus_per_instance=8)
    with pytest.raises(UsageError, match="no node has that many CPUs"):
        plan_actors("OCR", DeviceRequest.parse("gpu"), cluster((2, 1)), 1, cpus_per_instance=4)
    slots = plan_actors("OCR", DeviceRequest.parse("cpu"), cluster((2, 0), (4, 0)), 2, cpus_per_instance=1.5)
    assert [s.node_id for s in slots] == ["n0", "n1", "n1"]


def test_nodes_counted_are_those_the_actors_run_on():
    """The "starting N actor(s) on M node(s)" line: a head with no CPUs, a node too small
    for the share and a CPU-only node beside GPU nodes are not counted."""
    cpu_head = cluster((0, 0), (2, 0), (2, 0))
    assert nodes_for(plan_actors("OCR", DeviceRequest.parse("cpu"), cpu_head, 1), cpu_head) == 2
    one = cluster((0, 0), (2, 0))
    assert nodes_for(plan_actors("OCR", DeviceRequest.parse("cpu"), one, 2), one) == 1
    small = cluster((2, 0), (4, 0))
    assert nodes_for(plan_actors("OCR", DeviceRequest.parse("cpu"), small, 1, cpus_per_instance=3), small) == 1
    gpus = cluster((8, 0), (8, 2), (8, 1))
    assert nodes_for(plan_actors("OCR", DeviceRequest.parse("gpu"), gpus, 2), gpus) == 2
