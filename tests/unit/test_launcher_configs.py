"""The two cluster-launcher configs agree where they can, and the launcher test's copy of
the local one (tests/cluster/cluster-local.test.yaml, driven by `ray up` in
tests/cluster/test_launcher.py) differs from the shipped file only where the test machine
needs it. YAML only: Ray's own validation of the configs is in
tests/cluster/test_cluster_configs_ray.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
AWS_CONFIG = REPO / "cluster.yaml"
LOCAL_CONFIG = REPO / "examples" / "cluster-local.yaml"
TEST_COPY = REPO / "tests" / "cluster" / "cluster-local.test.yaml"

# What the test copy may change, and why (the copy's header says the same):
ALLOWED = {
    ("provider", "head_ip"),  # 127.0.0.1, the test's sshd
    ("provider", "worker_ips"),  # none: a second node here would `ray stop` the head
    ("min_workers",),
    ("max_workers",),
    ("auth", "ssh_user"),  # root, the one user the test's sshd lets in
    ("setup_commands",),  # without `pip install` lines: no network
}
MISSING = object()


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def aws() -> dict:
    return _load(AWS_CONFIG)


@pytest.fixture(scope="module")
def local() -> dict:
    return _load(LOCAL_CONFIG)


@pytest.fixture(scope="module")
def test_copy() -> dict:
    return _load(TEST_COPY)


def _leaves(node, path: tuple = ()) -> dict[tuple, object]:
    """Every value by its key path; lists are values (their order matters)."""
    if isinstance(node, dict) and node:
        return {leaf: value for key, child in node.items() for leaf, value in _leaves(child, path + (key,)).items()}
    return {path: node}


# --- cluster.yaml and examples/cluster-local.yaml share their commands -------------------


def test_the_configs_start_ray_with_the_same_commands(aws, local):
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert local[key] == aws[key], key
        assert local[key][0] == "ray stop"


def test_the_configs_share_their_setup_commands(aws, local):
    # AWS's own: apt's python3-venv on its Ubuntu image. The rest is the local config's
    # start: venv, ~/.bashrc lines, the token's mode, pip and the Ray pin...
    common = [cmd for cmd in aws["setup_commands"] if "apt-get" not in cmd]
    assert len(common) == len(aws["setup_commands"]) - 1
    assert local["setup_commands"][: len(common)] == common
    # ...then the GPU stack, exactly as the AWS workers install it (Paddle for GPUs,
    # ray_ocr with its models, the model seeding); the local head is a GPU server too.
    assert local["setup_commands"][len(common):] == aws["worker_setup_commands"]
    assert local["head_setup_commands"] == local["worker_setup_commands"] == []
    # The AWS head (no GPU) seeds its models with the same command.
    assert aws["head_setup_commands"][-1] == aws["worker_setup_commands"][-1]


def test_the_configs_sync_the_same_files(aws, local):
    for key in ("file_mounts", "rsync_exclude", "rsync_filter"):
        assert local[key] == aws[key], key


# --- the launcher test's copy of examples/cluster-local.yaml ------------------------------


def test_the_test_copy_differs_only_where_allowed(local, test_copy):
    shipped, copied = _leaves(local), _leaves(test_copy)
    differing = {path for path in shipped.keys() | copied.keys()
                 if shipped.get(path, MISSING) != copied.get(path, MISSING)}
    assert differing <= ALLOWED, sorted(differing - ALLOWED)
    assert test_copy["provider"] == {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []}
    assert test_copy["min_workers"] == test_copy["max_workers"] == 0
    assert test_copy["auth"]["ssh_user"] == "root"


def test_the_test_copy_only_drops_the_network_installs(local, test_copy):
    kept = [cmd for cmd in local["setup_commands"] if not cmd.startswith("pip install")]
    assert test_copy["setup_commands"] == kept
    assert len(kept) < len(local["setup_commands"])  # there were pip lines to drop
    # Kept as shipped: the token copy, the venv and token mode in ~/.bashrc, the model
    # seeding, and the start commands with their `ray stop`.
    assert test_copy["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert any("seed_bundled_models()" in cmd for cmd in kept)
    assert any("RAY_AUTH_MODE=token" in cmd and ".bashrc" in cmd for cmd in kept)
    assert test_copy["head_start_ray_commands"] == local["head_start_ray_commands"]
