import datetime
import os

import pytest

from ray_ocr.config import DeviceRequest, RunConfig, parse_key_values
from ray_ocr.errors import UsageError


def test_params_are_yaml_scalars():
    parsed = parse_key_values(
        ["use_doc_unwarping=false", "text_det_thresh=0.3", "text_detection_model_name=PP-OCRv5_mobile_det",
         "cpu_threads=4", "lang="],
        "--param",
    )
    assert parsed == {
        "use_doc_unwarping": False,
        "text_det_thresh": 0.3,
        "text_detection_model_name": "PP-OCRv5_mobile_det",
        "cpu_threads": 4,
        "lang": None,
    }


@pytest.mark.parametrize("bad", ["novalue", "=1", "two words=1", "x=[1, 2", "1x=2"])
def test_malformed_params_are_usage_errors(bad):
    with pytest.raises(UsageError) as err:
        parse_key_values([bad], "--param")
    assert "--param" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "text, kind, ids",
    [(None, "auto", None), ("cpu", "cpu", None), ("gpu", "gpu", None),
     ("gpu:0,1,2,3", "gpu", (0, 1, 2, 3)), ("gpu:0,2", "gpu", (0, 2)), ("GPU:1", "gpu", (1,))],
)
def test_device_parsing(text, kind, ids):
    dev = DeviceRequest.parse(text)
    assert (dev.kind, dev.gpu_ids) == (kind, ids)


@pytest.mark.parametrize("bad", ["gpu:a", "gpu:0,0", "tpu", "gpu:-1"])
def test_bad_devices(bad):
    with pytest.raises(UsageError):
        DeviceRequest.parse(bad)


def test_config_is_frozen_and_validated(tmp_path):
    (tmp_path / "in").mkdir()
    cfg = RunConfig.build(pipeline="ocr", input_dir=str(tmp_path / "in"), output_dir=str(tmp_path / "out"),
                          pipeline_params={"b": 1, "a": 2})
    assert cfg.pipeline.class_name == "PaddleOCR"
    assert cfg.pipeline_kwargs == {"a": 2, "b": 1}
    with pytest.raises(Exception):
        cfg.batch_size = 3  # frozen
    (tmp_path / "file").write_text("x")
    latin1 = tmp_path / os.fsdecode(b"caf\xe9")
    latin1.mkdir()
    for kwargs, needle in [
        (dict(input_dir=str(tmp_path / "missing")), "no such directory"),
        (dict(input_dir=str(tmp_path / "file")), "not a directory"),
        # a folder from a Latin-1 system: refused before any file is listed or written
        (dict(input_dir=str(latin1)), r"--input_dir .*/caf\\xe9: this path is not valid UTF-8.*convmv"),
        (dict(output_dir=str(latin1 / "out")), r"--output_dir .*/caf\\xe9/out: this path is not valid UTF-8"),
        (dict(output_dir=str(tmp_path / "file")), "not a directory"),
        (dict(batch_size=0), "--batch_size"),
        (dict(instances_per_device=0), "--instances_per_device"),
        (dict(device="cpu", gpus_per_instance=0.5), "GPU"),
    ]:
        base = dict(pipeline="ocr", input_dir=str(tmp_path / "in"), output_dir=str(tmp_path / "out"))
        base.update(kwargs)
        with pytest.raises(UsageError, match=needle):
            RunConfig.build(**base)


def test_params_file(tmp_path):
    from ray_ocr.config import load_params_file

    good = tmp_path / "p.yaml"
    good.write_text("use_doc_unwarping: false\ntext_det_thresh: 0.3\n")
    assert load_params_file(str(good)) == {"use_doc_unwarping": False, "text_det_thresh": 0.3}
    assert load_params_file(None) == {}
    for text in ["- a\n- b\n", "a: [1\n", "1x: 2\n"]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(UsageError, match="--params_file"):
            load_params_file(str(bad))
    with pytest.raises(UsageError, match="No such file"):
        load_params_file(str(tmp_path / "missing.yaml"))


