"""The models of a served pipeline, for replicas on nodes that cannot download them.

Batch runs hand each actor the driver's models (engine/actors.py). Serve starts replicas
long after the application is built (autoscaling, a replica restarted) and a ``serve
deploy`` builder exits as soon as it has built it, so the models the builder's disk has
(models/model_bundle.py's ModelBundle) go into a detached actor on the head node, named by
their content, that lives as long as the cluster or until the command that made it stops.
Kept apart from serve/app.py so the store's process does not import Serve or FastAPI.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

NAMESPACE = "ray_ocr"
NAME_PREFIX = "ray_ocr_models_"
_made_here: set[str] = set()  # stores this process started: the serve command removes them on exit


class ModelStore:
    """Owns one copy of each of a bundle's models in the object store; replicas fetch
    from there the models their node lacks."""

    def __init__(self, bundle):
        import ray

        self._bundle = bundle.stored(ray.put)  # owned by this actor: it outlives the builder that sent it

    def ready(self) -> bool:
        return True

    def bundle(self):
        return self._bundle  # references: the caller fetches only the models it needs


def ship_models(runner) -> str | None:
    """The name of the store holding the models `runner` (a RunnerSpec) may load, read
    from this node's disk (models/model_bundle.py); None when none of them is here."""
    import ray

    from ray_ocr.models.model_bundle import collect_bundle

    bundle = collect_bundle(runner)
    if not bundle:
        return None
    name = NAME_PREFIX + bundle.digest()
    try:
        store = ray.remote(ModelStore).options(
            name=name, namespace=NAMESPACE, lifetime="detached", num_cpus=0,
            resources={"node:__internal_head__": 0.001},  # the head lives as long as the cluster
        ).remote(bundle)
    except ValueError:  # the name is taken: the same models, shipped already by another
        return name
    ray.get(store.ready.remote())
    _made_here.add(name)
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


def remove_stores_made_here() -> None:
    """End the stores this process started (the serve command's cleanup, once its
    application is deleted); those a ``serve run``/``serve deploy`` builder started stay.
    Another application on the cluster that ships the same models uses the same store:
    after this, its replicas started later build from their own node's models."""
    import ray

    while _made_here:
        name = _made_here.pop()
        try:
            ray.kill(ray.get_actor(name, namespace=NAMESPACE))
        except ValueError:  # gone already
            pass
