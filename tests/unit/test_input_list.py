"""--input_list: entries streamed from a text, CSV or Parquet list, named relative to
the folder they share, each once, and never two inputs on one output base."""

import pytest

from ray_ocr.errors import UsageError
from ray_ocr.io.input_list import InputList


def _tree(root, names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())
    return root


def test_text_list_keys_are_relative_to_the_common_folder(tmp_path):
    docs = _tree(tmp_path / "docs", ["a/x.png", "a/y.png", "b/z.pdf"])
    listing = tmp_path / "lists" / "inputs.txt"
    listing.parent.mkdir()
    listing.write_text(f"# scans\n{docs}/a/x.png\n\n../docs/b/z.pdf\n{docs}/a/y.png\n{docs}/a/x.png\n")
    inputs = InputList(str(listing))
    assert list(inputs.groups()) == [["a/x.png"], ["b/z.pdf"], ["a/y.png"]]  # x.png listed twice: once
    assert inputs.root == str(docs)
    assert inputs.read("b/z.pdf") == b"b/z.pdf" and inputs.display("a/y.png") == str(docs / "a" / "y.png")


def test_csv_and_parquet_take_the_path_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    docs = _tree(tmp_path / "docs", ["p.png", "q.png"])
    csv_list = tmp_path / "l.csv"
    csv_list.write_text(f"id,path\n1,{docs}/p.png\n2,{docs}/q.png\n")
    assert list(InputList(str(csv_list)).groups()) == [["p.png", "q.png"]]
    bare_csv = tmp_path / "bare.csv"
    bare_csv.write_text(f"{docs}/q.png,1\n{docs}/p.png,2\n")  # no header: the first column
    assert list(InputList(str(bare_csv)).groups()) == [["q.png", "p.png"]]
    parquet = tmp_path / "l.parquet"
    pq.write_table(pa.table({"n": [1, 2], "path": [f"{docs}/q.png", f"{docs}/p.png"]}), parquet)
    assert list(InputList(str(parquet)).groups()) == [["q.png", "p.png"]]


def test_one_filesystem_and_at_least_one_entry(tmp_path):
    mixed = tmp_path / "mixed.txt"
    mixed.write_text(f"{tmp_path}/a.png\ns3://bucket/b.png\n")
    with pytest.raises(UsageError, match="line 2 .* another filesystem"):
        list(InputList(str(mixed)).groups())
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(UsageError, match="lists no file"):
        list(InputList(str(empty)).groups())


def test_a_later_input_whose_output_base_is_taken_goes_by_full_name(tmp_path):
    """x.jpg and x.png in one folder but not next to each other in the list: both would
    be x.json; the later one is named x.png.json."""
    from ray_ocr.engine.resume import InputPlan
    from ray_ocr.io.storage import LocalFolder

    docs = _tree(tmp_path / "docs", ["x.jpg", "other/o.png", "x.png", "y.jpg", "y.png"])
    listing = tmp_path / "l.txt"
    listing.write_text("\n".join(f"{docs}/{n}" for n in ["x.jpg", "other/o.png", "x.png", "y.jpg", "y.png"]))

    class Config:
        overwrite, resume_anyway, input_glob_pattern, follow_symlinks = True, False, "*", False
        input_list = str(listing)

    plan = InputPlan(Config, InputList(str(listing)), LocalFolder(str(tmp_path / "out")), None, {})
    assert list(plan.keys()) == ["x.jpg", "other/o.png", "x.png", "y.jpg", "y.png"]
    assert plan.bases == {"x.jpg": "x", "other/o.png": "other/o", "x.png": "x.png",
                          "y.jpg": "y.jpg", "y.png": "y.png"}  # y.*: one group, the folder rule


def test_a_pdfs_pages_and_a_later_image_named_like_a_page_never_share_a_file(tmp_path):
    """x.pdf writes x_0.json, x_1.json...; x_0.png, listed in a later group, would write
    x_0.json too: it goes by its full name. Likewise the other way round."""
    from ray_ocr.engine.resume import InputPlan
    from ray_ocr.io.storage import LocalFolder

    names = ["x.pdf", "o/z.png", "x_0.png", "y_3.png", "o/w.png", "y.pdf"]
    docs = _tree(tmp_path / "docs", names)
    listing = tmp_path / "l.txt"
    listing.write_text("\n".join(f"{docs}/{n}" for n in names))

    class Config:
        overwrite, resume_anyway, input_glob_pattern, follow_symlinks = True, False, "*", False
        input_list = str(listing)

    plan = InputPlan(Config, InputList(str(listing)), LocalFolder(str(tmp_path / "out")), None, {})
    assert list(plan.keys()) == names
    assert plan.bases == {"x.pdf": "x", "o/z.png": "o/z", "x_0.png": "x_0.png", "y_3.png": "y_3",
                          "o/w.png": "o/w", "y.pdf": "y.pdf"}


def test_file_uri_entries_are_read_by_the_actors_plain_paths_by_the_driver(tmp_path):
    docs = _tree(tmp_path / "docs", ["a/x.png", "b/z.pdf"])
    mounted = tmp_path / "mounted.txt"
    mounted.write_text(f"file://{docs}/a/x.png\nfile://{docs}/b/z.pdf\n")
    inputs = InputList(str(mounted))
    assert list(inputs.groups()) == [["a/x.png"], ["b/z.pdf"]]
    assert inputs.uri == f"file://{docs}" and inputs.actor_reads  # mounted on every node: no bytes shipped
    assert inputs.read("b/z.pdf") == b"b/z.pdf" and inputs.display("a/x.png") == str(docs / "a" / "x.png")
    mixed = tmp_path / "mixed.txt"
    mixed.write_text(f"file://{docs}/a/x.png\n{docs}/b/z.pdf\n")  # one plain path: only the driver's disk
    inputs = InputList(str(mixed))
    list(inputs.groups())
    assert inputs.uri == str(docs) and not inputs.actor_reads
