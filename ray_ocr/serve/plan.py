"""What ray_ocr.serve deploys, decided without Ray: each replica's pipeline and
resources (the slots of engine/placement.py, as batch actors get them), how many
replicas, and Serve's deployment options, applied here only."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import Any

from ray_ocr.errors import SetupError, UsageError

logger = logging.getLogger(__name__)

APP_NAME = "ray_ocr"
HEALTH_APP_NAME = "ray_ocr_health"
DEPLOYMENT_NAME = "PaddleXPipeline"
HEALTH_DEPLOYMENT_NAME = "Health"
REPLICA_HEADER = "x-ray-ocr-replica"

# What Ray Serve and PaddleX's serving app import beyond ray_ocr's own dependencies
# (the `serve` extra); looked up without importing them.
SERVE_EXTRA_MODULES = ("fastapi", "starlette", "uvicorn", "filetype", "aiohttp", "yarl")


def require_serve_extra() -> None:
    """One line naming the fix, instead of an ImportError from deep in Ray or PaddleX."""
    missing = [name for name in SERVE_EXTRA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise SetupError(f"serving needs the serve extra: pip install 'ray-ocr[serve]' (missing: "
                         f"{', '.join(missing)})")


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

    def deployment_options(self) -> dict:
        """``Deployment.options(...)``: a fixed count, or autoscaling on queued requests."""
        options: dict[str, Any] = dict(
            ray_actor_options=self.ray_actor_options,
            max_ongoing_requests=self.max_ongoing_requests,
        )
        if self.min_replicas == self.max_replicas:
            options["num_replicas"] = self.min_replicas
        else:
            options["autoscaling_config"] = dict(
                min_replicas=self.min_replicas,
                max_replicas=self.max_replicas,
                initial_replicas=self.min_replicas,
                # A replica with one request predicting and one waiting is full; more
                # ongoing per replica means requests are queued in front of it.
                target_ongoing_requests=max(1, self.max_ongoing_requests - 1),
                upscale_delay_s=10,
                downscale_delay_s=300,
            )
        return options


def plan_deployment(config, cluster) -> DeploymentPlan:
    """`config`: a ServeConfig; `cluster`: engine/cluster.py's ClusterInfo. Each replica
    asks for what a batch actor's slot asks for. Default: as many replicas as there are
    slots, fixed; ``--min_replicas`` below that autoscales."""
    from ray_ocr.engine.placement import plan_for
    from ray_ocr.models.runner import RunnerSpec

    slots = plan_for(config, cluster)
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
        planned=len(slots),
        max_ongoing_requests=config.max_ongoing_requests,
    )
