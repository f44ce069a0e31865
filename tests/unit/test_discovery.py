import os

from ray_ocr.io.discovery import iter_input_folders, iter_inputs, walk


def list_inputs(input_dir, pattern, **kwargs):
    return list(iter_inputs(input_dir, pattern, **kwargs))


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


def test_folders_come_one_group_at_a_time_in_walk_order(tmp_path):
    for rel in ["z.png", "a/2.png", "a/1.png", "a/sub/x.png", "b/y.pdf", "b/.git/objects/q.png"]:
        _touch(tmp_path / rel)
    groups = list(iter_input_folders(str(tmp_path), "**/*"))
    assert groups == [["z.png"], ["a/1.png", "a/2.png"], ["a/sub/x.png"], ["b/y.pdf"]]
    assert list(iter_input_folders(str(tmp_path), "a/*.png")) == [["a/1.png", "a/2.png"]]
    assert list(iter_input_folders(str(tmp_path), "**/*.pdf")) == [["b/y.pdf"]]


def test_the_walk_is_lazy(tmp_path):
    """A folder is listed only when the consumer gets to it: the first inputs go out
    before a huge tree has been walked."""
    _touch(tmp_path / "a" / "1.png")
    _touch(tmp_path / "b" / "2.png")
    walk = iter_input_folders(str(tmp_path), "**/*")
    assert next(walk) == ["a/1.png"]
    _touch(tmp_path / "b" / "3.png")  # after the walk started, before it reached b/
    assert next(walk) == ["b/2.png", "b/3.png"]
    assert next(walk, None) is None


def test_symlinked_folders_are_entered_only_with_follow_symlinks_and_once(tmp_path):
    _touch(tmp_path / "real" / "a.png")
    _touch(tmp_path / "top.png")
    os.symlink(tmp_path / "real", tmp_path / "alias")  # the same folder under two names
    os.symlink(tmp_path, tmp_path / "real" / "up")  # a cycle back to the root
    assert list_inputs(str(tmp_path), "**/*") == ["top.png", "real/a.png"]  # as pathlib's **
    keys = list_inputs(str(tmp_path), "**/*", follow_symlinks=True)
    assert keys.count("top.png") == 1 and len(keys) == 2  # each real folder once


def test_glob_sets_leading_dot_and_literal_folders(tmp_path):
    for rel in ["a.PDF", "b.pdf", "c.png", "sub/d.pdf", "sub/deeper/e.pdf", "other/f.pdf"]:
        _touch(tmp_path / rel)
    assert list_inputs(str(tmp_path), "*.[pP][dD][fF]") == ["a.PDF", "b.pdf"]
    assert list_inputs(str(tmp_path), "./*.pdf") == ["b.pdf"]
    assert list_inputs(str(tmp_path), "sub/*.pdf") == ["sub/d.pdf"]
    assert list_inputs(str(tmp_path), "sub/**/*.pdf") == ["sub/d.pdf", "sub/deeper/e.pdf"]
    assert list_inputs(str(tmp_path), "*/*.pdf") == ["other/f.pdf", "sub/d.pdf"]
    assert list_inputs(str(tmp_path), "missing/*.pdf") == []


def test_walk_lists_folder_by_folder_as_deep_as_the_pattern_reaches():
    """The walk an object store's listing uses: one call per folder, files before the
    folder's sub-folders, sub-folders in name order, none below the pattern's depth."""
    tree = {"": (["a.png", "b.pdf"], ["x", "y"]), "x": (["x/c.png"], ["x/deep"]), "x/deep": (["x/deep/d.png"], []),
            "y": (["y/e.png"], [])}
    asked = []

    def list_dir(folder, matches):
        asked.append(folder)
        files, subdirs = tree[folder]
        return [f for f in files if matches(f)], subdirs

    assert list(walk("**/*.png", list_dir)) == [["a.png"], ["x/c.png"], ["x/deep/d.png"], ["y/e.png"]]
    assert asked == ["", "x", "x/deep", "y"]
    asked.clear()
    assert list(walk("*/*.png", list_dir)) == [["x/c.png"], ["y/e.png"]]
    assert asked == ["", "x", "y"]  # not x/deep
    asked.clear()
    assert list(walk("x/*", list_dir)) == [["x/c.png"]] and asked == ["x"]


def test_a_name_that_is_not_utf8_becomes_a_list_failure_naming_it(tmp_path):
    from ray_ocr.engine.reading import InputReader
    from ray_ocr.io.storage import LocalFolder
    from ray_ocr.records import Task

    (tmp_path / "café.png").write_bytes(b"x")  # UTF-8: an ordinary input
    for name in (b"scan_caf\xe9.png", b"old_caf\xe9.png"):  # Latin-1
        with open(os.path.join(os.fsencode(tmp_path), name), "wb") as handle:
            handle.write(b"x")
    (tmp_path / "old_caf\\xe9.png").write_bytes(b"real")  # a real name the escaped one would take
    folder = LocalFolder(str(tmp_path))
    keys = [key for group in folder.groups("*.png") for key in group]
    # every key is text the manifest can hold, and each file keeps a key of its own
    assert sorted(keys) == sorted(["café.png", "scan_caf\\xe9.png", "old_caf\\xe9.png",
                                   "old_caf\\xe9.png (not UTF-8)"])
    assert folder.bad_names == {"scan_caf\\xe9.png", "old_caf\\xe9.png (not UTF-8)"}
    reader = InputReader(folder, pages_per_task=0)
    failed = reader.read(Task("scan_caf\\xe9.png")).failure.one_line()
    assert failed.startswith("scan_caf\\xe9.png: list failed: UnicodeError: its file name is not valid UTF-8")
    failed.encode("utf-8")  # raises for a name with surrogates: a record the manifest could not hold
    assert reader.read(Task("old_caf\\xe9.png")).data == b"real"
    assert reader.read(Task("café.png")).data == b"x"



def test_a_pattern_for_the_top_folder_names_the_sub_folders_it_leaves(tmp_path, caplog):
    """`*` (the default) does not enter sub-folders: one line says which it left, so an
    archive of sub-folders is not silently a tenth done; `**/*` enters them, no line."""
    for rel in ("a.png", "scans/b.png", "more/c.pdf", ".hidden/d.png", "only_hidden/.DS_Store"):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "empty").mkdir()  # neither it nor only_hidden is named: nothing to search there
    with caplog.at_level("INFO", logger="ray_ocr.io.discovery"):
        assert list_inputs(tmp_path, "*") == ["a.png"]
    assert [r.getMessage() for r in caplog.records] == [
        "2 sub-folder(s) of the input folder not searched (more, scans): --input_glob_pattern '*' matches "
        "files directly in it only; '**/*' searches sub-folders too"]
    caplog.clear()
    with caplog.at_level("INFO", logger="ray_ocr.io.discovery"):
        assert list_inputs(tmp_path, "**/*") == ["a.png", "more/c.pdf", "scans/b.png"]
    assert caplog.records == []