def test_save_kinds(tmp_path):
    from ray_ocr.config import parse_save
    from ray_ocr.pipelines import resolve_pipeline

    assert parse_save("markdown,img", resolve_pipeline("PPStructureV3")) == ("markdown", "img")
    assert parse_save("json,img,img", resolve_pipeline("OCR")) == ("img",)
    assert parse_save(None, resolve_pipeline("OCR")) == ()
    with pytest.raises(UsageError, match="no markdown output"):
        parse_save("markdown", resolve_pipeline("SealRecognition"))
    with pytest.raises(UsageError, match="expected a comma list"):
        parse_save("pdf", resolve_pipeline("OCR"))
    assert parse_save("page,img", resolve_pipeline("DocPreprocessor")) == ("page", "img")
    with pytest.raises(UsageError, match="--save page: the DocUnderstanding pipeline has no document preprocessing"):
        parse_save("page", resolve_pipeline("DocUnderstanding"))


def _parser_flags(parser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings
            if opt.startswith("--") and opt != "--help"}


def _table_flags(text: str) -> set[str]:
    return {line.split("`")[1].split()[0] for line in text.splitlines() if line.startswith("| `--")}


def _readme() -> str:
    from tests.conftest import REPO

    return (REPO / "README.md").read_text(encoding="utf-8")


def test_every_cli_flag_is_in_the_readme_table():
    """The README's flag table is the CLI's documentation: a flag missing there is a bug."""
    from ray_ocr.cli import build_parser

    table = _readme().split("### Flags", 1)[1].split("\n### ", 1)[0]
    assert _parser_flags(build_parser()) == _table_flags(table)


def test_every_serve_flag_is_in_the_readme_serving_table():
    """Likewise `python -m ray_ocr.serve`'s flags, in the README's "Serving" section."""
    from ray_ocr.serve.cli import build_parser

    section = _readme().split("\n## Serving\n", 1)[1].split("\n## ", 1)[0]
    assert _parser_flags(build_parser()) == _table_flags(section)


def test_each_option_is_one_flag_and_one_keyword(tmp_path):
    """The CLI's flags, run_batch's and predict's keyword arguments all come from the
    config fields: a field is a flag of the same name (--param/--params_file and
    --predict_param fill the two mappings)."""
    import dataclasses

    from ray_ocr.cli import build_parser
    from ray_ocr.config import PredictConfig

    flags = {flag[2:] for flag in _parser_flags(build_parser())}
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    assert flags == (fields - {"pipeline_params", "predict_params"}) | {"param", "params_file", "predict_param"}
    assert {f.name for f in dataclasses.fields(PredictConfig)} < fields
    (tmp_path / "in").mkdir()
    with pytest.raises(UsageError, match="unknown option output_dir"):
        PredictConfig.build(pipeline="OCR", output_dir=str(tmp_path))
    with pytest.raises(UsageError, match="unknown option batchsize"):
        RunConfig.build(pipeline="OCR", input_dir=str(tmp_path / "in"), batchsize=2)
    with pytest.raises(UsageError, match="--input_dir DIR or --input_list FILE"):
        RunConfig.build(pipeline="OCR")
    with pytest.raises(UsageError, match="--pipeline is required"):
        RunConfig.build(input_dir=str(tmp_path / "in"))


@pytest.mark.parametrize("name, bad, message", [
    ("prefetch_batches", -1, "--prefetch_batches -1: must be >= 0"),
    ("pages_per_task", -2, "--pages_per_task -2: must be >= 0 (0: never split a PDF)"),
    ("max_bytes_in_flight", 0, "--max_bytes_in_flight 0: must be > 0"),
    ("max_attempts", 0, "--max_attempts 0: must be >= 1"),
    ("gpus_per_instance", 0, "--gpus_per_instance 0: must be > 0 and at most 1 (a pipeline uses one GPU at most)"),
    ("gpus_per_instance", 2, "--gpus_per_instance 2: must be > 0 and at most 1 (a pipeline uses one GPU at most)"),
    ("max_tasks_per_actor", -1, "--max_tasks_per_actor -1: must be >= 0 (0: never recycle)"),
    ("input_glob_pattern", "", "--input_glob_pattern '': must be a relative pattern"),
    ("input_glob_pattern", "../*", "--input_glob_pattern ../*: must stay inside the input folder (relative, no '..')"),
])
def test_checks_come_from_the_declaration(tmp_path, name, bad, message):
    (tmp_path / "in").mkdir()
    with pytest.raises(UsageError) as err:
        RunConfig.build(pipeline="OCR", input_dir=str(tmp_path / "in"), **{name: bad})
    assert str(err.value) == message


