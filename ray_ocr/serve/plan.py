"""What ray_ocr.serve deploys, decided without Ray: the options, checked, and the plan
(each replica's resources from engine/placement.py, how many, autoscaling)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from ray_ocr.errors import UsageError

logger = logging.getLogger(__name__)

APP_NAME = "ray_ocr"
HEALTH_APP_NAME = "ray_ocr_health"
DEPLOYMENT_NAME = "PaddleXPipeline"
HEALTH_DEPLOYMENT_NAME = "Health"
REPLICA_HEADER = "x-ray-ocr-replica"
DEFAULT_PORT = 8080  # paddlex --serve's default: clients written for it need no change
DEFAULT_MAX_ONGOING_REQUESTS = 2  # one predicting, the next decoded and waiting


# -- options ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServeOptions:
    """What ``python -m ray_ocr.serve`` and ``build_app`` take, checked."""

    pipeline: str
    device: str = "auto"
    params: tuple[tuple[str, Any], ...] = ()
    pipeline_config: dict | None = field(default=None, compare=False)
    instances_per_device: int = 1
    gpus_per_instance: float | None = None
    cpus_per_instance: float | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    max_ongoing_requests: int = DEFAULT_MAX_ONGOING_REQUESTS
    max_image_pixels: int | None = None
    app_name: str = APP_NAME

    def __post_init__(self):
        from ray_ocr.config import DeviceRequest
        from ray_ocr.pipelines import resolve_pipeline

        ref = resolve_pipeline(self.pipeline)
        if not ref.is_paddleocr:
            raise UsageError(f"--pipeline {self.pipeline}: serving needs a PaddleOCR pipeline (one that "
                             "wraps a PaddleX pipeline with a PaddleX serving app)")
        DeviceRequest.parse(self.device)
        for name in ("instances_per_device", "min_replicas", "max_replicas", "max_ongoing_requests"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"--{name} {value}: must be >= 1")
        if self.min_replicas and self.max_replicas and self.min_replicas > self.max_replicas:
            raise UsageError(f"--min_replicas {self.min_replicas} is more than --max_replicas {self.max_replicas}")

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> "ServeOptions":
        """From ``serve run ray_ocr.serve.app:build_app key=value ...`` (all strings) or a
        config file's ``args:`` (typed). Keys are the CLI flags' names; ``params`` is a
        mapping, ``param`` a list of ``key=value``, ``params_file`` and
        ``pipeline_config`` paths read where the application is built."""
        from ray_ocr.config import load_params_file, parse_key_values

        args = dict(args)
        known = {f.name for f in cls.__dataclass_fields__.values()} | {"param", "params_file"}
        unknown = sorted(set(args) - known)
        if unknown:
            raise UsageError(f"unknown argument(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        params = load_params_file(args.pop("params_file", None))
        params.update(dict(args.pop("params", None) or {}))
        raw_pairs = args.pop("param", None) or []
        params.update(parse_key_values([raw_pairs] if isinstance(raw_pairs, str) else raw_pairs, "--param"))
        config = args.pop("pipeline_config", None)
        if isinstance(config, str):
            config = load_pipeline_config(config)
        ints = ("instances_per_device", "min_replicas", "max_replicas", "max_ongoing_requests", "max_image_pixels")
        floats = ("gpus_per_instance", "cpus_per_instance")
        for name in ints + floats:
            if args.get(name) is not None:
                try:
                    args[name] = (int if name in ints else float)(args[name])
                except (TypeError, ValueError):
                    raise UsageError(f"--{name} {args[name]!r}: not a number") from None
        if "pipeline" not in args:
            raise UsageError("--pipeline is required")
        return cls(params=tuple(params.items()), pipeline_config=config, **args)


def load_pipeline_config(path: str) -> dict:
    import yaml

    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle)
    except OSError as exc:
        raise UsageError(f"--pipeline_config {path}: {exc.strerror}") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"--pipeline_config {path}: not a PaddleX pipeline YAML mapping")
    return loaded


# -- what each replica gets and asks for -----------------------------------------------


@dataclass(frozen=True)
class ReplicaSpec:
    """Pickled to every replica."""

    runner: Any  # ray_ocr.models.runner.RunnerSpec
    max_image_pixels: int | None = None
    warmup: bool = True


@dataclass(frozen=True)
class DeploymentPlan:
    replica: ReplicaSpec
    ray_actor_options: dict
    min_replicas: int
    max_replicas: int
    planned: int  # replicas the cluster's resources hold, as a batch run would start
    max_ongoing_requests: int

    def deployment_options(self) -> dict:
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


def plan_deployment(options: ServeOptions, cluster) -> DeploymentPlan:
    """Each replica's resources from engine/placement.py (as batch actors get them);
    ``cluster``: engine/cluster.py's ClusterInfo. Default replicas: as many as the plan
    has slots (min = max: no autoscaling); ``--min_replicas`` below that autoscales."""
    from ray_ocr.config import DeviceRequest
    from ray_ocr.engine.placement import plan_actors
    from ray_ocr.models.runner import RunnerSpec
    from ray_ocr.pipelines import resolve_pipeline

    ref = resolve_pipeline(options.pipeline)
    slots = plan_actors(ref.display_name, DeviceRequest.parse(options.device), cluster,
                        options.instances_per_device, options.gpus_per_instance, options.cpus_per_instance)
    slot = slots[0]  # every slot has the same shape; Serve places the replicas
    max_replicas = options.max_replicas or max(len(slots), options.min_replicas or 1)
    min_replicas = options.min_replicas or max_replicas
    min_replicas = min(min_replicas, max_replicas)
    if max_replicas > len(slots):
        logger.warning("--max_replicas %d: the cluster holds %d replica(s) of this size now; "
                       "the others wait for resources", max_replicas, len(slots))
    runner = RunnerSpec(
        pipeline=ref,
        init_params=options.params,
        device=slot.device,
        cpu_threads=slot.cpu_threads,
        paddlex_config=options.pipeline_config,
    )
    actor_options: dict[str, Any] = {"num_cpus": slot.num_cpus, "num_gpus": slot.num_gpus}
    return DeploymentPlan(
        replica=ReplicaSpec(runner=runner, max_image_pixels=options.max_image_pixels),
        ray_actor_options=actor_options,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        planned=len(slots),
        max_ongoing_requests=options.max_ongoing_requests,
    )
