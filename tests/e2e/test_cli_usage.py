"""Every usage error: exit code 2, one line on stderr, no traceback, before Ray starts."""

import re
import subprocess
import sys

import pytest

from tests.conftest import REALDOCS

pytestmark = pytest.mark.e2e


def run_cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "ray_ocr.run", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture()
def dirs(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes((REALDOCS / "paddleocr" / "word_en_10.png").read_bytes())
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    return tmp_path


CASES = [
    (["--input_dir", "{t}/missing"], "no such directory"),
    (["--input_dir", "{t}/file.txt"], "not a directory"),
    (["--input_dir", "{t}/in", "--output_dir", "{t}/file.txt"], "not a directory"),
    (["--input_dir", "{t}/in", "--output_dir", "{t}/file.txt/sub"], "file.txt exists and is not a directory"),
    (["--input_dir", "{t}/in", "--input_glob_pattern", "../*.txt"], "must stay inside the input folder"),
    (["--input_dir", "{t}/in", "--batch_size", "0"], "--batch_size"),
    (["--input_dir", "{t}/empty"], "no file matches"),
    (["--input_dir", "{t}/in", "--input_glob_pattern", "*.tif"], "no file matches"),
    (["--input_dir", "{t}/in", "--pipeline", "NoSuchPipeline"], "valid: "),
    (["--input_dir", "{t}/in", "--device", "gpu:9"], "GPU 9 is not visible"),
    (["--input_dir", "{t}/in", "--device", "gpu:x"], "integers"),
    (["--input_dir", "{t}/in", "--param", "use_doc_unwarping"], "key=value"),
    (["--input_dir", "{t}/in", "--predict_param", "=3"], "key=value"),
    (["--input_dir", "{t}/in", "--batch_size", "two"], "invalid int"),
    (["--input_dir", "{t}/in", "--pipeline_config", "{t}/nope.yaml"], "no such file"),
    (["--input_dir", "{t}/in", "--no_such_flag"], "unrecognized"),
    (["--input_dir", "{t}/in", "--params_file", "{t}/file.txt"], "expected a mapping"),
    (["--input_dir", "{t}/in", "--save", "markdown"], "no markdown output"),
    (["--input_dir", "{t}/in", "--save", "docx"], "expected a comma list"),
]


@pytest.mark.parametrize("args, needle", CASES, ids=[c[1] + str(i) for i, c in enumerate(CASES)])
def test_usage_error_is_one_line_exit_2(dirs, args, needle):
    argv = [a.format(t=dirs) for a in args]
    if "--pipeline" not in argv:
        argv += ["--pipeline", "OCR"]
    if "--output_dir" not in argv:
        argv += ["--output_dir", str(dirs / "out")]
    proc = run_cli(*argv)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0] and lines[0].startswith("ray_ocr: error:")
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (dirs / "out").exists()  # nothing was started or written


def test_more_cpus_per_instance_than_any_node_has_is_a_usage_error(dirs):
    """Checked once Ray is up (it needs the nodes' sizes); such an actor would wait forever."""
    proc = run_cli("--pipeline", "OCR", "--input_dir", str(dirs / "in"), "--output_dir", str(dirs / "out"),
                   "--device", "cpu", "--cpus_per_instance", "64")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()  # "starting Ray", the dashboard's address: Ray was up
    assert lines[-1].startswith("ray_ocr: error: --cpus_per_instance 64: no node has"), proc.stderr
    assert "Traceback" not in proc.stderr and len(lines) <= 3, proc.stderr
    assert not (dirs / "out" / "a.json").exists()


def test_an_address_nothing_listens_on_is_a_usage_error(dirs):
    """Not minutes of Ray's connection retries."""
    import socket

    with socket.socket() as sock:  # a port that was just free: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = run_cli("--pipeline", "OCR", "--input_dir", str(dirs / "in"), "--output_dir", str(dirs / "out"),
                   "--address", f"127.0.0.1:{port}", timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"ray_ocr: error: --address 127.0.0.1:{port}: cannot connect (Connection refused); is the cluster up "
        "(`ray status` on its head)?"]


def test_unknown_pipeline_lists_the_valid_names(dirs):
    proc = run_cli("--pipeline", "Nope", "--input_dir", str(dirs / "in"), "--output_dir", str(dirs / "out"))
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("ray_ocr: error:") and "Nope" in line
    valid = re.split(r"[\s,]+", line.split("valid: ", 1)[1])
    for name in ["OCR", "SealRecognition", "PPStructureV3", "seal_recognition", "pp_structurev3"]:
        assert name in valid, line
    assert not (dirs / "out").exists()


def test_help_documents_every_flag():
    from ray_ocr.cli import build_parser

    proc = run_cli("--help")
    assert proc.returncode == 0 and proc.stderr == ""
    shown = set(re.findall(r"(?<![\w-])--\w+", proc.stdout))  # whole flags: --param is not --params_file
    flags = {opt for action in build_parser()._actions for opt in action.option_strings if opt.startswith("--")}
    assert flags >= {"--pipeline", "--input_dir", "--output_dir", "--device", "--param"}
    assert flags <= shown, flags - shown
