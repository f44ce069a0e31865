"""What ray_ocr.serve deploys, decided without Ray: each replica's pipeline and
resources (the slots of engine/placement.py, as batch actors get them), how many
replicas, and Serve's deployment options, applied here only."""

from __future__ import annotations

import importlib.util
import logging
import re
from dataclasses import dataclass
from typing import Any

from ray_ocr.errors import SetupError, UsageError

logger = logging.getLogger(__name__)

APP_NAME = "ray_ocr"
HEALTH_APP_NAME = "ray_ocr_health"
DEPLOYMENT_NAME = "PaddleXPipeline"
HEALTH_DEPLOYMENT_NAME = "Health"
REPLICA_HEADER = "x-ray-ocr-replica"
PAGES_HEADER = "x-ray-ocr-pages"  # "10 of 12": a document cut at --max_pages
GRACEFUL_SHUTDOWN_S = 600
# Serve's router for the pipeline replicas (serve/router.py): a request that finds
# every replica full is routed when one of them finishes a request, not at the next
# poll (Serve's default backs off up to 0.5 s between polls). The router waits for
# that itself, so Serve's backoff only spaces out the rounds in which a probe found
# every replica it asked still full.
REQUEST_ROUTER = {"request_router_class": "ray_ocr.serve.router:FreedReplicaRouter",
                  "initial_backoff_s": 0.001, "max_backoff_s": 0.005}

# What Ray Serve and PaddleX's serving app import beyond ray_ocr's own dependencies
# (the `serve` extra); looked up without importing them.
SERVE_EXTRA_MODULES = ("fastapi", "starlette", "uvicorn", "filetype", "aiohttp", "yarl", "ray.serve")
SERVE_EXTRA_INSTALL = "pip install 'ray-ocr[serve]' (in a checkout: pip install -e '.[serve]')"


def _found(name: str) -> bool:
    # find_spec of a submodule (ray.serve) imports its parent, and raises if that is missing.
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def require_serve_extra() -> None:
    """One line naming the fix, instead of an ImportError from deep in Ray or PaddleX.
    Imports Ray (to look up ray.serve): only the serve command and builders call it."""
    missing = [name for name in SERVE_EXTRA_MODULES if not _found(name)]
    if missing:
        raise SetupError(f"serving needs the serve extra: {SERVE_EXTRA_INSTALL}; missing: {', '.join(missing)}")


# Chosen by `serve run` / `serve deploy` themselves (the cluster they join, their
# http_options and logging_config): as an application's args they would do nothing.
NOT_APP_ARGS = ("address", "host", "port", "verbose")


def config_from_app_args(args) -> Any:
    """The ServeConfig for ``build_app``'s args: the flags' names without ``--``, typed
    by the config file's YAML or strings from ``serve run ... key=value``;
    ``pipeline_params`` may be a mapping, and ``params_file``/``pipeline_config`` paths
    are read where the application is built."""
    from ray_ocr.cli import options_from_mapping
    from ray_ocr.config import ServeConfig

    given = dict(args or {})
    refused = sorted(set(given) & set(NOT_APP_ARGS))
    if refused:
        raise UsageError(f"{', '.join(refused)}: set by serve run / serve deploy (the cluster they join, "
                         "http_options, logging_config), not by an application's args")
    return ServeConfig.build(**options_from_mapping(given, ServeConfig))


@dataclass(frozen=True)
class DeploymentPlan:
    runner: Any  # ray_ocr.models.runner.RunnerSpec, pickled to every replica
    ray_actor_options: dict
    min_replicas: int
    max_replicas: int
    planned: int  # replicas the cluster's resources hold, as a batch run would start actors
    max_ongoing_requests: int
    max_pages: int | None = None  # --max_pages: None keeps PaddleX's (or the config's)

    def deployment_options(self) -> dict:
        """``Deployment.options(...)``: a fixed count, or autoscaling on queued requests."""
        options: dict[str, Any] = dict(
            ray_actor_options=self.ray_actor_options,
            max_ongoing_requests=self.max_ongoing_requests,
            # A replica being removed (scale-down, delete) finishes its requests first; a
            # long PDF can take minutes, Serve's default is 20 s.
            graceful_shutdown_timeout_s=GRACEFUL_SHUTDOWN_S,
            request_router_config=dict(REQUEST_ROUTER),
        )
        if self.min_replicas == self.max_replicas:
            options["num_replicas"] = self.min_replicas
        else:
            options["autoscaling_config"] = dict(
                min_replicas=self.min_replicas,
                max_replicas=self.max_replicas,
                initial_replicas=self.min_replicas,
                # A replica predicts one request at a time (PaddleX serializes the
                # calls): a second one, held by the replica or waiting in the proxy
                # (Serve counts both), is a queue, so scale up on it.
                target_ongoing_requests=1,
                upscale_delay_s=10,
                downscale_delay_s=300,
            )
        return options


