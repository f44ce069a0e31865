"""Page-range tasks: how a long PDF is cut, and how its parts' outcomes become the
input's one manifest record (no Ray)."""

import collections

import pytest

from ray_ocr.engine.page_split import SplitDocument, plan_parts
from ray_ocr.records import Failure, FileResult, PageOutput, Task


def test_short_documents_stay_whole():
    assert plan_parts("a.pdf", 4, 4) == []
    assert plan_parts("a.pdf", 1, 4) == []
    assert plan_parts("a.pdf", 300, 0) == []  # 0: never split


@pytest.mark.parametrize("count,per_task", [(5, 4), (30, 4), (31, 8), (300, 7), (9, 1)])
def test_parts_cover_every_page_once_in_near_equal_ranges(count, per_task):
    parts = plan_parts("x/a.pdf", count, per_task)
    pages = [p for part in parts for p in part.page_range]
    assert pages == list(range(count))
    sizes = [len(part.page_range) for part in parts]
    assert max(sizes) <= per_task and max(sizes) - min(sizes) <= 1
    assert len(parts) == -(-count // per_task)
    assert all(part.key == "x/a.pdf" for part in parts)


def _part(task, failure=None, warnings=()):
    pages = () if failure else tuple(PageOutput(i, "{}") for i in task.page_range)
    return FileResult(key=task.key, pages=pages, failure=failure, warnings=warnings,
                      page_count=10, seconds=1.5, page_range=task.page_range)


def test_the_input_is_recorded_once_its_last_part_is_in():
    parts = plan_parts("a.pdf", 10, 4)
    split = SplitDocument("a.pdf", "/in/a.pdf", b"%PDF", 10, collections.Counter(parts))
    outputs = {part: [f"a_{i}.json" for i in part.page_range] for part in parts}
    assert split.add(_part(parts[2], warnings=("w",)), outputs[parts[2]], attempts=1) is None
    assert split.add(_part(parts[0]), outputs[parts[0]], attempts=2) is None
    result, recorded, attempts = split.add(_part(parts[1], warnings=("w",)), outputs[parts[1]], attempts=1)
    assert result.ok and result.key == "a.pdf" and result.page_count == 10 and result.page_range is None
    assert sorted(recorded) == sorted(f"a_{i}.json" for i in range(10))
    assert attempts == 2 and result.warnings == ("w",) and result.seconds == pytest.approx(4.5)


def test_one_failed_part_fails_the_input_and_names_its_pages():
    parts = plan_parts("a.pdf", 8, 4)
    split = SplitDocument("a.pdf", "/in/a.pdf", b"%PDF", 8, collections.Counter(parts))
    boom = Failure("a.pdf", "render", "DocumentError", "page 5: bad stream")
    assert split.add(_part(parts[1], failure=boom), [], attempts=1) is None
    result, recorded, _ = split.add(_part(parts[0]), ["a_0.json", "a_1.json"], attempts=1)
    assert not result.ok and recorded == []  # a rerun redoes the whole PDF
    assert result.failure.stage == "render"
    assert result.failure.message == "pages 4-7: page 5: bad stream"


def test_a_retried_part_counts_once():
    parts = plan_parts("a.pdf", 8, 4)
    split = SplitDocument("a.pdf", "/in/a.pdf", b"%PDF", 8, collections.Counter(parts))
    assert split.add(_part(parts[0]), ["a_0.json"], attempts=1) is None
    assert split.add(_part(parts[0]), ["a_0.json"], attempts=1) is None  # the same part twice
    result, recorded, _ = split.add(_part(parts[1]), ["a_4.json"], attempts=1)
    assert result.ok and recorded == ["a_0.json", "a_4.json"]
    assert Task("a.pdf", (0, 1, 2, 3)) == parts[0]


def test_a_rerun_runs_only_the_pages_no_part_done_covers():
    """Parts done [0-3] and [7-9] of 14 pages: the rest in runs of consecutive pages,
    each cut as a document is; the input's record lists the earlier parts' outputs too."""
    from ray_ocr.engine.manifest import DonePart
    from ray_ocr.engine.page_split import remaining_parts

    done = [DonePart((0, 1, 2, 3), [f"a_{i}.json" for i in range(4)], "s1", 14),
            DonePart((7, 8, 9), [f"a_{i}.json" for i in (7, 8, 9)], "s1", 14),
            DonePart((4, 5), ["a_4.json", "a_5.json"], "s1", 22)]  # another file's, 22 pages: not taken
    parts, kept = remaining_parts("a.pdf", 14, done, 3)
    assert [p.page_range for p in parts] == [(4, 5, 6), (10, 11), (12, 13)]
    assert kept == done[:2]
    split = SplitDocument("a.pdf", "in/a.pdf", None, 14)
    split.expect(parts, kept)
    outcome = None
    for part in parts:
        pages = tuple(PageOutput(i, "{}") for i in part.page_range)
        outcome = split.add(FileResult("a.pdf", pages=pages, page_range=part.page_range),
                            [f"a_{i}.json" for i in part.page_range], 1)
    result, outputs, _ = outcome
    assert result.ok and result.page_count == 14 and outputs == sorted(f"a_{i}.json" for i in range(14))
    assert remaining_parts("a.pdf", 14, [DonePart(tuple(range(14)), ["x"], None, 14)], 3)[0] == []


def _reader_over(folder, done_parts, pages_per_task):
    from ray_ocr.engine.reading import InputReader
    from ray_ocr.io.storage import open_folder

    reader = InputReader(open_folder(str(folder)), pages_per_task)
    reader.done_parts = done_parts
    return reader


def test_a_pdf_whose_parts_were_all_done_is_recorded_without_running(tmp_path):
    from ray_ocr.engine.manifest import DonePart
    from tests.pdfs import merge_pdfs

    pages = merge_pdfs(tmp_path / "a.pdf")
    done = [DonePart(tuple(range(0, 4)), [f"a_{i}.json" for i in range(4)], "s", pages),
            DonePart(tuple(range(4, pages)), [f"a_{i}.json" for i in range(4, pages)], "s", pages)]
    got = _reader_over(tmp_path, {"a.pdf": done}, 4).read(Task("a.pdf"))
    assert isinstance(got, FileResult) and got.ok and got.page_count == pages
    assert got.outputs == tuple(sorted(f"a_{i}.json" for i in range(pages)))


def test_a_pdf_not_split_now_runs_whole_whatever_parts_were_done(tmp_path):
    """Parts done under a smaller --pages_per_task: the PDF is one task now, run whole,
    never recorded done from those parts alone."""
    from ray_ocr.engine.manifest import DonePart
    from ray_ocr.records import InputItem
    from tests.pdfs import merge_pdfs

    pages = merge_pdfs(tmp_path / "a.pdf")
    done = {"a.pdf": [DonePart((0, 1), ["a_0.json", "a_1.json"], "s", pages)]}
    for pages_per_task in (pages, 0):
        got = _reader_over(tmp_path, dict(done), pages_per_task).read(Task("a.pdf"))
        assert isinstance(got, InputItem) and got.page_range is None, pages_per_task
