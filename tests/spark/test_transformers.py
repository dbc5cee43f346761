"""Each transformer on local Spark: schema, error rows, save/load, inside a Pipeline."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from pyspark.ml import Pipeline, PipelineModel

from sparkhtr.errors import ConfigError
from sparkhtr.spark.binary_to_image import BinaryToImage
from sparkhtr.spark.image_preprocessor import ImagePreprocessor
from sparkhtr.spark.line_segmenter import LineSegmenter
from sparkhtr.spark.pipeline import lines_table, pages_table
from sparkhtr.spark.recognizer import HandwrittenTextRecognizer
from sparkhtr.spark.schemas import LINES_TABLE, PAGES_TABLE
from tests.helpers.script_pages import page_with_insertion
from tests.helpers.tiny_model import blob_line

pytestmark = pytest.mark.spark


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def _text_page(lines: int = 3, width: int = 900) -> np.ndarray:
    page = np.full((120 + 90 * lines, width), 245, np.uint8)
    for k in range(lines):
        cv2.putText(page, "handwritten words here", (60, 120 + 90 * k), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 1.6, 20, 3)
    return page


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    (folder / "page.png").write_bytes(_png(_text_page(3)))
    frames = [Image.fromarray(_text_page(k + 1)) for k in range(2)]
    buf = io.BytesIO()
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:])
    (folder / "two pages.tif").write_bytes(buf.getvalue())
    (folder / "broken.png").write_bytes(_png(_text_page(1))[:200])
    (folder / "notes.txt").write_bytes(b"not an image at all")
    (folder / "empty.jpg").write_bytes(b"")
    return folder


@pytest.fixture(scope="module")
def files_df(spark, inputs):
    from sparkhtr.spark.files import read_binary_files

    return read_binary_files(spark, [str(inputs)])


def test_binary_to_image_one_row_per_page_and_error_rows(files_df):
    pages = BinaryToImage().transform(files_df)
    assert "content" not in pages.columns
    rows = {(r.path.rsplit("/", 1)[-1], r.page): r for r in pages.collect()}
    assert rows[("page.png", 1)].status == "ok"
    assert rows[("two pages.tif", 1)].status == "ok" and rows[("two pages.tif", 2)].status == "ok"
    for name in ("broken.png", "notes.txt", "empty.jpg"):
        row = rows[(name, 0)]
        assert row.status == "error" and row.error and row.image is None
    assert len(rows) == 6
    ok = rows[("page.png", 1)]
    assert (ok.image.height, ok.image.width, ok.image.channels) == (390, 900, 1)
    assert len(ok.content_sha256) == 64


def test_binary_to_image_fail_mode_fails_the_job(files_df):
    with pytest.raises(Exception, match="DecodeError"):
        BinaryToImage(handleInvalid="error").transform(files_df).collect()


def test_schema_checks_fail_on_the_driver(files_df):
    with pytest.raises(ConfigError, match="no column"):
        ImagePreprocessor().transform(files_df)
    with pytest.raises(ConfigError, match="handleInvalid"):
        BinaryToImage(handleInvalid="skip")


def test_preprocess_and_segment(files_df):
    pages = ImagePreprocessor().transform(BinaryToImage().transform(files_df))
    assert {"skew_degrees", "source_width", "source_height"} <= set(pages.columns)
    lines = LineSegmenter().transform(pages)
    assert "image" not in lines.columns
    rows = {(r.path.rsplit("/", 1)[-1], r.page): r for r in lines.collect()}
    assert rows[("page.png", 1)].n_lines == 3
    assert rows[("two pages.tif", 2)].n_lines == 2
    first = rows[("page.png", 1)].lines[0]
    assert first.crop.height <= 64 and first.text is None
    assert first.bbox.y0 < rows[("page.png", 1)].lines[1].bbox.y0  # reading order
    assert rows[("broken.png", 0)].lines is None
    with pytest.raises(ConfigError, match="cropAbove"):
        LineSegmenter(cropAbove=-1.0).transform(pages)


def test_words_between_lines_get_a_line_unless_switched_off_and_the_column_says_which(spark, tmp_path):
    from sparkhtr.spark.files import read_binary_files

    page, _, inserted = page_with_insertion(1.3)
    (tmp_path / "inserted.png").write_bytes(_png(page))
    pages = BinaryToImage().transform(read_binary_files(spark, [str(tmp_path / "inserted.png")]))
    (row,) = LineSegmenter(method="classical").transform(pages).collect()
    assert row.n_lines == 6 and row.segmenter == "sparkhtr-classical@3"
    assert row.lines[2].bbox.y1 <= inserted[3] + 8  # the word, between its neighbours
    segmenter = LineSegmenter(method="classical", interlinearLines=False)
    segmenter.write().overwrite().save(str(tmp_path / "segmenter"))
    (off,) = LineSegmenter.load(str(tmp_path / "segmenter")).transform(pages).collect()
    assert off.n_lines == 5 and off.segmenter == "sparkhtr-classical@3:no-interlinear"
    assert off.lines[2].bbox.y0 < inserted[3] - 10  # the word stayed in the line below


def test_a_page_scanned_sideways_is_turned_and_its_lines_mapped_back(spark, tmp_path):
    from sparkhtr.spark.files import read_binary_files

    page = _text_page(6)
    (tmp_path / "sideways.png").write_bytes(_png(np.ascontiguousarray(np.rot90(page))))  # lines run up
    files = read_binary_files(spark, [str(tmp_path / "sideways.png")])
    pages = ImagePreprocessor().transform(BinaryToImage().transform(files))
    (row,) = LineSegmenter(method="classical").transform(pages).collect()
    assert row.skew_degrees == pytest.approx(90.0, abs=0.5)
    assert (row.width, row.height) == (page.shape[0], page.shape[1])  # the scan's own size
    assert row.n_lines == 6
    assert all(b.y1 - b.y0 > b.x1 - b.x0 for b in (line.bbox for line in row.lines))  # lines run up the scan
    kept = ImagePreprocessor(autoOrient=False).transform(BinaryToImage().transform(files)).collect()[0]
    assert abs(kept.skew_degrees) <= 15.0


def test_learned_segmenter_finds_the_same_lines_and_keeps_error_rows(files_df, tmp_path):
    pages = ImagePreprocessor().transform(BinaryToImage().transform(files_df))
    segmenter = LineSegmenter(method="learned", device="cpu")
    segmenter.write().overwrite().save(str(tmp_path / "segmenter"))
    loaded = LineSegmenter.load(str(tmp_path / "segmenter"))
    assert (loaded.getMethod(), loaded.getDevice()) == ("learned", "cpu")
    assert loaded.getSegmenterModel() == "kraken-blla-int8"
    rows = {(r.path.rsplit("/", 1)[-1], r.page): r for r in loaded.transform(pages).collect()}
    assert rows[("page.png", 1)].n_lines == 3
    assert rows[("two pages.tif", 1)].n_lines == 1 and rows[("two pages.tif", 2)].n_lines == 2
    assert rows[("page.png", 1)].segmenter.startswith("sparkhtr-learned@2+kraken-blla-int8@")
    assert rows[("broken.png", 0)].status == "error" and rows[("broken.png", 0)].lines is None
    with pytest.raises(ConfigError, match="not a baseline-segmenter"):
        LineSegmenter(method="learned", segmenterModel="sparkhtr-latin-crnn").transform(pages)
    with pytest.raises(ConfigError, match="method must be one of"):
        LineSegmenter(method="neural").transform(pages)


def test_recognizer_with_tiny_model_in_lines_mode(spark, tmp_path, tiny_model_dir):
    for k in (1, 3, 2):
        (tmp_path / f"line{k}.png").write_bytes(_png(blob_line(k)))
    files = spark.read.format("binaryFile").load(str(tmp_path))
    stages = [BinaryToImage(), ImagePreprocessor(deskew=False, normalizeContrast=False),
              LineSegmenter(method="whole"), HandwrittenTextRecognizer(model=str(tiny_model_dir), device="cpu")]
    out = Pipeline(stages=stages).fit(files).transform(files)
    got = {r.path.rsplit("/", 1)[-1]: (r.lines[0].text, r.lines[0].crop, r.recognizer) for r in out.collect()}
    assert {name: text for name, (text, _, _) in got.items()} == {"line1.png": "a", "line2.png": "aa",
                                                                  "line3.png": "aaa"}
    assert all(crop is None and ref == "tiny-ctc@0.0.1" for _, crop, ref in got.values())


def test_recognizer_beam_decoder_in_spark(spark, tmp_path):
    from tests.helpers.tiny_model import add_language_model, make_tiny_model_dir

    model_dir = add_language_model(make_tiny_model_dir(tmp_path / "model"), ["a", "aa", "aaa"])
    images = tmp_path / "images"
    images.mkdir()
    for k in (1, 3):
        (images / f"line{k}.png").write_bytes(_png(blob_line(k)))
    files = spark.read.format("binaryFile").load(str(images))
    recognizer = HandwrittenTextRecognizer(model=str(model_dir), device="cpu", decoder="beam")
    stages = [BinaryToImage(), ImagePreprocessor(deskew=False, normalizeContrast=False),
              LineSegmenter(method="whole"), recognizer]
    model = Pipeline(stages=stages).fit(files)
    model.write().overwrite().save(str(tmp_path / "pipeline"))
    loaded = PipelineModel.load(str(tmp_path / "pipeline"))
    assert loaded.stages[-1].getDecoder() == "beam"
    got = {r.path.rsplit("/", 1)[-1]: (r.lines[0].text, r.recognizer) for r in loaded.transform(files).collect()}
    assert got == {"line1.png": ("a", "tiny-ctc@0.0.1+charlm"), "line3.png": ("aaa", "tiny-ctc@0.0.1+charlm")}
    with pytest.raises(ConfigError, match="decoder"):
        HandwrittenTextRecognizer(model=str(model_dir), decoder="viterbi").transform(
            Pipeline(stages=stages[:3]).fit(files).transform(files))


def test_pipeline_save_load_round_trip(spark, files_df, tmp_path, tiny_model_dir):
    stages = [BinaryToImage(pdfDpi=120, maxPages=50), ImagePreprocessor(maxSkew=8.0, autoOrient=False),
              LineSegmenter(cropHeight=48, cropAbove=1.4),
              HandwrittenTextRecognizer(model=str(tiny_model_dir), device="cpu", batchLines=8)]
    model = Pipeline(stages=stages).fit(files_df)
    model.write().overwrite().save(str(tmp_path / "pipeline"))
    loaded = PipelineModel.load(str(tmp_path / "pipeline"))
    b2i, pre, seg, rec = loaded.stages
    assert (b2i.getPdfDpi(), b2i.getMaxPages(), pre.getMaxSkew(), seg.getCropHeight(), rec.getBatchLines()) == (
        120, 50, 8.0, 48, 8)
    assert pre.getAutoOrient() is False
    assert (seg.getCropAbove(), seg.getCropBelow()) == (1.4, 0.7)
    assert rec.getModel() == str(tiny_model_dir)
    first = sorted((r.path, r.page, r.status, r.n_lines) for r in model.transform(files_df).collect())
    second = sorted((r.path, r.page, r.status, r.n_lines) for r in loaded.transform(files_df).collect())
    assert first == second


def test_tables_have_the_documented_schemas(files_df, tiny_model_dir):
    stages = [BinaryToImage(), ImagePreprocessor(), LineSegmenter(),
              HandwrittenTextRecognizer(model=str(tiny_model_dir), device="cpu")]
    recognized = Pipeline(stages=stages).fit(files_df).transform(files_df).cache()
    pages = pages_table(recognized, "run-1")
    lines = lines_table(recognized, "run-1")
    assert [f.name for f in pages.schema.fields] == PAGES_TABLE.names
    assert [f.name for f in lines.schema.fields] == LINES_TABLE.names
    page_rows = pages.collect()
    assert len(page_rows) == 6
    n_lines = sum(r.n_lines or 0 for r in page_rows)
    assert n_lines == lines.count() == 6
    png = next(r for r in page_rows if r.path.endswith("page.png"))
    assert png.text.count("\n") == 2 and png.source_length > 0 and png.recognizer == "tiny-ctc@0.0.1"
    errors = [r for r in page_rows if r.status == "error"]
    assert len(errors) == 3 and all(r.n_lines is None and r.text is None for r in errors)
