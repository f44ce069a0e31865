"""examples/kuberay: the RayJob and RayService manifests against KubeRay's own CRD schemas,
their key choices, and the image's Dockerfile against the launcher configs.

The schemas are the OpenAPI v3 schemas of KubeRay's CustomResourceDefinitions
(../shared/kuberay, KubeRay just after v1.7.0-rc.0), the ones a Kubernetes API server
checks a manifest against. Validated as `kubectl apply --validate=strict` would: a field
the schema does not know is an error (the API server would drop it silently otherwise),
except under `x-kubernetes-preserve-unknown-fields`; other `x-kubernetes-*` keys are
ignored. No cluster, no Ray: yaml and jsonschema only.
"""

from __future__ import annotations

import ast
import functools
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

from ray_ocr.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
KUBERAY = REPO.parent / "shared" / "kuberay"
EXAMPLES = REPO / "examples" / "kuberay"
RAYJOB = EXAMPLES / "rayjob.yaml"
RAYSERVICE = EXAMPLES / "rayservice.yaml"
DOCKERFILE = EXAMPLES / "Dockerfile"
SERVE_APP = REPO / "ray_ocr" / "serve" / "app.py"


def _strict(schema):
    """The schema without x-kubernetes-* keys, objects closed to unknown fields."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    open_object = schema.get("x-kubernetes-preserve-unknown-fields") is True
    out = {key: _strict(value) for key, value in schema.items()
           if not key.startswith("x-kubernetes-") and key not in ("properties", "default", "example")}
    if "properties" in schema:
        out["properties"] = {name: _strict(sub) for name, sub in schema["properties"].items()}
        if "additionalProperties" not in schema and not open_object:
            out["additionalProperties"] = False
    return out


@functools.cache
def crd_schema(filename: str) -> dict:
    path = KUBERAY / filename
    assert path.is_file(), f"KubeRay CRD {path} is missing (../shared/kuberay)"
    # libyaml's loader where PyYAML has it: the CRDs are ~1 MB, seconds in pure Python.
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (v1,) = [version for version in crd["spec"]["versions"] if version["name"] == "v1"]
    return _strict(v1["schema"]["openAPIV3Schema"])


def validate(manifest: dict, filename: str) -> None:
    schema = crd_schema(filename)
    errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(manifest), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors[:20])


@pytest.fixture(scope="module")
def rayjob() -> dict:
    return yaml.safe_load(RAYJOB.read_text())


@pytest.fixture(scope="module")
def rayservice() -> dict:
    return yaml.safe_load(RAYSERVICE.read_text())


def _containers(cluster_spec: dict) -> list[dict]:
    groups = [cluster_spec["headGroupSpec"], *cluster_spec["workerGroupSpecs"]]
    return [c for group in groups for c in group["template"]["spec"]["containers"]]


def _assert_cluster_choices(cluster_spec: dict) -> None:
    # Token authentication on, through KubeRay (a generated Secret, the env on every pod).
    assert cluster_spec["authOptions"] == {"mode": "token"}
    assert "RAY_AUTH_MODE=disabled" not in yaml.safe_dump(cluster_spec)
    # The head runs no actors or replicas.
    assert cluster_spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    head = cluster_spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in head["resources"].get("limits", {})
    # GPU workers: every group asks for GPUs, as limits (what Kubernetes schedules on).
    groups = cluster_spec["workerGroupSpecs"]
    assert groups
    for group in groups:
        (container,) = group["template"]["spec"]["containers"]
        assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1, group["groupName"]
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    # One image everywhere (one Python, one Ray), and the Ray of that image.
    images = {c["image"] for c in _containers(cluster_spec)}
    assert len(images) == 1, images
    assert cluster_spec["rayVersion"] == _dockerfile_ray_version()


# --- RayJob ------------------------------------------------------------------------------


def test_rayjob_is_valid_for_kuberay(rayjob):
    assert (rayjob["apiVersion"], rayjob["kind"]) == ("ray.io/v1", "RayJob")
    validate(rayjob, "ray.io_rayjobs.yaml")


def test_rayjob_runs_ray_ocr_on_the_gpus_and_goes_away(rayjob):
    spec = rayjob["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:3] == ["python", "-m", "ray_ocr.run"]
    args = build_parser().parse_args(argv[3:])  # every flag is one ray_ocr.run knows
    assert args.address == "auto"  # joins the RayJob's cluster
    assert args.input_dir.startswith("s3://") and args.output_dir.startswith("s3://")
    assert args.device == "gpu" and args.instances_per_device == 4 and args.pipeline == "OCR"
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] >= 0
    _assert_cluster_choices(spec["rayClusterSpec"])


# --- RayService ------------------------------------------------------------------------


def test_rayservice_is_valid_for_kuberay(rayservice):
    assert (rayservice["apiVersion"], rayservice["kind"]) == ("ray.io/v1", "RayService")
    validate(rayservice, "ray.io_rayservices.yaml")
    _assert_cluster_choices(rayservice["spec"]["rayClusterConfig"])


def _module_functions(path: Path) -> set[str]:
    """Read from the source: importing ray_ocr.serve.app would import Ray Serve."""
    return {node.name for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)}


def test_rayservice_deploys_ray_ocr_serve(rayservice):
    from ray_ocr.serve.plan import config_from_app_args

    config = yaml.safe_load(rayservice["spec"]["serveConfigV2"])
    apps = {app["name"]: app for app in config["applications"]}
    ocr = apps["ray_ocr"]
    assert ocr["import_path"] == "ray_ocr.serve.app:build_app" and ocr["route_prefix"] == "/"
    serve_config = config_from_app_args(ocr["args"])  # every arg one that build_app takes
    assert (serve_config.pipeline.display_name, str(serve_config.device)) == ("OCR", "gpu")
    assert serve_config.instances_per_device == 2 and serve_config.pipeline_kwargs
    health = apps["ray_ocr_health"]
    assert health["import_path"] == "ray_ocr.serve.app:build_health_app"
    assert health["route_prefix"] == "/health" and health["args"]["app_name"] == "ray_ocr"
    assert {"build_app", "build_health_app"} <= _module_functions(SERVE_APP)


# --- the image ----------------------------------------------------------------------------


def _dockerfile_ray_version() -> str:
    match = re.search(r"^ARG RAY_IMAGE=rayproject/ray:(\d+\.\d+\.\d+)-py\d+-(gpu|cu\d+)$",
                      DOCKERFILE.read_text(), re.M)
    assert match, "the Dockerfile starts from a rayproject/ray GPU image"
    return match.group(1)


def test_the_image_matches_the_launcher_configs():
    dockerfile = DOCKERFILE.read_text()
    aws = yaml.safe_load((REPO / "cluster.yaml").read_text())
    (ray_pin,) = [c for c in aws["setup_commands"] if "ray[default]==" in c]
    assert f"ray[default]=={_dockerfile_ray_version()}" in ray_pin  # the nodes' Ray
    assert re.search(r"^FROM \$\{RAY_IMAGE\}$", dockerfile, re.M)
    (paddle,) = [c for c in aws["worker_setup_commands"] if "paddlepaddle-gpu" in c]
    paddle_args = paddle.split("pip install -q ", 1)[1]  # version and PaddlePaddle's index
    assert f"RUN pip install --no-cache-dir {paddle_args}\n" in dockerfile
    assert '"/home/ray/ray_ocr[models,serve]"' in dockerfile and "[cpu" not in dockerfile
    (seed,) = [c for c in aws["worker_setup_commands"] if "seed_bundled_models()" in c]
    assert f"RUN {seed}\n" in dockerfile
    ignored = (EXAMPLES / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", ".git"} <= set(ignored)  # the build context is the repository root
