"""Losing a worker node mid-run, on a real 3-node cluster (ray.cluster_utils.Cluster):
the run completes with every output, and the lost node's actor comes back elsewhere."""

import collections
import json
import shutil
import threading
import time

import pytest

import ray_ocr
from tests.conftest import MOBILE_OCR_PARAMS, copy_docs
from tests.helpers import manifest_records, start_ray

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def three_nodes():
    import ray
    from ray.cluster_utils import Cluster

    cluster = start_ray(lambda: Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False}))
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()


def test_run_survives_losing_a_worker_node(three_nodes, tmp_path):
    cluster, workers = three_nodes
    names = ["general_ocr_002.jpg", "11.jpg", "table.jpg", "textline.png", "word_ch_1.jpg",
             "img_12.jpg", "tipc_web_test.jpg", "seal.png", "pdflatex-outline.pdf"]
    inputs = copy_docs(tmp_path / "in", names)
    # A second copy of each image: work left after the loss for the actor Ray restarts
    # elsewhere (its pipeline takes seconds to build), so the test sees it come back.
    for name in names[:-1]:
        shutil.copy(inputs / name, inputs / f"again_{name}")
    names += [f"again_{name}" for name in names[:-1]]
    out = tmp_path / "out"
    result = {}

    def run():
        # One actor per node (1 CPU each); the head keeps a CPU free for a replacement.
        result["summary"] = ray_ocr.run_batch("OCR", str(inputs), str(out), device="cpu", cpus_per_instance=1,
                                        pipeline_params=MOBILE_OCR_PARAMS)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.time() + 300
    lost = workers[1]
    while time.time() < deadline:
        records = manifest_records(out) if (out / "ray_ocr_manifest.jsonl").exists() else []
        if any(r.get("node") == lost.node_id for r in records):
            break  # the doomed node's actor is working: take the node away now
        time.sleep(0.2)
    cluster.remove_node(lost)
    thread.join(timeout=900)
    summary = result["summary"]

    assert summary.exit_code == 0 and summary.succeeded == len(names)
    expected = {n.rsplit(".", 1)[0] + ".json" for n in names if not n.endswith(".pdf")}
    expected |= {f"pdflatex-outline_{i}.json" for i in range(4)}
    assert {p.name for p in out.glob("*.json")} - {"summary.json"} == expected
    done = collections.Counter(r["key"] for r in manifest_records(out) if r["status"] == "done")
    assert done == {n: 1 for n in names}  # each input written exactly once
    survivors = {cluster.head_node.node_id, workers[0].node_id}
    replaced = [a for a in summary.actors.values() if lost.node_id in a["nodes"]]
    assert replaced, "the lost node's actor never ran"
    assert all(a["restarts"] >= 1 and a["node"] in survivors for a in replaced)
    for path in out.glob("*.json"):
        json.loads(path.read_text())
