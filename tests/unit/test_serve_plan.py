"""ray_ocr.serve's options and deployment plan (no Ray, no Paddle)."""

import pytest

from ray_ocr.engine.cluster import ClusterInfo, NodeResources
from ray_ocr.errors import UsageError
from ray_ocr.serve.plan import ServeOptions, plan_deployment

OFFLINE = (("text_detection_model_name", "PP-OCRv5_mobile_det"),)


def cluster(*nodes):
    return ClusterInfo(tuple(NodeResources(f"n{i}", "127.0.0.1", c, g) for i, (c, g) in enumerate(nodes)),
                       None, True)


def test_cpu_replicas_share_the_node_like_batch_actors():
    plan = plan_deployment(ServeOptions("OCR", device="cpu", params=OFFLINE, instances_per_device=2), cluster((2, 0)))
    assert plan.ray_actor_options == {"num_cpus": 1.0, "num_gpus": 0}
    assert (plan.min_replicas, plan.max_replicas, plan.planned) == (2, 2, 2)
    assert plan.replica.runner.cpu_threads == 1 and plan.replica.runner.device == "cpu"
    assert plan.replica.runner.init_params == OFFLINE
    options = plan.deployment_options()
    assert options["num_replicas"] == 2 and "autoscaling_config" not in options
    assert options["max_ongoing_requests"] == 2


def test_gpu_fractions_and_autoscaling():
    plan = plan_deployment(ServeOptions("SealRecognition", device="gpu", instances_per_device=4,
                                        cpus_per_instance=2, min_replicas=1), cluster((16, 2)))
    assert plan.ray_actor_options == {"num_cpus": 2, "num_gpus": 0.25}
    assert plan.replica.runner.device == "gpu:0" and plan.replica.runner.cpu_threads == 2
    autoscaling = plan.deployment_options()["autoscaling_config"]
    assert (autoscaling["min_replicas"], autoscaling["max_replicas"], autoscaling["initial_replicas"]) == (1, 8, 1)
    assert autoscaling["target_ongoing_requests"] == 1


def test_max_replicas_caps_and_min_follows():
    plan = plan_deployment(ServeOptions("OCR", device="cpu", instances_per_device=2, max_replicas=1), cluster((2, 0)))
    assert (plan.min_replicas, plan.max_replicas) == (1, 1)


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError, match="serving needs a PaddleOCR pipeline"):
        ServeOptions("ray_ocr.testing.standin:SchedulingTestPipeline")
    with pytest.raises(UsageError, match="unknown pipeline"):
        ServeOptions("nope")
    with pytest.raises(UsageError, match="--min_replicas 3 is more than --max_replicas 2"):
        ServeOptions("OCR", min_replicas=3, max_replicas=2)
    with pytest.raises(UsageError, match="--instances_per_device 0"):
        ServeOptions("OCR", instances_per_device=0)


def test_from_args_as_serve_run_passes_them(tmp_path):
    """`serve run ray_ocr.serve.app:build_app pipeline=OCR ...`: every value a string."""
    params = tmp_path / "p.yaml"
    params.write_text("text_detection_model_name: PP-OCRv5_mobile_det\nuse_doc_unwarping: false\n")
    options = ServeOptions.from_args({"pipeline": "OCR", "device": "cpu", "params_file": str(params),
                                      "param": "use_doc_unwarping=true", "instances_per_device": "2",
                                      "cpus_per_instance": "0.5"})
    assert dict(options.params) == {"text_detection_model_name": "PP-OCRv5_mobile_det", "use_doc_unwarping": True}
    assert (options.instances_per_device, options.cpus_per_instance) == (2, 0.5)
    typed = ServeOptions.from_args({"pipeline": "OCR", "params": {"use_textline_orientation": False}})
    assert dict(typed.params) == {"use_textline_orientation": False}
    with pytest.raises(UsageError, match="unknown argument"):
        ServeOptions.from_args({"pipeline": "OCR", "replicas": 2})
    with pytest.raises(UsageError, match="not a number"):
        ServeOptions.from_args({"pipeline": "OCR", "max_replicas": "two"})
