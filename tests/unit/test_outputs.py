import os
import stat

import pytest

from ray_ocr.io.outputs import SUMMARY_NAME, assign_output_bases, atomic_write_text, output_relpath, safe_join


def test_seed_script_naming_keeps_relative_folders():
    bases = assign_output_bases(["x.jpg", "a/x.jpg", "b/x.jpg", "doc.pdf"])
    assert bases == {"x.jpg": "x", "a/x.jpg": "a/x", "b/x.jpg": "b/x", "doc.pdf": "doc"}
    assert output_relpath(bases["a/x.jpg"], None) == "a/x.json"
    assert output_relpath(bases["doc.pdf"], 3) == "doc_3.json"


def test_same_stem_in_one_folder_uses_full_names():
    bases = assign_output_bases(["x.jpg", "x.png", "y.jpg", "sub/x.jpg"])
    assert bases["x.jpg"] == "x.jpg" and bases["x.png"] == "x.png"
    assert bases["y.jpg"] == "y" and bases["sub/x.jpg"] == "sub/x"
    names = {output_relpath(bases[k], None) for k in bases}
    assert len(names) == 4


def test_pdf_pages_and_an_image_named_like_a_page_do_not_collide():
    bases = assign_output_bases(["scan.pdf", "scan_0.png", "other_0.png"])
    assert bases["scan.pdf"] == "scan.pdf" and bases["scan_0.png"] == "scan_0.png"
    assert bases["other_0.png"] == "other_0"
    assert output_relpath(bases["scan.pdf"], 0) != output_relpath(bases["scan_0.png"], None)


def test_no_input_takes_the_run_summarys_name():
    bases = assign_output_bases(["summary.png", "summary", "summary.pdf", "sub/summary.png", "summaryx.jpg"])
    names = {key: output_relpath(base, 0 if key.endswith(".pdf") else None) for key, base in bases.items()}
    assert names == {"summary.png": "summary.png.json", "summary": "summary_input.json",
                     "summary.pdf": "summary.pdf_0.json", "sub/summary.png": "sub/summary.json",
                     "summaryx.jpg": "summaryx.json"}
    assert SUMMARY_NAME not in names.values()


def test_naming_is_deterministic():
    keys = ["b/x.png", "a.pdf", "b/x.jpg", "c.tif"]
    assert assign_output_bases(keys) == assign_output_bases(list(reversed(keys)))


def test_safe_join_refuses_escapes(tmp_path):
    assert safe_join(str(tmp_path), "a/b.json") == str(tmp_path / "a" / "b.json")
    for bad in ["../x.json", "a/../../x.json", "/etc/x.json"]:
        with pytest.raises(ValueError):
            safe_join(str(tmp_path), bad)


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "deep" / "out.json"
    atomic_write_text(str(target), '{"a": "文字"}')
    atomic_write_text(str(target), '{"a": 2}')
    assert target.read_text() == '{"a": 2}'
    assert os.listdir(target.parent) == ["out.json"]


def test_written_files_are_readable_by_others_as_the_umask_allows(tmp_path):
    """mkstemp makes 0600 files: results in a shared folder would be hidden from others."""
    expected = 0o666 & ~_umask()
    target = tmp_path / "out.json"
    atomic_write_text(str(target), "{}")
    assert stat.S_IMODE(target.stat().st_mode) == expected  # under umask 022: 0644, not mkstemp's 0600


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_saver_outputs_follow_the_json_naming():
    from ray_ocr.io.outputs import extra_output_relpath

    assert extra_output_relpath("a/x", None, "a/x.jpg", "x_ocr_res_img.png") == "a/x_ocr_res_img.png"
    assert extra_output_relpath("a/doc", 2, "a/doc.pdf", "doc_ocr_res_img.png") == "a/doc_2_ocr_res_img.png"
    assert extra_output_relpath("a/doc", 2, "a/doc.pdf", "doc_2_ocr_res_img.png") == "a/doc_2_ocr_res_img.png"
    assert extra_output_relpath("a/doc_2", None, "a/doc_2.jpg", "doc_2_x.jpg") == "a/doc_2_x.jpg"
    assert extra_output_relpath("x.png", None, "x.png", "x.md") == "x.png.md"  # a clash-renamed base
    assert extra_output_relpath("a/x", None, "a/x.jpg", "imgs/crop_1.jpg") == "a/imgs/crop_1.jpg"
    assert extra_output_relpath("x", 0, "x.pdf", "imgs/c.jpg") == "imgs/c.jpg"


def test_names_split_as_pathlib_splits_them():
    from pathlib import PurePosixPath

    from ray_ocr.io.outputs import _split_key

    for key in ["a.png", "a.tar.gz", "noext", "x.", "..x", "a..b", "d/e/f.PDF", "d/x.", "d/.a.b",
                "a b.c", "x_0.png", "é.jpg", "a.b.", "a..", ".a.", "..."]:
        p = PurePosixPath(key)
        assert _split_key(key) == ("" if str(p.parent) == "." else str(p.parent), p.name, p.stem), key


def test_page_name_clashes_in_a_folder_of_many_pdfs():
    keys = [f"f/doc{i}.pdf" for i in range(2000)] + ["f/doc7_3.png", "f/doc7_x.png", "f/other_1.png"]
    bases = assign_output_bases(keys)
    assert bases["f/doc7.pdf"] == "f/doc7.pdf" and bases["f/doc7_3.png"] == "f/doc7_3.png"
    assert bases["f/doc8.pdf"] == "f/doc8" and bases["f/doc7_x.png"] == "f/doc7_x"
    assert bases["f/other_1.png"] == "f/other_1"
