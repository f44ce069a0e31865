"""The bundled models: found, seeded into the PaddleX cache, shipped to other nodes
(no PaddleX import; naming missing models: tests/unit/test_missing_models.py)."""

import os
from pathlib import Path

from ray_ocr.models import model_cache


def test_bundled_models_are_found():
    dirs = model_cache.bundled_model_dirs()
    assert {"PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec"} <= set(dirs)


def test_seeding_copies_once_and_completely(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path / "cache"))
    seeded = model_cache.seed_bundled_models()
    assert set(seeded) >= {"PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec"}
    target = tmp_path / "cache" / "official_models" / "PP-OCRv5_mobile_det"
    assert set(os.listdir(target)) >= set(model_cache.MODEL_FILES)
    assert model_cache.seed_bundled_models() == []  # second time: nothing to do
    leftovers = [n for n in os.listdir(target.parent) if n.startswith(".")]
    assert leftovers == []


def test_bundle_ships_named_models_and_model_dirs(tmp_path, monkeypatch):
    from ray_ocr.models.model_bundle import collect_bundle, install_bundle
    from ray_ocr.models.runner import RunnerSpec
    from ray_ocr.pipelines import resolve_pipeline

    driver_cache = tmp_path / "driver"
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(driver_cache))
    model_cache.seed_bundled_models()
    own_model = tmp_path / "my_rec_model"
    (own_model / "sub").mkdir(parents=True)
    (own_model / "inference.yml").write_text("x: 1")
    (own_model / "sub" / "weights.bin").write_bytes(b"\0\1")
    params = {"text_detection_model_name": "PP-OCRv5_mobile_det", "text_recognition_model_dir": str(own_model),
              "text_recognition_model_name": "NotCachedHere"}
    store: dict[int, dict] = {}  # a stand-in for the object store: a handle per model

    def put(files):
        store[len(store)] = files
        return len(store) - 1

    bundle = collect_bundle(RunnerSpec(  # a class that is not PaddleOCR's: its --pipeline_config's models
        pipeline=resolve_pipeline("ray_ocr.testing.standin:SchedulingTestPipeline"),
        init_params=tuple(params.items()),
        paddlex_config={"SubModules": {"X": {"model_name": "PP-OCRv5_mobile_rec"}}}), store=put)
    assert set(bundle.official) == {"PP-OCRv5_mobile_det", "PP-OCRv5_mobile_rec"}
    assert set(bundle.dirs) == {"text_recognition_model_dir"}
    assert sorted(m.files for m in (*bundle.official.values(), *bundle.dirs.values())) == [0, 1, 2]

    worker_cache = tmp_path / "worker"
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(worker_cache))
    fetched = []

    def fetch(handle):
        fetched.append(handle)
        return store[handle]

    local = install_bundle(bundle, fetch)
    assert sorted(fetched) == [0, 1, 2]
    assert (worker_cache / "official_models" / "PP-OCRv5_mobile_det" / "inference.pdiparams").is_file()
    shipped = local["text_recognition_model_dir"]
    assert shipped.startswith(str(worker_cache)) and shipped != str(own_model)
    assert (tmp_path / "worker").joinpath(shipped, "sub", "weights.bin").read_bytes() == b"\0\1"
    fetched.clear()
    assert install_bundle(bundle, fetch) == local  # idempotent, and a node that has them fetches nothing
    assert fetched == []


def _publish_slowly(target: str, log: str) -> bool:
    import time

    def fill(folder):
        with open(log, "a") as handle:
            handle.write("filled\n")
        time.sleep(2)  # long enough that the other processes arrive meanwhile
        (folder / "inference.pdiparams").write_bytes(b"weights")

    return model_cache.publish_dir(Path(target), fill)


def test_processes_publishing_the_same_model_fill_it_once(tmp_path):
    """Actors starting together on a node: one fills (fetches) the model, the others
    wait and find it there."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(3) as pool:
        published = pool.starmap(_publish_slowly, [(str(tmp_path / "model"), str(tmp_path / "log"))] * 3)
    assert sorted(published) == [False, False, True]
    assert (tmp_path / "log").read_text() == "filled\n"
    assert (tmp_path / "model" / "inference.pdiparams").read_bytes() == b"weights"
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []
