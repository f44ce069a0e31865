"""ray_ocr.serve end to end: real Ray Serve, the real OCR pipeline, real documents.

One Serve application with 2 CPU replicas (1 CPU each, cpu_threads=1) serves the whole
module, started as ``python -m ray_ocr.serve`` starts it (serve/cli.py's
``serve_started`` and ``deploy_or_explain``); PaddleX's own app for the same pipeline and
parameters runs in this process (FastAPI's TestClient) as the reference. Both have the
same, lowered pixel limit (``--max_image_pixels``), so the too-large image is cheap. The
chaos test runs last: it kills a replica.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import MOBILE_OCR_PARAMS, REALDOCS
from tests.helpers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.serve_in_process, pytest.mark.timeout(600)]

DOCS = REALDOCS / "paddleocr"
PARITY_IMAGES = ["11.jpg", "1.jpg", "textline.png"]
PARITY_PDF = "sample_pdf.pdf"  # 4 pages
LOAD_IMAGES = ["word_ch_1.jpg", "textline.png", "word_en_10.png", "word_korean_1.jpg"]
TIMEOUT = 120  # seconds a client waits for one answer
SLOW_TIMEOUT = 400  # the 4-page PDF on one CPU, on a machine others share
PIXEL_LIMIT = 20_000_000  # above every parity image and rendered PDF page; below 5000 x 5000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _body(name: str, **extra) -> dict:
    """The request PaddleX's serving docs show: base64 file + fileType (0 PDF, 1 image)."""
    data = (DOCS / name).read_bytes()
    return {"file": _b64(data), "fileType": 0 if name.endswith(".pdf") else 1, **extra}


def _reference_config() -> dict:
    """What a PaddleX user writes for `paddlex --serve --pipeline ocr.yaml` with the
    parameters of samples/ocr_mobile_offline.yaml: PaddleX's stock OCR config with the
    two bundled models and no optional sub-models."""
    from paddlex.inference import load_pipeline_config

    config = json.loads(json.dumps(dict(load_pipeline_config("OCR"))))
    config["SubModules"]["TextDetection"]["model_name"] = MOBILE_OCR_PARAMS["text_detection_model_name"]
    config["SubModules"]["TextRecognition"]["model_name"] = MOBILE_OCR_PARAMS["text_recognition_model_name"]
    config["SubPipelines"]["DocPreprocessor"]["use_doc_orientation_classify"] = False
    config["SubPipelines"]["DocPreprocessor"]["use_doc_unwarping"] = False
    config["use_doc_preprocessor"] = False
    config["use_textline_orientation"] = False
    return config


@pytest.fixture(scope="module")
def reference():
    """PaddleX's own app, built as `paddlex --serve` builds it, in this process."""
    from ray_ocr.models.model_cache import seed_bundled_models
    from ray_ocr.serve.replica import isolate_paddlex_random

    seed_bundled_models()  # models, and the bundled CJK font under PaddleX's font names
    from fastapi.testclient import TestClient
    from paddlex import create_pipeline
    from paddlex.inference.serving.basic_serving import create_pipeline_app
    from paddlex.inference.serving.infra import utils as serving_utils

    config = _reference_config()
    engine_config = {"paddle_static": {"cpu_threads": 1, "mkldnn_cache_capacity": 10, "enable_cinn": False}}
    pipeline = create_pipeline(config=config, device="cpu", engine_config=engine_config)
    default_limit, serving_utils.MAX_IMAGE_PIXELS = serving_utils.MAX_IMAGE_PIXELS, PIXEL_LIMIT  # as in the replicas
    # PaddleX colours visualizations from Python's global random generator, seeded per
    # image; Ray's threads in this process draw from it too. A generator per thread (as
    # in the replicas) keeps PaddleX's colours whatever other threads do.
    isolate_paddlex_random()
    with TestClient(create_pipeline_app(pipeline, config), raise_server_exceptions=False) as client:
        yield client
    pipeline.close()
    serving_utils.MAX_IMAGE_PIXELS = default_limit


class Service:
    def __init__(self, url: str, health_seen: list):
        self.url = url
        self.health_seen = health_seen

    def post(self, body, path="/ocr", timeout=TIMEOUT):
        import requests

        if isinstance(body, bytes):
            return requests.post(self.url + path, data=body, timeout=timeout,
                                 headers={"Content-Type": "application/json"})
        return requests.post(self.url + path, json=body, timeout=timeout)


def _poll_health(url: str, seen: list, done: threading.Event) -> None:
    """Record /health's answers until it says healthy (or `done`)."""
    import requests

    while not done.is_set():
        try:
            r = requests.get(url + "/health", timeout=5)
            seen.append((r.status_code, r.json()))
            if r.status_code == 200:
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.5)


@pytest.fixture(scope="module")
def service(ray_cluster):
    """Serve on a free port + ray_ocr.serve with 2 replicas on the module's Ray (2 CPUs);
    /health polled from before the deployment until it is healthy."""
    from ray_ocr.config import ServeConfig
    from ray_ocr.engine.cluster import describe_cluster
    from ray_ocr.serve.cli import deploy_or_explain, serve_started

    started = time.perf_counter()
    config = ServeConfig.build(pipeline="OCR", device="cpu", pipeline_params=MOBILE_OCR_PARAMS,
                               instances_per_device=2, port=free_port(), max_image_pixels=PIXEL_LIMIT)
    url = f"http://127.0.0.1:{config.port}"
    seen: list = []
    done = threading.Event()
    with serve_started(config, embedded=True):
        poller = threading.Thread(target=_poll_health, args=(url, seen, done), daemon=True)
        poller.start()
        plan, paths = deploy_or_explain(config, describe_cluster(embedded=True))
        assert paths == ["/ocr"]
        assert plan.ray_actor_options == {"num_cpus": 1.0, "num_gpus": 0}
        assert (plan.min_replicas, plan.max_replicas) == (2, 2)
        assert plan.runner.cpu_threads == 1
        poller.join(timeout=30)
        done.set()
        print(f"service up in {time.perf_counter() - started:.1f} s")
        yield Service(url, seen)


def _replicas_running() -> int:
    from ray import serve

    app = serve.status().applications.get("ray_ocr")
    if app is None:
        return 0
    return int(app.deployments["PaddleXPipeline"].replica_states.get("RUNNING", 0))


def _differences(a, b, path="") -> list[tuple[str, str, str]]:
    """Where two JSON values differ: (path, a, b), values cut to 60 characters."""
    if type(a) is not type(b) or not isinstance(a, (dict, list)):
        return [] if a == b else [(path, str(a)[:60], str(b)[:60])]
    if isinstance(a, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{path}.{k}")]
    found = [(f"{path}#len", str(len(a)), str(len(b)))] if len(a) != len(b) else []
    return found + [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]


def _without_log_id(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "logId"}


def test_same_result_as_paddlex_app(service, reference):
    """Images with PaddleX's defaults (visualize on: the base64 images are compared too);
    the 4-page PDF without visualization (it would double its time)."""
    requests_ = [(name, _body(name)) for name in PARITY_IMAGES] + [(PARITY_PDF, _body(PARITY_PDF, visualize=False))]
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:  # the service works while the reference does
        futures = {name: pool.submit(service.post, body, timeout=SLOW_TIMEOUT) for name, body in requests_}
        expected = {name: reference.post("/ocr", json=body) for name, body in requests_}
        got = {name: f.result() for name, f in futures.items()}
    print(f"parity: {time.perf_counter() - started:.1f} s")
    for name, _ in requests_:
        want, have = expected[name], got[name]
        assert want.status_code == 200, want.text[:300]
        assert have.status_code == 200, have.text[:300]
        w, h = want.json(), have.json()
        assert (h["errorCode"], h["errorMsg"]) == (0, "Success")
        assert set(h) == set(w) == {"logId", "errorCode", "errorMsg", "result"}
        assert h["result"] == w["result"], f"{name}: {_differences(w['result'], h['result'])[:5]}"
    pdf = got[PARITY_PDF].json()["result"]
    assert pdf["dataInfo"]["type"] == "pdf" and pdf["dataInfo"]["numPages"] == 4
    assert len(pdf["ocrResults"]) == 4
    image = got[PARITY_IMAGES[0]].json()["result"]["ocrResults"][0]
    assert image["prunedResult"]["rec_texts"] and image["ocrImage"] and image["inputImage"]


def test_a_document_longer_than_paddlex_s_limit_is_cut_and_says_so(service, tmp_path):
    """Under Serve (its proxy, its replica's event loop): an 11-page PDF is answered for
    PaddleX's first 10 pages, as PaddleX does, and the response says so in a header.
    Blank pages: the test is about the count, not the OCR."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument.new()
    for _ in range(11):
        document.new_page(300, 400)
    document.save(str(tmp_path / "blank.pdf"))
    document.close()
    body = {"file": _b64((tmp_path / "blank.pdf").read_bytes()), "fileType": 0, "visualize": False}
    response = service.post(body, timeout=SLOW_TIMEOUT)
    assert response.status_code == 200, response.text[:300]
    assert len(response.json()["result"]["ocrResults"]) == 10
    assert response.headers["x-ray-ocr-pages"] == "10 of 11" and response.headers["x-ray-ocr-replica"]
    assert "x-ray-ocr-pages" not in service.post(_body("textline.png")).headers


def _too_large_png(tmp_path) -> bytes:
    """A real PNG above the module's pixel limit (5000 x 5000 = 25,000,000 pixels)."""
    from tests.helpers import huge_png

    return huge_png(tmp_path / "too_large.png", 5000, 5000).read_bytes()


def test_bad_requests_get_paddlex_errors(service, reference, tmp_path):
    good = _body("textline.png")
    text_b64 = _b64(b"plain text, neither an image nor a PDF\n")
    bad = {
        "not base64": {"file": "this is not base64!", "fileType": 1},
        "not an image": {"file": text_b64, "fileType": 1},
        "not a PDF": {"file": text_b64, "fileType": 0},
        "huge image": {"file": _b64(_too_large_png(tmp_path)), "fileType": 1},
        "unknown field": {**good, "noSuchField": 1},
        "bad fileType": {**good, "fileType": 7},
        "no file": {"fileType": 1},
        "not JSON": b"{this is not json",
    }
    answers = {}
    for what, body in bad.items():
        if isinstance(body, bytes):
            want = reference.post("/ocr", content=body, headers={"Content-Type": "application/json"})
        else:
            want = reference.post("/ocr", json=body)
        have = answers[what] = service.post(body)
        assert have.status_code == want.status_code, (what, have.text[:300])
        assert _without_log_id(have.json()) == _without_log_id(want.json()), what
        after = service.post(good)
        assert after.status_code == 200 and after.json()["errorCode"] == 0, what
    # What PaddleX answers, spelled out (the comparison above follows PaddleX's changes):
    assert answers["not base64"].json()["errorMsg"] == "Invalid input file"
    assert answers["huge image"].status_code == 422
    assert f"exceeds maximum allowed {PIXEL_LIMIT}" in answers["huge image"].json()["errorMsg"]
    assert answers["unknown field"].status_code == 200  # PaddleX's schemas ignore unknown fields
    assert answers["bad fileType"].status_code == 422 and answers["not JSON"].status_code == 422


def test_health(service):
    import requests

    r = requests.get(service.url + "/health", timeout=10)
    assert r.status_code == 200
    assert _without_log_id(r.json()) == {"errorCode": 0, "errorMsg": "Healthy"}
    codes = [code for code, _ in service.health_seen]
    assert codes and codes[-1] == 200
    starting = [body for code, body in service.health_seen if code == 503]
    assert starting, f"/health did not answer while the replicas started: {service.health_seen[:3]}"
    assert starting[0]["errorCode"] == 503 and starting[0]["errorMsg"].startswith("Not ready")


def test_load_64_requests_8_clients_both_replicas(service):
    from ray_ocr.serve.plan import REPLICA_HEADER

    names = [LOAD_IMAGES[i % len(LOAD_IMAGES)] for i in range(64)]
    bodies = {name: _body(name) for name in LOAD_IMAGES}
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda n: service.post(bodies[n]), names))
    elapsed = time.perf_counter() - started
    assert [r.status_code for r in responses] == [200] * 64
    assert all(r.json()["errorCode"] == 0 and r.json()["result"]["ocrResults"] for r in responses)
    by_replica = Counter(r.headers[REPLICA_HEADER] for r in responses)
    print(f"64 requests in {elapsed:.1f} s; per replica {dict(by_replica)}")
    assert len(by_replica) == 2, by_replica
    assert min(by_replica.values()) >= 8, by_replica


def _answered(outcomes: list) -> int:
    return sum(kind == "200" for kind, _, _ in outcomes)


def _wait_until(condition, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s"
        time.sleep(0.2)


def _replicas_answering(service, body) -> set[str | None]:
    """Who answers 8 concurrent requests: the replicas' ids, None for a failed request."""
    from ray_ocr.serve.plan import REPLICA_HEADER

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: service.post(body), range(8)))
    return {r.headers.get(REPLICA_HEADER) if r.status_code == 200 else None for r in responses}


def _replica_pid(replica_id: str) -> int:
    import ray

    actor = ray.get_actor(f"SERVE_REPLICA::ray_ocr#PaddleXPipeline#{replica_id}", namespace="serve")
    return ray.get(actor.__ray_call__.remote(lambda self: os.getpid()), timeout=30)


def _under_load(service, body, during) -> list[tuple[str, float, str | None]]:
    """8 clients post `body` in a loop while `during(outcomes)` runs; each outcome is
    (status code or exception name, seconds, replica)."""
    import requests

    from ray_ocr.serve.plan import REPLICA_HEADER

    outcomes: list[tuple[str, float, str | None]] = []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            t = time.perf_counter()
            try:
                r = service.post(body)
                outcomes.append((str(r.status_code), time.perf_counter() - t, r.headers.get(REPLICA_HEADER)))
            except requests.RequestException as exc:
                outcomes.append((type(exc).__name__, time.perf_counter() - t, None))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        during(outcomes)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=TIMEOUT + 10)
    return outcomes


def test_replica_killed_under_load(service):
    """SIGKILL one replica's process while 8 clients send requests: each request gets
    200 or a 5xx within the timeout, the other replica goes on, Serve starts a new one."""
    from ray_ocr.serve.plan import REPLICA_HEADER

    body = _body("word_ch_1.jpg")
    victim = service.post(body).headers[REPLICA_HEADER]
    pid = _replica_pid(victim)
    killed_at = []

    def kill_then_wait(outcomes):
        _wait_until(lambda: _answered(outcomes) >= 4)  # both replicas busy
        os.kill(pid, signal.SIGKILL)
        killed_at.append(len(outcomes))
        _wait_until(lambda: _answered(outcomes[killed_at[0]:]) >= 8)  # the other replica answers on

    outcomes = _under_load(service, body, kill_then_wait)
    kinds = Counter(kind for kind, _, _ in outcomes)
    print(f"under kill: {dict(kinds)}; {killed_at[0]} before the kill; "
          f"slowest {max(s for _, s, _ in outcomes):.1f} s")
    assert all(kind == "200" or kind.startswith("5") for kind, _, _ in outcomes), kinds
    assert all(seconds < TIMEOUT for _, seconds, _ in outcomes)

    # Serve replaces the replica: back to 2 running, the new one answering too.
    def replaced() -> bool:
        answering = _replicas_answering(service, body)
        return len(answering) == 2 and not answering & {victim, None}

    _wait_until(lambda: _replicas_running() == 2 and replaced(), timeout=180)
