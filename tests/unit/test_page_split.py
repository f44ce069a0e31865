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
