"""ray_ocr.serve's options, flags and deployment plan (no Ray, no Paddle)."""

import pytest

from ray_ocr.config import ServeConfig
from ray_ocr.engine.cluster import ClusterInfo, NodeResources
from ray_ocr.errors import SetupError, UsageError
from ray_ocr.serve.plan import (
    config_from_app_args,
    failure_cause,
    plan_deployment,
    replica_counts,
    require_serve_extra,
)

OFFLINE = {"text_detection_model_name": "PP-OCRv5_mobile_det"}


def cluster(*nodes):
    return ClusterInfo(tuple(NodeResources(f"n{i}", "127.0.0.1", c, g) for i, (c, g) in enumerate(nodes)),
                       None, True)


def serve_config(**options):
    return ServeConfig.build(**{"pipeline": "OCR", **options})


def test_cpu_replicas_share_the_node_like_batch_actors():
    config = serve_config(device="cpu", pipeline_params=OFFLINE, instances_per_device=2)
    plan = plan_deployment(config, cluster((2, 0)))
    assert plan.ray_actor_options == {"num_cpus": 1.0, "num_gpus": 0}
    assert (plan.min_replicas, plan.max_replicas, plan.planned) == (2, 2, 2)
    assert plan.runner.cpu_threads == 1 and plan.runner.device == "cpu"
    assert plan.runner.init_params == tuple(OFFLINE.items())
    assert plan.runner.max_image_pixels == 178_956_970  # PaddleX's limit, set in each replica
    options = plan.deployment_options()
    assert options["num_replicas"] == 2 and "autoscaling_config" not in options
    assert options["max_ongoing_requests"] == 1  # the others wait in the proxy, in order
    assert options["graceful_shutdown_timeout_s"] == 600  # a long PDF finishes before its replica goes
    # a waiting request goes to the first replica that finishes one (tests/ray/test_serve_router.py)
    assert options["request_router_config"]["request_router_class"] == "ray_ocr.serve.router:FreedReplicaRouter"


def test_gpu_fractions_and_autoscaling():
    config = serve_config(pipeline="SealRecognition", device="gpu", instances_per_device=4, cpus_per_instance=2,
                          min_replicas=1)
    plan = plan_deployment(config, cluster((16, 2)))
    assert plan.ray_actor_options == {"num_cpus": 2, "num_gpus": 0.25}
    assert plan.runner.device == "gpu:0" and plan.runner.cpu_threads == 2
    autoscaling = plan.deployment_options()["autoscaling_config"]
    assert (autoscaling["min_replicas"], autoscaling["max_replicas"], autoscaling["initial_replicas"]) == (1, 8, 1)
    assert autoscaling["target_ongoing_requests"] == 1
    wide = serve_config(device="cpu", instances_per_device=2, min_replicas=1, max_ongoing_requests=4)
    # serial calls per replica: a second ongoing request is a queue, whatever it may hold
    assert plan_deployment(wide, cluster((2, 0))).deployment_options()["autoscaling_config"][
        "target_ongoing_requests"] == 1


def test_gpu_replicas_planned_before_any_gpu_node_joins_wait_for_them(caplog):
    joined_without_gpus = ClusterInfo((NodeResources("head", "10.0.0.1", 0, 0),), None, False)
    config = serve_config(device="gpu", instances_per_device=2, cpus_per_instance=2, max_replicas=4, min_replicas=2)
    plan = plan_deployment(config, joined_without_gpus)
    assert plan.ray_actor_options == {"num_cpus": 2, "num_gpus": 0.5}  # the shape a GPU node's slots get
    assert plan.runner.device == "gpu:0" and plan.runner.cpu_threads == 2
    assert (plan.min_replicas, plan.max_replicas, plan.planned) == (2, 4, 0)
    assert "no GPU yet; 4 replica(s) asking for" in caplog.text
    with pytest.raises(UsageError, match="no GPU yet; --max_replicas N asks for N replicas anyway"):
        plan_deployment(serve_config(device="gpu"), joined_without_gpus)  # how many is not known
    with pytest.raises(UsageError, match="has no GPU$"):  # this machine's Ray: no GPU will join it
        plan_deployment(serve_config(device="gpu", max_replicas=4), cluster((2, 0)))


def test_max_replicas_caps_and_min_follows():
    plan = plan_deployment(serve_config(device="cpu", instances_per_device=2, max_replicas=1), cluster((2, 0)))
    assert (plan.min_replicas, plan.max_replicas) == (1, 1)


