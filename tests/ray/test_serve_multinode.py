"""ray_ocr.serve on a cluster it joins (ray.cluster_utils.Cluster, real raylets): a head
with no CPU for replicas and one worker node with its own, empty PaddleX cache that
seeds nothing (RAY_OCR_SEED_BUNDLED_MODELS=0), as on an air-gapped cluster without a
shared disk. The replica can only build from the models the builder ships (serve/app.py's
ModelStore), as batch actors build from the driver's."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import MOBILE_OCR_PARAMS, REALDOCS
from tests.helpers import free_port, start_ray

pytestmark = [pytest.mark.ray, pytest.mark.serve_in_process, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def worker_cache(tmp_path_factory):
    import ray
    from ray.cluster_utils import Cluster

    from ray_ocr.models.model_cache import seed_bundled_models

    seed_bundled_models()  # the builder's (this process's) cache has the models
    cache = tmp_path_factory.mktemp("worker_cache")
    cluster = start_ray(lambda: Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}))
    cluster.add_node(num_cpus=1, env_vars={
        "PADDLE_PDX_CACHE_HOME": str(cache), "RAY_OCR_SEED_BUNDLED_MODELS": "0",
        # No download either, wherever this runs: only the shipped models can get there.
        "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"})
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    yield cache
    ray.shutdown()
    cluster.shutdown()


def _model_stores() -> list[str]:
    import ray

    from ray_ocr.engine.model_store import NAMESPACE

    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == NAMESPACE]


def test_a_replica_on_a_node_without_models_builds_from_the_shipped_ones(worker_cache):
    import requests
    from ray import serve

    from ray_ocr.config import ServeConfig
    from ray_ocr.engine.cluster import describe_cluster
    from ray_ocr.serve.cli import delete_apps, deploy_or_explain

    assert not (worker_cache / "official_models").exists()
    config = ServeConfig.build(pipeline="OCR", device="cpu", pipeline_params=MOBILE_OCR_PARAMS, port=free_port())
    # One proxy: the head's and the worker's raylets share this machine, and so its ports.
    serve.start(http_options={"host": "127.0.0.1", "port": config.port}, proxy_location="HeadOnly")
    try:
        plan, paths = deploy_or_explain(config, describe_cluster(embedded=False))
        assert plan.planned == 1 and paths == ["/ocr"]
        assert len(_model_stores()) == 1
        image = base64.b64encode((REALDOCS / "paddleocr" / "word_ch_1.jpg").read_bytes()).decode()
        answer = requests.post(f"http://127.0.0.1:{config.port}/ocr", timeout=120,
                               json={"file": image, "fileType": 1, "visualize": False}).json()
        assert answer["errorCode"] == 0
        assert answer["result"]["ocrResults"][0]["prunedResult"]["rec_texts"] == ["韩国小馆"]
    finally:
        delete_apps(wait_s=120)
        serve.shutdown()
    for name in ("PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec"):  # unpacked on the worker node
        assert (worker_cache / "official_models" / name / "inference.pdiparams").is_file()
    assert _model_stores() == []  # gone with the application


def test_a_store_is_reused_and_only_its_starter_removes_it_and_a_missing_one_is_survived(worker_cache, caplog):
    import ray

    from ray_ocr.config import ServeConfig
    from ray_ocr.models.runner import RunnerSpec
    from ray_ocr.engine import model_store

    spec = RunnerSpec.from_options(ServeConfig.build(pipeline="OCR", device="cpu",
                                                     pipeline_params=MOBILE_OCR_PARAMS))
    name = model_store.ship_models(spec)
    assert name in model_store._made_here and _model_stores() == [name]
    model_store._made_here.clear()  # as if another process had started it
    assert model_store.ship_models(spec) == name and not model_store._made_here  # reused, not claimed
    model_store.remove_stores_made_here()
    assert _model_stores() == [name]  # not this process's to remove
    ray.kill(ray.get_actor(name, namespace=model_store.NAMESPACE))
    assert model_store.with_shipped_models(spec, name) == spec  # the node's own models, then
    assert "are not reachable (ValueError); building from this node's own" in caplog.text