def test_defaults_are_converted_like_given_values(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = RunConfig.build(pipeline="OCR", input_dir="in")
    assert cfg.output_dir == str(tmp_path / "output") and cfg.input_dir == str(tmp_path / "in")
    assert cfg.device == DeviceRequest("auto") and cfg.save == () and cfg.pipeline_params == ()


# -- *_model_dir params: refused before Ray starts, not as PaddleX's FileNotFoundError in each actor

SHIPPED = "(ray_ocr ships model folders from this machine to the workers)"
NO_FOLDER = f"no such folder {SHIPPED}"
NOT_MODEL = "not a PaddleX model folder (no inference.yml)"


def _model_folder(path):
    path.mkdir(parents=True)
    (path / "inference.yml").write_text("")  # PaddleX reads it first; the check needs no more
    return path


def _run_cli_config(argv, config_cls=RunConfig):
    """The config `python -m ray_ocr.run` (or ray_ocr.serve) builds from `argv`."""
    from ray_ocr.cli import build_config_parser, options_from_args

    return config_cls.build(**options_from_args(build_config_parser(config_cls).parse_args(argv), config_cls))


@pytest.mark.parametrize("make, problem", [
    (lambda p: None, NO_FOLDER),  # missing
    (lambda p: p.write_text("x"), f"not a folder {SHIPPED}"),
    (lambda p: p.mkdir(), NOT_MODEL),  # a folder without inference.yml
    (lambda p: (p / "inference.yml").mkdir(parents=True), NOT_MODEL),  # not a file PaddleX can read
], ids=["missing", "a_file", "no_inference_yml", "inference_yml_is_a_folder"])
def test_a_bad_model_dir_param_is_a_usage_error(tmp_path, make, problem):
    (tmp_path / "in").mkdir()
    bad = tmp_path / "det"
    make(bad)
    argv = ["--pipeline", "OCR", "--input_dir", str(tmp_path / "in"), "--output_dir", str(tmp_path / "out"),
            "--param", f"text_detection_model_dir={bad}"]
    with pytest.raises(UsageError) as err:
        _run_cli_config(argv)
    assert str(err.value) == f"--param text_detection_model_dir={bad}: {problem}"


def test_a_good_model_dir_is_kept_absolute_and_none_is_accepted(tmp_path, monkeypatch):
    from ray_ocr.config import PipelineOptions

    det = _model_folder(tmp_path / "models" / "det")
    monkeypatch.chdir(tmp_path)
    cfg = PipelineOptions.build(pipeline="OCR", pipeline_params={
        "text_detection_model_dir": "models/det", "text_recognition_model_dir": None,
        "text_detection_model_name": "PP-OCRv5_mobile_det"})
    assert cfg.pipeline_kwargs == {"text_detection_model_dir": str(det), "text_recognition_model_dir": None,
                                   "text_detection_model_name": "PP-OCRv5_mobile_det"}
    # --param name= (no value) is None: PaddleX then uses the named model
    argv = ["--pipeline", "OCR", "--input_dir", str(tmp_path), "--param", "text_recognition_model_dir="]
    assert _run_cli_config(argv).pipeline_kwargs == {"text_recognition_model_dir": None}


def test_a_model_dir_expands_tilde(tmp_path, monkeypatch):
    from ray_ocr.config import PipelineOptions

    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(UsageError) as err:
        PipelineOptions.build(pipeline="OCR", pipeline_params={"text_detection_model_dir": "~/det"})
    assert str(err.value) == f"--param text_detection_model_dir={tmp_path / 'det'}: {NO_FOLDER}"
    _model_folder(tmp_path / "det")
    cfg = PipelineOptions.build(pipeline="OCR", pipeline_params={"text_detection_model_dir": "~/det"})
    assert cfg.pipeline_kwargs == {"text_detection_model_dir": str(tmp_path / "det")}


@pytest.mark.parametrize("value, shown, kind", [(2024, "2024", "int"), (datetime.date(2024, 1, 2), "2024-01-02", "date")],
                         ids=["yaml_number", "yaml_date"])
def test_a_model_dir_yaml_reads_as_no_text_is_refused_with_how_to_quote_it(value, shown, kind):
    """YAML reads an unquoted 2024 or 2024-01-02 as a number or a date."""
    from ray_ocr.config import PipelineOptions

    with pytest.raises(UsageError) as err:
        PipelineOptions.build(pipeline="OCR", pipeline_params={"text_detection_model_dir": value})
    assert str(err.value) == (f"--param text_detection_model_dir={shown}: YAML reads this as a {kind}, not a "
                              f"folder; quote it: --param \"text_detection_model_dir='{shown}'\" "
                              f"(or text_detection_model_dir: '{shown}' in a --params_file)")


def test_an_empty_model_dir_is_refused():
    """PaddleX would look for the model files in its working folder."""
    from ray_ocr.config import PipelineOptions

    with pytest.raises(UsageError) as err:
        PipelineOptions.build(pipeline="OCR", pipeline_params={"text_detection_model_dir": ""})
    assert str(err.value) == "--param text_detection_model_dir='': an empty folder path"


def test_a_model_dir_given_as_a_path_object_and_for_a_custom_pipeline(tmp_path):
    """The Python API may pass a Path; a custom pipeline class may take any folder."""
    from ray_ocr.config import PipelineOptions

    det = _model_folder(tmp_path / "det")
    cfg = PipelineOptions.build(pipeline="OCR", pipeline_params={"text_detection_model_dir": det})
    assert cfg.pipeline_kwargs == {"text_detection_model_dir": str(det)}
    (tmp_path / "onnx").mkdir()
    custom = PipelineOptions.build(pipeline="ray_ocr.testing.standin:DocUnderstandingStandin",
                                   pipeline_params={"vlm_model_dir": str(tmp_path / "onnx")})
    assert custom.pipeline_kwargs == {"vlm_model_dir": str(tmp_path / "onnx")}
    with pytest.raises(UsageError):
        PipelineOptions.build(pipeline="OCR", pipeline_params={"text_detection_model_dir": tmp_path / "onnx"})


def test_model_dirs_from_a_params_file_and_for_serving(tmp_path):
    from ray_ocr.config import ServeConfig

    good = _model_folder(tmp_path / "good")
    params = tmp_path / "p.yaml"
    params.write_text(f"text_detection_model_dir: {tmp_path / 'nothing'}\ntext_recognition_model_dir: {good}\n")
    for config_cls, argv in [(RunConfig, ["--input_dir", str(tmp_path)]), (ServeConfig, [])]:
        with pytest.raises(UsageError) as err:
            _run_cli_config(["--pipeline", "OCR", "--params_file", str(params), *argv], config_cls)
        assert str(err.value) == f"--param text_detection_model_dir={tmp_path / 'nothing'}: {NO_FOLDER}"
        # a --param overrides the file's entry, and only what the run uses is checked
        cfg = _run_cli_config(["--pipeline", "OCR", "--params_file", str(params), *argv,
                               "--param", f"text_detection_model_dir={good}"], config_cls)
        assert cfg.pipeline_kwargs == {"text_detection_model_dir": str(good), "text_recognition_model_dir": str(good)}


def test_a_non_utf8_model_dir_is_shown_escaped(tmp_path):
    from ray_ocr.config import PipelineOptions

    latin1 = str(tmp_path / os.fsdecode(b"caf\xe9"))
    with pytest.raises(UsageError) as err:
        PipelineOptions.build(pipeline="OCR", pipeline_params={"text_detection_model_dir": latin1})
    assert str(err.value) == f"--param text_detection_model_dir={tmp_path}/caf\\xe9: {NO_FOLDER}"
