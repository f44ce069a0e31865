"""The driver's models, for actors and replicas on nodes that cannot download them.

Batch runs and Serve both put the models a pipeline may load (models/model_bundle.py's
ModelBundle) into a store actor on the head node, one object per model, and hand their
actors or replicas only the store's name: each asks the store when it starts (Ray's
restart of an actor included: a constructor argument in the object store may be gone by
then, and Ray warns of it) and fetches the models its node lacks. A batch run's store is
its driver's, removed when the run ends; Serve's is detached, named by its content, as
replicas start long after the application is built (autoscaling, a replica restarted)
and a ``serve deploy`` builder exits as soon as it has built it: it lives as long as the
cluster, or until the command that made it stops. Apart from serve/app.py, so the
store's process imports neither Serve nor FastAPI.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

NAMESPACE = "ray_ocr"
NAME_PREFIX = "ray_ocr_models_v2_"  # v2: one object per model (a v1 store of an older ray_ocr is not reused)
# The stores this process started, by name, with their handles: a store that is not
# detached (a batch run's) ends when no handle to it is left.
_made_here: dict[str, object] = {}


class ModelStore:
    """Owns one copy of each of a bundle's models in the object store; replicas fetch
    from there the models their node lacks."""

    def __init__(self, bundle, own_copies: bool = True):
        import ray

        # Own copies outlive the builder that sent the bytes (Serve); a batch run's
        # driver put each model itself, and lives as long as its actors need them.
        self._bundle = bundle.stored(ray.put) if own_copies else bundle

    def ready(self) -> bool:
        return True

    def bundle(self):
        return self._bundle  # references: the caller fetches only the models it needs


def ship_models(runner, for_serve: bool = True) -> str | None:
    """The name of the store holding the models `runner` (a RunnerSpec) may load, read
    from this node's disk (models/model_bundle.py); None when none of them is here.
    `for_serve`: detached and shared by content; else this run's own (it dies with this
    process at the latest)."""
    import uuid

    import ray

    from ray_ocr.models.model_bundle import collect_bundle

    bundle = collect_bundle(runner, store=None if for_serve else ray.put)  # (a run: one model in memory at a time)
    if not bundle:
        return None
    name = NAME_PREFIX + bundle.digest() + ("" if for_serve else f"_run_{uuid.uuid4().hex[:8]}")
    try:
        store = ray.remote(ModelStore).options(
            name=name, namespace=NAMESPACE, lifetime="detached" if for_serve else None, num_cpus=0,
            resources={"node:__internal_head__": 0.001},  # the head lives as long as the cluster
        ).remote(bundle, own_copies=for_serve)
    except ValueError:  # the name is taken: the same models, shipped already by another
        return name
    ray.get(store.ready.remote())
    _made_here[name] = store
    return name


def with_shipped_models(spec, store_name: str):
    """`spec` with the store's models unpacked on this node; if the store is gone (its
    node lost, the command that made it stopped), `spec` as it is: a model this node
    lacks is then PaddleX's usual missing-model error."""
    import ray
    import ray.exceptions

    from ray_ocr.models.model_bundle import with_installed_models

    try:
        store = ray.get_actor(store_name, namespace=NAMESPACE)
        return with_installed_models(spec, ray.get(store.bundle.remote()), fetch=ray.get)
    except (ValueError, ray.exceptions.RayError) as exc:
        logger.warning("the shipped models (%s) are not reachable (%s); building from this node's own",
                       store_name, type(exc).__name__)
        return spec


def remove_store(name: str) -> None:
    """End a store this process started (its models leave the object store)."""
    import ray

    handle = _made_here.pop(name, None)
    try:
        ray.kill(handle if handle is not None else ray.get_actor(name, namespace=NAMESPACE))
    except Exception as exc:  # noqa: BLE001 - gone already, or Ray with it: never hide the run's own error
        logger.debug("removing %s: %s", name, exc)


def remove_stores_made_here() -> None:
    """End the stores this process started (the serve command's cleanup, once its
    application is deleted); those a ``serve run``/``serve deploy`` builder started stay.
    Another application on the cluster that ships the same models uses the same store:
    after this, its replicas started later build from their own node's models."""
    while _made_here:
        remove_store(next(iter(_made_here)))
