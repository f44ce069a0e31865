import os

from ray_ocr.io.discovery import list_inputs


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_listing_is_sorted_skips_dirs_and_hidden(tmp_path):
    for rel in ["b.jpg", "a.png", "sub/c.pdf", ".DS_Store", ".hidden/d.jpg"]:
        _touch(tmp_path / rel)
    assert list_inputs(str(tmp_path), "*") == ["a.png", "b.jpg"]
    assert list_inputs(str(tmp_path), "**/*") == ["a.png", "b.jpg", "sub/c.pdf"]
    assert list_inputs(str(tmp_path), "*.jpg") == ["b.jpg"]


def test_output_folder_inside_input_is_not_read_back(tmp_path):
    _touch(tmp_path / "a.jpg")
    _touch(tmp_path / "out" / "a.json")
    assert list_inputs(str(tmp_path), "**/*", exclude_dir=str(tmp_path / "out")) == ["a.jpg"]


def test_symlinks_out_of_the_tree_need_follow_symlinks(tmp_path):
    outside = tmp_path / "outside"
    _touch(outside / "secret.jpg")
    root = tmp_path / "in"
    _touch(root / "a.jpg")
    os.symlink(outside / "secret.jpg", root / "link.jpg")
    os.symlink(root / "a.jpg", root / "inner_link.jpg")
    assert list_inputs(str(root), "*") == ["a.jpg", "inner_link.jpg"]
    assert list_inputs(str(root), "*", follow_symlinks=True) == ["a.jpg", "inner_link.jpg", "link.jpg"]
