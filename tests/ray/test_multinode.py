"""A cluster of one head and two worker nodes (ray.cluster_utils.Cluster, real raylets).

Each worker has 2 logical GPUs, 1 CPU and its own, empty PaddleX model cache, and does
not seed the bundled models (RAY_OCR_SEED_BUNDLED_MODELS=0): only what the driver ships
can reach it, as on an air-gapped cluster without a shared disk.
"""

import collections
import json
import os

import pytest

import ray_ocr
from tests.conftest import MOBILE_OCR_PARAMS, copy_docs
from tests.helpers import start_and_census, start_ray

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def two_gpu_workers(tmp_path_factory):
    import ray
    from ray.cluster_utils import Cluster

    from ray_ocr.models.model_cache import seed_bundled_models

    seed_bundled_models()  # the driver's own cache has the models
    caches = [tmp_path_factory.mktemp(f"worker{i}_cache") for i in range(2)]
    cluster = start_ray(lambda: Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}))
    workers = [
        cluster.add_node(num_cpus=1, num_gpus=2, env_vars={
            "PADDLE_PDX_CACHE_HOME": str(cache), "RAY_OCR_SEED_BUNDLED_MODELS": "0"})
        for cache in caches
    ]
    ray.init(address=cluster.address, log_to_driver=False)
    cluster.wait_for_nodes()
    yield ray, workers, caches
    ray.shutdown()
    cluster.shutdown()


def test_two_instances_per_gpu_on_two_nodes(two_gpu_workers):
    ray, workers, _ = two_gpu_workers
    census = start_and_census(ray, "gpu", 2)
    assert len(census) == 8
    per_node = collections.Counter(w.node_id for w in census)
    assert per_node == {workers[0].node_id: 4, workers[1].node_id: 4}
    for w in census:
        assert len(w.gpu_ids) == 1 and w.cuda_visible_devices == w.gpu_ids[0]
    per_gpu = collections.Counter((w.node_id, w.gpu_ids[0]) for w in census)
    assert sorted(per_gpu.values()) == [2, 2, 2, 2]


def test_workers_with_empty_caches_build_from_shipped_models(two_gpu_workers, tmp_path):
    ray, workers, caches = two_gpu_workers
    for cache in caches:
        assert not (cache / "official_models").exists()
    inputs = copy_docs(tmp_path / "in", ["word_ch_1.jpg", "textline.png", "11.jpg"])
    summary = ray_ocr.run_batch("OCR", str(inputs), str(tmp_path / "out"), device="cpu",
                          pipeline_params=MOBILE_OCR_PARAMS)
    assert summary.exit_code == 0 and summary.succeeded == 3
    assert json.loads((tmp_path / "out" / "word_ch_1.json").read_text())["rec_texts"] == ["韩国小馆"]
    assert {a["node"] for a in summary.actors.values()} <= {w.node_id for w in workers}
    for cache in caches:  # each worker node unpacked what the driver sent
        for name in ("PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec"):
            assert (cache / "official_models" / name / "inference.pdiparams").is_file()
    assert not any(n.startswith(".") for cache in caches for n in os.listdir(cache / "official_models"))
    from ray_ocr.engine.model_store import NAMESPACE

    stores = [a for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == NAMESPACE]
    assert stores == []  # the run's own model store ended with it


def test_document_pipeline_models_given_by_folder_are_shipped_to_every_worker(two_gpu_workers, tmp_path):
    """SealRecognition with every stage on: its stand-in orientation, unwarping and
    layout models are named by *_model_dir, a folder only the driver reads; each worker
    unpacks its own copy into its empty cache and builds from that."""
    import yaml

    from ray_ocr.testing.standin_models import build_pipeline_models

    _, workers, caches = two_gpu_workers
    params = build_pipeline_models("SealRecognition", tmp_path / "models",
                                   layout_boxes=[("seal", (0.05, 0.05, 0.95, 0.95), 0.9)])
    inputs = copy_docs(tmp_path / "in", ["seal.png"])
    summary = ray_ocr.run_batch("SealRecognition", str(inputs), str(tmp_path / "out"), device="cpu",
                                pipeline_params=params, progress_interval=-1)
    assert summary.exit_code == 0 and summary.succeeded == 1
    seal = json.loads((tmp_path / "out" / "seal.json").read_text(encoding="utf-8"))
    assert "发票专用章" in [t for s in seal["seal_res_list"] for t in s["rec_texts"]]
    wanted = {params[k.replace("_dir", "_name")] for k in params if k.endswith("_model_dir")}
    for cache in caches:
        shipped = {yaml.safe_load((d / "inference.yml").read_text())["Global"]["model_name"]
                   for d in (cache / "ray_ocr_model_dirs").iterdir()}
        assert shipped == wanted == {"PP-LCNet_x1_0_doc_ori", "UVDoc", "PP-DocLayout-L"}


def test_models_of_the_default_configuration_are_shipped_unnamed(two_gpu_workers, tmp_path, monkeypatch):
    """SealRecognition with PaddleX's default orientation, unwarping and layout models
    (stand-ins under those names), in the driver's cache only and named nowhere in the
    run: the driver ships what the configuration needs, and each worker, its cache
    empty of them, builds and reads the seal."""
    import shutil

    import paddleocr  # noqa: F401 - PaddleX fixes its cache folder when first imported: before the env changes

    from ray_ocr.models.model_cache import seed_bundled_models
    from ray_ocr.testing.standin_models import build_pipeline_models

    _, workers, caches = two_gpu_workers
    params = build_pipeline_models("SealRecognition", tmp_path / "models",
                                   layout_boxes=[("seal", (0.05, 0.05, 0.95, 0.95), 0.9)])
    defaults = {params[k]: params[k.replace("_name", "_dir")] for k in params
                if k.endswith("_model_name") and k.replace("_name", "_dir") in params}
    assert set(defaults) == {"PP-LCNet_x1_0_doc_ori", "UVDoc", "PP-DocLayout-L"}  # PaddleX's defaults
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path / "driver_cache"))
    seed_bundled_models()
    for name, folder in defaults.items():
        shutil.copytree(folder, tmp_path / "driver_cache" / "official_models" / name)
    for cache in caches:
        assert not any((cache / "official_models" / name).exists() for name in defaults)
    summary = ray_ocr.run_batch(
        "SealRecognition", str(copy_docs(tmp_path / "in", ["seal.png"])), str(tmp_path / "out"), device="cpu",
        pipeline_params={"seal_text_detection_model_name": "PP-OCRv5_mobile_det",  # the bundled ones
                         "text_recognition_model_name": "PP-OCRv5_mobile_rec"}, progress_interval=-1)
    assert summary.exit_code == 0 and summary.succeeded == 1
    seal = json.loads((tmp_path / "out" / "seal.json").read_text(encoding="utf-8"))
    assert "发票专用章" in [t for s in seal["seal_res_list"] for t in s["rec_texts"]]
    assert {a["node"] for a in summary.actors.values()} <= {w.node_id for w in workers}
    for cache in caches:  # unpacked under PaddleX's names, where it looks for its defaults
        for name in defaults:
            assert (cache / "official_models" / name / "inference.pdiparams").is_file()
