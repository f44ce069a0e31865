"""--save markdown's pieces without Paddle: images named after their content (links
follow), a document joined from its pages, and the offline font message."""

import pytest

from ray_ocr.models.markdown import join_pages, name_images_by_content


def test_images_are_renamed_by_content_and_links_follow(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "img_in_image_box_1_2_3_4.jpg").write_bytes(b"picture one")
    (tmp_path / "imgs" / "img_in_image_box_1_2_3_45.jpg").write_bytes(b"picture two")
    (tmp_path / "x.md").write_text('<img src="imgs/img_in_image_box_1_2_3_4.jpg" />\n'
                                   '<img src="imgs/img_in_image_box_1_2_3_45.jpg" />\n', encoding="utf-8")
    renamed = name_images_by_content(tmp_path)
    assert set(renamed) == {"imgs/img_in_image_box_1_2_3_4.jpg", "imgs/img_in_image_box_1_2_3_45.jpg"}
    text = (tmp_path / "x.md").read_text(encoding="utf-8")
    for old, new in renamed.items():
        assert new.startswith(old[:-4] + "_") and len(new) == len(old) + 9  # _<8 hex>
        assert f'src="{new}"' in text and (tmp_path / new).is_file()
    # The same content gets the same name (a rerun, or the same picture on two pages).
    again = tmp_path / "again"
    (again / "imgs").mkdir(parents=True)
    (again / "imgs" / "img_in_image_box_1_2_3_4.jpg").write_bytes(b"picture one")
    assert name_images_by_content(again) == {k: v for k, v in renamed.items() if k.endswith("_4.jpg")}


def test_a_pipeline_of_ones_own_joins_pages_as_paragraphs():
    pieces = [{"markdown_texts": "# one", "page_continuation_flags": [True, True]},
              {"markdown_texts": "two", "page_continuation_flags": [True, True]}]
    assert join_pages("MyPipeline", pieces) == "\n\n# one\n\ntwo"


def test_a_font_that_cannot_be_fetched_fails_with_the_fix():
    from ray_ocr.models.runner import _save_offline

    def saver(folder):
        raise ConnectionError("Failed to download https://example.invalid/PaddleX3.0/fonts/simfang.ttf")

    with pytest.raises(RuntimeError) as err:
        _save_offline(saver, "/tmp", "img")
    message = str(err.value)
    assert "\n" not in message and "--save img needs a font" in message
    assert "ray-ocr[models]" in message and "PADDLE_PDX_LOCAL_FONT_FILE_PATH" in message

    def other(folder):
        raise ValueError("something else")

    with pytest.raises(ValueError, match="something else"):
        _save_offline(other, "/tmp", "img")


def test_query_is_required_by_doc_understanding_and_refused_elsewhere(tmp_path):
    from ray_ocr.config import RunConfig
    from ray_ocr.errors import UsageError

    with pytest.raises(UsageError, match="DocUnderstanding needs --query TEXT"):
        RunConfig.build(pipeline="DocUnderstanding", input_dir=str(tmp_path))
    with pytest.raises(UsageError, match="--query: the OCR pipeline takes no query"):
        RunConfig.build(pipeline="OCR", input_dir=str(tmp_path), query="what?")
    assert RunConfig.build(pipeline="doc_understanding", input_dir=str(tmp_path), query="what?").query == "what?"
    assert RunConfig.build(pipeline="my.module:Asker", input_dir=str(tmp_path), query="what?").query == "what?"


def test_the_bundled_font_is_seeded_under_the_names_paddlex_fetches(tmp_path, monkeypatch):
    from ray_ocr.models import model_cache

    font = tmp_path / "NotoSansCJKtc-Regular.otf"
    font.write_bytes(b"OTTO font")
    monkeypatch.setattr(model_cache, "bundled_font", lambda: font)
    monkeypatch.setenv("PADDLE_PDX_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "cache" / "fonts").mkdir(parents=True)
    (tmp_path / "cache" / "fonts" / "simfang.ttf").write_bytes(b"a real download")  # left alone
    assert model_cache.seed_bundled_fonts() == [n for n in model_cache.CJK_FONT_NAMES if n != "simfang.ttf"]
    assert (tmp_path / "cache" / "fonts" / "PingFang-SC-Regular.ttf").read_bytes() == b"OTTO font"
    assert (tmp_path / "cache" / "fonts" / "simfang.ttf").read_bytes() == b"a real download"
    assert model_cache.seed_bundled_fonts() == []  # once per node


def test_the_models_extra_brings_the_font():
    from ray_ocr.models.model_cache import bundled_font

    font = bundled_font()
    assert font is not None and font.stat().st_size > 10_000_000 and font.read_bytes()[:4] == b"OTTO"


def test_a_document_markdown_waits_for_every_page_in_any_order(tmp_path):
    from ray_ocr.engine.writing import DocumentMarkdown
    from ray_ocr.io.storage import LocalFolder
    from ray_ocr.records import Failure, FileResult, PageOutput

    def part(key, *pages):
        return FileResult(key=key, pages=tuple(PageOutput(i, "{}", (), {"markdown_texts": f"page {i}",
                                                                          "page_continuation_flags": [True, True]})
                                               for i in pages), page_range=pages)

    documents = DocumentMarkdown(LocalFolder(str(tmp_path)), {"a.pdf": "sub/a", "b.pdf": "b"}, "MyPipeline")
    documents.add(part("a.pdf", 2, 3))  # the second part first
    documents.add(part("a.pdf", 0, 1))
    whole = FileResult(key="a.pdf", page_count=4)
    result, outputs = documents.finish(whole, ["sub/a_0.json"])
    assert result is whole and outputs == ["sub/a_0.json", "sub/a.md"]
    assert (tmp_path / "sub" / "a.md").read_text() == "\n\npage 0\n\npage 1\n\npage 2\n\npage 3"

    documents.add(part("b.pdf", 0))
    failed = FileResult(key="b.pdf", page_count=2,
                        failure=Failure("b.pdf", "predict", "RuntimeError", "pages 1-1: boom"))
    assert documents.finish(failed, []) == (failed, [])
    assert not (tmp_path / "b.md").exists() and documents.pieces == {}