def test_nodes_of_different_sizes_give_every_replica_the_smallest_share():
    plan = plan_deployment(serve_config(device="cpu", instances_per_device=2), cluster((8, 0), (2, 0)))
    assert plan.ray_actor_options == {"num_cpus": 1.0, "num_gpus": 0} and plan.planned == 4


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError, match="--pipeline ray_ocr.testing.standin:SchedulingTestPipeline: serving takes a "
                                         "pipeline that PaddleX serves, by name"):
        serve_config(pipeline="ray_ocr.testing.standin:SchedulingTestPipeline")
    with pytest.raises(UsageError, match="unknown pipeline"):
        serve_config(pipeline="nope")
    with pytest.raises(UsageError, match="--min_replicas 3 is more than --max_replicas 2"):
        serve_config(min_replicas=3, max_replicas=2)
    with pytest.raises(UsageError, match="--instances_per_device 0: must be >= 1"):
        serve_config(instances_per_device=0)
    with pytest.raises(UsageError, match="--port 70000: must be a TCP port"):
        serve_config(port=70000)
    with pytest.raises(UsageError, match="unknown option predict_params"):
        serve_config(predict_params={"a": 1})  # PaddleX's API takes them per request


def test_app_args_as_serve_run_passes_them(tmp_path):
    """`serve run ray_ocr.serve.app:build_app pipeline=OCR ...`: every value a string."""
    params = tmp_path / "p.yaml"
    params.write_text("text_detection_model_name: PP-OCRv5_mobile_det\nuse_doc_unwarping: false\n")
    config = config_from_app_args({"pipeline": "OCR", "device": "cpu", "params_file": str(params),
                                   "param": "use_doc_unwarping=true", "instances_per_device": "2",
                                   "cpus_per_instance": "0.5", "max_image_pixels": "1000"})
    assert dict(config.pipeline_params) == {"text_detection_model_name": "PP-OCRv5_mobile_det",
                                            "use_doc_unwarping": True}
    assert (config.instances_per_device, config.cpus_per_instance, config.max_image_pixels) == (2, 0.5, 1000)


def test_app_args_from_a_config_file_are_typed():
    config = config_from_app_args({"pipeline": "OCR", "pipeline_params": {"use_textline_orientation": False},
                                   "param": ["lang=en"], "min_replicas": 1, "max_replicas": 3})
    assert dict(config.pipeline_params) == {"use_textline_orientation": False, "lang": "en"}
    assert (config.min_replicas, config.max_replicas) == (1, 3)


@pytest.mark.parametrize("args, message", [
    ({"pipeline": "OCR", "replicas": 2}, "unknown option replicas (options: pipeline, device"),
    ({"pipeline": "OCR", "max_replicas": "two"}, "--max_replicas 'two': not an integer"),
    ({"pipeline": "OCR", "cpus_per_instance": "x"}, "--cpus_per_instance 'x': not a number"),
    ({"pipeline": "OCR", "pipeline_params": ["a=1"]}, "--param: expected a mapping"),
    ({"pipeline": "OCR", "port": 9000, "address": "auto"}, "address, port: set by serve run / serve deploy"),
    ({"device": "cpu"}, "--pipeline is required"),
])
def test_bad_app_args_are_usage_errors(args, message):
    with pytest.raises(UsageError) as err:
        config_from_app_args(args)
    assert message in str(err.value)


def _flags(parser) -> dict:
    return {opt: action for action in parser._actions for opt in action.option_strings
            if opt.startswith("--") and opt != "--help"}


def test_a_flag_both_commands_take_is_one_declaration():
    """--device, --param, --instances_per_device, --address ... mean the same in
    `python -m ray_ocr.run` and `python -m ray_ocr.serve`: same help, type, default."""
    from ray_ocr.cli import build_parser as run_parser
    from ray_ocr.serve.cli import build_parser as serve_parser

    run_flags, serve_flags = _flags(run_parser()), _flags(serve_parser())
    shared = set(run_flags) & set(serve_flags)
    assert {"--pipeline", "--device", "--param", "--params_file", "--pipeline_config", "--instances_per_device",
            "--gpus_per_instance", "--cpus_per_instance", "--address", "--max_image_pixels", "--verbose"} == shared
    for flag in shared:
        a, b = run_flags[flag], serve_flags[flag]
        assert (a.help, a.type, a.default, a.metavar) == (b.help, b.type, b.default, b.metavar), flag
    assert set(serve_flags) - shared == {"--min_replicas", "--max_replicas", "--max_ongoing_requests", "--host",
                                         "--port", "--max_pages"}


def test_the_serve_cli_parses_into_a_serve_config():
    from ray_ocr.cli import options_from_args
    from ray_ocr.serve.cli import build_parser

    args = build_parser().parse_args(["--pipeline", "OCR", "--device", "cpu", "--param", "lang=en",
                                      "--max_replicas", "3", "--port", "9000"])
    config = ServeConfig.build(**options_from_args(args, ServeConfig))
    assert (config.host, config.port, config.max_replicas) == ("127.0.0.1", 9000, 3)
    assert dict(config.pipeline_params) == {"lang": "en"} and str(config.device) == "cpu"


def test_without_the_serve_extra_one_line_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    # ray.serve found without importing Ray (tests/unit import no Ray)
    found = {"filetype": None, "ray.serve": object()}
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: found[name] if name in found else real(name, *a))
    with pytest.raises(SetupError) as err:
        require_serve_extra()
    assert str(err.value) == ("serving needs the serve extra: pip install 'ray-ocr[serve]' (in a checkout: "
                              "pip install -e '.[serve]'); missing: filetype")