def plan_deployment(config, cluster) -> DeploymentPlan:
    """`config`: a ServeConfig; `cluster`: engine/cluster.py's ClusterInfo. Each replica
    asks for what a batch actor's slot asks for. Default: as many replicas as there are
    slots, fixed; ``--min_replicas`` below that autoscales."""
    from ray_ocr.models.runner import RunnerSpec

    slots, planned = _replica_slots(config, cluster)
    # Serve gives every replica one shape and places it itself: the smallest slot's
    # (CPU nodes of different sizes get different shares) fits on every node.
    slot = min(slots, key=lambda s: (s.num_cpus, s.num_gpus))
    max_replicas = config.max_replicas or max(len(slots), config.min_replicas or 1)
    min_replicas = min(config.min_replicas or max_replicas, max_replicas)
    if max_replicas > len(slots):
        logger.warning("--max_replicas %d: the cluster holds %d replica(s) of this size now; "
                       "the others wait for resources", max_replicas, len(slots))
    return DeploymentPlan(
        runner=slot.placed(RunnerSpec.from_options(config)),
        ray_actor_options=slot.ray_resources(),
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        planned=planned,
        max_ongoing_requests=config.max_ongoing_requests,
        max_pages=config.max_pages,
    )


def _replica_slots(config, cluster) -> tuple[list, int]:
    """(the slots of engine/placement.py's rule, how many of them the cluster holds now).
    On a joined cluster with no GPU yet (its GPU nodes still starting, as a RayService's
    are when its applications are built, or an autoscaling group at zero),
    ``--device gpu --max_replicas N`` gives N slots of a GPU node's shape: the replicas
    start as GPU nodes join (an autoscaler adds nodes for them)."""
    from ray_ocr.engine.cluster import ClusterInfo, NodeResources
    from ray_ocr.engine.placement import plan_for

    if cluster.embedded or config.device.kind != "gpu" or cluster.total_gpus > 0:
        slots = plan_for(config, cluster)
        return slots, len(slots)
    if not config.max_replicas:
        raise UsageError(f"--device {config.device}: the Ray cluster has no GPU yet; --max_replicas N asks for "
                         "N replicas anyway, which start as GPU nodes join (an autoscaling cluster adds them)")
    a_gpu_node = NodeResources("a GPU node to come", "", cpus=float("inf"), gpus=1.0)
    slot = plan_for(config, ClusterInfo((a_gpu_node,), None, embedded=False))[0]
    logger.warning("--device %s: the Ray cluster has no GPU yet; %d replica(s) asking for %s wait for GPU "
                   "nodes", config.device, config.max_replicas, slot.ray_resources())
    return [slot] * config.max_replicas, 0


# -- reading serve.status() (duck-typed: tested with stand-ins, no Ray) -----------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def failure_cause(app_status) -> str:
    """The last meaningful line of Serve's message for a failed pipeline application
    (the deployment's, which ends with the replica constructor's exception, e.g. a
    missing model), else the application's."""
    deployment = getattr(app_status, "deployments", {}).get(DEPLOYMENT_NAME)
    for message in (getattr(deployment, "message", ""), getattr(app_status, "message", "")):
        lines = [line.strip() for line in _ANSI.sub("", message or "").splitlines()]
        lines = [line for line in lines if line and not line.startswith(("^", "~"))]
        if lines:
            return lines[-1]
    return "no cause given by Serve (see the Ray dashboard's Serve tab and the replica logs)"


def replica_counts(app_status, deployment_name: str = DEPLOYMENT_NAME) -> str:
    """'1 running, 2 starting' for the pipeline deployment."""
    deployment = getattr(app_status, "deployments", {}).get(deployment_name) if app_status else None
    states = dict(getattr(deployment, "replica_states", None) or {})
    return ", ".join(f"{n} {str(getattr(s, 'value', s)).lower()}" for s, n in sorted(states.items()) if n) or "none yet"