def test_without_ray_serve_it_is_named_not_raised(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name, *a):
        if name == "ray.serve":  # what find_spec does when the parent package is missing
            raise ModuleNotFoundError("No module named 'ray'")
        return real(name, *a)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(SetupError, match=r"; missing: ray.serve$"):
        require_serve_extra()


class _Status:
    """Stands in for serve.status()'s ApplicationStatusOverview / DeploymentStatusOverview."""

    def __init__(self, message="", deployments=None, replica_states=None):
        self.message = message
        self.deployments = deployments or {}
        self.replica_states = replica_states or {}


def test_a_failed_replica_is_said_by_its_exception_line():
    traceback = (
        "The deployment failed to start 3 times in a row. This may be due to a problem with its "
        "constructor or initial health check failing. See controller logs for details. Error:\n"
        "\x1b[36mray::ServeReplica:ray_ocr:PaddleXPipeline.initialize_and_get_metadata()\x1b[39m "
        "(pid=1, ip=127.0.0.1)\n  File \"/x/runner.py\", line 9, in build_pipeline\n    raise SetupError(m)\n"
        "    ^^^^^^^^^^^^^^^^^\nray_ocr.errors.SetupError: --param text_detection_model_dir=/m/det: no such folder\n\n")
    app = _Status("Deploying app 'ray_ocr' failed", {"PaddleXPipeline": _Status(traceback)})
    assert failure_cause(app) == "ray_ocr.errors.SetupError: --param text_detection_model_dir=/m/det: no such folder"
    assert failure_cause(_Status("Deploying app 'ray_ocr' failed\n")) == "Deploying app 'ray_ocr' failed"
    assert failure_cause(_Status()).startswith("no cause given by Serve")


def test_replica_counts_name_each_state():
    app = _Status(deployments={"PaddleXPipeline": _Status(replica_states={"RUNNING": 1, "STARTING": 2,
                                                                         "STOPPING": 0})})
    assert replica_counts(app) == "1 running, 2 starting"
    assert replica_counts(None) == replica_counts(_Status()) == "none yet"


def test_the_sample_serve_config_is_the_offline_ocr_service():
    """samples/serve_ocr_offline.yaml (for `serve run`): its args build a ServeConfig, with
    the parameters of samples/ocr_mobile_offline.yaml, on 127.0.0.1 only."""
    import yaml

    from tests.conftest import REPO

    sample = yaml.safe_load((REPO / "samples" / "serve_ocr_offline.yaml").read_text())
    apps = {app["name"]: app for app in sample["applications"]}
    config = config_from_app_args(apps["ray_ocr"]["args"])
    offline = yaml.safe_load((REPO / "samples" / "ocr_mobile_offline.yaml").read_text())
    assert config.pipeline_kwargs == offline and str(config.device) == "cpu"
    assert apps["ray_ocr"]["import_path"] == "ray_ocr.serve.app:build_app"
    assert apps["ray_ocr_health"]["route_prefix"] == "/health"
    assert sample["http_options"] == {"host": "127.0.0.1", "port": 8080}


def test_a_port_another_server_holds_is_a_usage_error_and_0000_is_warned(capsys):
    import socket

    from ray_ocr.serve.cli import check_port_free, public_base_url

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with pytest.raises(UsageError, match=f"--host 127.0.0.1 --port {port}: cannot listen there"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # free again
    assert public_base_url("127.0.0.1", 8080) == "http://127.0.0.1:8080" and capsys.readouterr().err == ""
    assert public_base_url("0.0.0.0", 8080) == f"http://{socket.gethostname()}:8080"
    assert "warning: --host 0.0.0.0" in capsys.readouterr().err



def test_max_pages_reaches_paddlex_s_app_config():
    """--max_pages goes to the replicas (the plan) and into PaddleX's app config as its
    max_num_input_imgs: N, or None (every page) for 0; not given, PaddleX's (or the
    --pipeline_config's) stays."""
    from ray_ocr.serve.replica import with_page_limit

    limited = serve_config(device="cpu", pipeline_params=OFFLINE, max_pages=3)
    assert plan_deployment(limited, cluster((2, 0))).max_pages == 3
    assert plan_deployment(serve_config(device="cpu", pipeline_params=OFFLINE), cluster((2, 0))).max_pages is None
    config = {"pipeline_name": "OCR", "Serving": {"extra": {"max_num_input_imgs": 4, "return_img_urls": False}}}
    assert with_page_limit(config, None) is config
    assert with_page_limit(config, 0)["Serving"]["extra"] == {"max_num_input_imgs": None, "return_img_urls": False}
    assert with_page_limit({"pipeline_name": "OCR"}, 12)["Serving"] == {"extra": {"max_num_input_imgs": 12}}
    assert config["Serving"]["extra"]["max_num_input_imgs"] == 4  # the given config is not changed
    with pytest.raises(UsageError, match="--max_pages"):
        serve_config(max_pages=-1)
