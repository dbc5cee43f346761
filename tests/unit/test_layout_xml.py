"""ALTO / PAGE XML: schema validity, round trips, escaping, foreign files, safe export names, ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from sparkhtr.core.types import BBox
from sparkhtr.evaluation import format_page_report, score_page, summarize_pages, text_normalizer
from sparkhtr.io.export import MAX_STEM_BYTES, export_name, safe_stem
from sparkhtr.io.ground_truth import GroundTruthPage, ground_truth_key, load_ground_truth, match_ground_truth
from sparkhtr.io.layout import LayoutLine, LayoutPage, clean_text
from sparkhtr.io.layout_xml import LayoutXmlError, load_schema, read_layout, to_alto, to_page_xml

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT.parent / "shared" / "schemas"
SAMPLES = ROOT / "samples"
WRITERS = {"alto": to_alto, "page": to_page_xml}

HOSTILE_TEXT = "a < b && c > d \"quoted\" 'single' ]]> <!-- x --> &amp; \x00\x01\x08\x0b\x1f\x7f\ud800\ufffe end"


@pytest.fixture(scope="module")
def schemas():
    if not (SCHEMAS / "alto-4-4.xsd").is_file() or not (SCHEMAS / "pagecontent-2019-07-15.xsd").is_file():
        pytest.skip(f"XSDs not found at {SCHEMAS}")
    return {kind: load_schema(kind, SCHEMAS) for kind in WRITERS}


def assert_valid(schema, data: bytes) -> None:
    assert schema.validate(etree.fromstring(data)), schema.error_log


def sample_page() -> LayoutPage:
    return LayoutPage("s3://bucket/scans/lettre d'été & co.tif", page=2, width=1000, height=800, lines=(
        LayoutLine("Dear Sir, — « merci » £3 œuvre", polygon=((100, 100), (600, 95), (605, 150), (98, 152)),
                   baseline=((100, 140), (600, 138)), bbox=BBox(98, 95, 605, 152), confidence=0.875),
        LayoutLine(HOSTILE_TEXT, polygon=((100, 200), (700, 200), (700, 250), (100, 250)),
                   baseline=((100, 240), (700, 240)), confidence=0.5),
        LayoutLine("no geometry at all"),
        LayoutLine("", bbox=BBox(10, 300, 20, 320), confidence=0.0),
        LayoutLine("off the page", polygon=((-20, 700), (1200, 700), (1200, 900), (-20, 900)), confidence=1.7),
    ))


@pytest.mark.parametrize("kind", ["alto", "page"])
def test_export_validates_against_the_official_xsd(schemas, kind):
    assert_valid(schemas[kind], WRITERS[kind](sample_page(), settings="model x") if kind == "alto"
                 else WRITERS[kind](sample_page(), comments="line\nbreak \x00"))
    assert_valid(schemas[kind], WRITERS[kind](LayoutPage("empty.png", width=10, height=10)))
    assert_valid(schemas[kind], WRITERS[kind](LayoutPage("unknown-size.png", lines=(LayoutLine("x"),))))


@pytest.mark.parametrize("kind", ["alto", "page"])
def test_round_trip_keeps_text_geometry_and_order(kind):
    page = sample_page()
    (back,) = read_layout(WRITERS[kind](page), "f.xml")
    assert back.image_name == "lettre d'été & co.tif" and (back.width, back.height) == (1000, 800)
    assert len(back.lines) == len(page.lines)
    first = back.lines[0]
    assert first.text == page.lines[0].text
    assert first.polygon == page.lines[0].polygon and first.baseline == page.lines[0].baseline
    assert first.confidence == pytest.approx(0.875)
    assert back.lines[2].text == "no geometry at all" and back.lines[3].text == ""
    assert back.lines[3].box() == BBox(10, 300, 20, 320)
    # clipped to the page, confidence to [0, 1]
    assert back.lines[4].box() == BBox(0, 700, 1000, 800) and back.lines[4].confidence == 1.0
    assert [ln.text for ln in back.lines[2:]] == ["no geometry at all", "", "off the page"]
    if kind == "alto":
        assert back.page == 2 and back.lines[0].bbox == BBox(98, 95, 605, 152)


@pytest.mark.parametrize("kind", ["alto", "page"])
def test_markup_is_escaped_and_xml_illegal_characters_are_dropped(kind):
    data = WRITERS[kind](sample_page())
    assert b"\x00" not in data and b"<!-- x -->" not in data
    (back,) = read_layout(data)
    expected = clean_text(HOSTILE_TEXT)
    assert expected == "a < b && c > d \"quoted\" 'single' ]]> <!-- x --> &amp;   end"
    # ALTO keeps words (one String each), so whitespace runs read back as one space
    assert back.lines[1].text == (" ".join(expected.split()) if kind == "alto" else expected)


def test_line_breaks_inside_a_line_become_spaces():
    page = LayoutPage("a.png", lines=(LayoutLine("two\nlines\r\tand a tab"),))
    for write in WRITERS.values():
        assert read_layout(write(page))[0].lines[0].text == "two lines and a tab"


def test_not_layout_xml_is_a_clear_error():
    with pytest.raises(LayoutXmlError, match="neither ALTO nor PAGE"):
        read_layout(b"<html><body/></html>", "x.xml")
    with pytest.raises(LayoutXmlError, match="not well-formed"):
        read_layout(b"<PcGts><Page", "y.xml")


def test_entities_are_never_expanded(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    data = f"""<?xml version="1.0"?>
<!DOCTYPE PcGts [<!ENTITY leak SYSTEM "file://{secret}">]>
<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"><Metadata/>
<Page imageFilename="a.png" imageWidth="10" imageHeight="10"><TextRegion id="r"><Coords points="0,0 1,1"/>
<TextLine id="l"><Coords points="0,0 1,1"/><TextEquiv><Unicode>x&leak;y</Unicode></TextEquiv></TextLine>
</TextRegion></Page></PcGts>""".encode()
    (page,) = read_layout(data)
    assert "SECRET" not in page.lines[0].text


FOREIGN_PAGE = b"""<?xml version="1.0" encoding="UTF-8"?>
<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15">
 <Metadata><Creator>Transkribus</Creator><Created>2020-01-01T00:00:00</Created>
  <LastChange>2020-01-01T00:00:00</LastChange></Metadata>
 <Page imageFilename="C:\\\\scans\\\\0001.jpg" imageWidth="500" imageHeight="400">
  <ReadingOrder><OrderedGroup id="ro">
   <RegionRefIndexed index="1" regionRef="top"/><RegionRefIndexed index="0" regionRef="bottom"/>
  </OrderedGroup></ReadingOrder>
  <TextRegion id="top"><Coords points="0,0 500,0 500,100 0,100"/>
   <TextLine id="t2" custom="readingOrder {index:1;}"><Coords points="0,50 500,50 500,90 0,90"/>
    <TextEquiv><Unicode>top second</Unicode></TextEquiv></TextLine>
   <TextLine id="t1" custom="readingOrder {index:0;}"><Coords points="0,0 500,0 500,40 0,40"/>
    <TextEquiv index="1"><Unicode>alternative</Unicode></TextEquiv>
    <TextEquiv index="0" conf="0.7"><Unicode>top first</Unicode></TextEquiv></TextLine>
  </TextRegion>
  <TextRegion id="bottom"><Coords points="0,200 500,200 500,300 0,300"/>
   <TextLine id="b1"><Coords points="0,200 500,200 500,240 0,240"/><Baseline points="0,235 500,235"/>
    <Word id="w1"><Coords points="0,200 10,200 10,240"/><TextEquiv><Unicode>words</Unicode></TextEquiv></Word>
    <Word id="w2"><Coords points="0,200 10,200 10,240"/><TextEquiv><Unicode>only</Unicode></TextEquiv></Word>
   </TextLine>
  </TextRegion>
 </Page>
</PcGts>"""

FOREIGN_ALTO = b"""<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v2#">
 <Description><MeasurementUnit>pixel</MeasurementUnit>
  <sourceImageInformation><fileName>/data/book/00057.jp2</fileName></sourceImageInformation></Description>
 <Layout><Page ID="p" PHYSICAL_IMG_NR="57" WIDTH="800" HEIGHT="600"><PrintSpace>
  <TextBlock ID="b"><TextLine ID="l1" HPOS="10" VPOS="20" WIDTH="300" HEIGHT="30" BASELINE="45">
   <String CONTENT="hyphen" WC="0.9"/><SP/><String CONTENT="ated" WC="0.6"/><HYP CONTENT="-"/>
  </TextLine></TextBlock></PrintSpace></Page></Layout>
</alto>"""


def test_reads_foreign_page_xml_in_reading_order():
    (page,) = read_layout(FOREIGN_PAGE, "gt/0001.xml")
    assert page.image_name == "0001.jpg" and page.source == "gt/0001.xml"
    assert [ln.text for ln in page.lines] == ["words only", "top first", "top second"]
    assert page.lines[1].confidence == pytest.approx(0.7)
    assert page.lines[0].baseline == ((0.0, 235.0), (500.0, 235.0))


def test_reads_old_alto_with_a_single_number_baseline():
    (page,) = read_layout(FOREIGN_ALTO, "book/00057.xml")
    assert page.image_name == "00057.jp2" and page.page == 57
    (line,) = page.lines
    assert line.text == "hyphen ated-" and line.confidence == pytest.approx(0.6)
    assert line.bbox == BBox(10, 20, 310, 50) and line.baseline == ((10.0, 45.0), (310.0, 45.0))
    # a single-page ALTO file is page 1 of its image, whatever its PHYSICAL_IMG_NR says
    assert ground_truth_key(page, "00057.xml", 1) == ("00057.jp2", 1)


# ---------------------------------------------------------------- export names

HOSTILE_PATHS = [
    "../../etc/passwd", "/etc/passwd", "..", ".", "/", "", "s3://bucket/a/b.png", "s3://bucket/", "file:///x/y%2F..",
    "C:\\Windows\\System32\\..\\evil.png", "a/b\nc.png", "nul\x00byte.png", "x" * 5000 + ".png", "é" * 400,
    "CON.png", "aux", " .. ", ".hidden", "-rf.png", "~user.png", "a\u202egnp.exe", "dir/\u200b", "%2e%2e/%2e%2e",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_export_names_never_leave_the_folder(tmp_path, path):
    for disambiguate in (False, True):
        name = export_name(path, 3, "xml", disambiguate=disambiguate)
        assert "/" not in name and "\\" not in name and "\x00" not in name and "\n" not in name
        assert not name.startswith((".", "-", "~")) and len(name.encode()) <= 255
        assert name.endswith(".p3.xml")
        target = (tmp_path / name).resolve()
        assert target.parent == tmp_path.resolve()
        target.write_text("ok")  # the file system accepts it
        assert target.read_text() == "ok"


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=300))
def test_any_path_gives_one_plain_component(path):
    stem = safe_stem(path)
    assert stem and stem not in (".", "..") and stem == Path(stem).name
    assert len(stem.encode()) <= MAX_STEM_BYTES + 1 and "~" not in stem
    assert all(c.isalnum() or c in "_.-" for c in stem)


def test_colliding_names_are_told_apart_by_a_hash_of_the_full_path():
    a = export_name("s3://b/one/scan.png", 1, "xml", disambiguate=True)
    b = export_name("s3://b/two/scan.png", 1, "xml", disambiguate=True)
    assert a != b and a.startswith("scan.png~") and export_name("s3://b/one/scan.png", 1, "xml") == "scan.png.p1.xml"


# ---------------------------------------------------------------- ground truth and scores


def test_ground_truth_keys_and_matching():
    assert ground_truth_key(LayoutPage("x/scan.tif"), "whatever.p3.xml", 1) == ("scan.tif", 3)
    assert ground_truth_key(LayoutPage(""), "0005.XML", 1) == ("0005", 1)
    assert ground_truth_key(LayoutPage("b.tif", page=2), "b.xml", 2) == ("b.tif", 2)
    gts = [GroundTruthPage("scan.jpg", 1, "", LayoutPage("scan.jpg")),  # matched by stem
           GroundTruthPage("0001.jpg", 1, "vol2", LayoutPage("0001.jpg")),  # folder decides
           GroundTruthPage("0002.jpg", 1, "", LayoutPage("0002.jpg")),  # ambiguous
           GroundTruthPage("missing.png", 1, "", LayoutPage("missing.png"))]
    recognised = [("s3://b/scan.png", 1), ("s3://b/vol1/0001.jpg", 1), ("s3://b/vol2/0001.jpg", 1),
                  ("s3://b/vol1/0002.jpg", 1), ("s3://b/vol2/0002.jpg", 1)]
    matches, ambiguous = match_ground_truth(gts, recognised)
    assert matches == ["s3://b/scan.png", "s3://b/vol2/0001.jpg", None, None]
    assert ambiguous == [2]


def test_scores_per_page_folder_and_overall():
    normalize = text_normalizer()
    ref = LayoutPage("a.png", source="gt/a.xml", lines=(LayoutLine("the cat sat", bbox=BBox(0, 0, 100, 20)),
                                                         LayoutLine("on the mat", bbox=BBox(0, 30, 100, 50))))
    hyp = LayoutPage("file:/d/a.png", lines=(LayoutLine("the  cat sat", bbox=BBox(0, 1, 100, 21)),
                                              LayoutLine("on a mat", bbox=BBox(300, 30, 400, 50))))
    score = score_page(ref, hyp, normalize)
    assert (score.char_errors, score.chars) == (3, 22) and (score.word_errors, score.words) == (1, 6)
    assert (score.matched_lines, score.line_char_errors, score.line_chars) == (1, 0, 11)
    error_page = score_page(ref, None, normalize, status="error")
    assert error_page.char_errors == error_page.chars == 22
    report = summarize_pages([score, error_page])
    assert report["all"]["cer"] == pytest.approx(25 / 44) and set(report["folders"]) == {"file:/d", ""}
    text = format_page_report({**report, "unmatched": ["gt/x.xml (x.png p1)"], "ambiguous": [], "skipped": []})
    assert "a.png p1 [error]" in text and "without a recognised page: 1" in text


def test_sample_ground_truth_xml_matches_the_jsonl(schemas):
    rows = [json.loads(line) for line in (SAMPLES / "ground_truth.jsonl").read_text(encoding="utf-8").splitlines()]
    pages, skipped = load_ground_truth(SAMPLES / "ground_truth")
    assert not skipped and len(pages) == len(rows)
    by_key = {(p.image, p.page): p for p in pages}
    for row in rows:
        gt = by_key[(Path(row["file"]).name, row["page"])]
        assert [ln.text for ln in gt.layout.lines] == [ln["text"] for ln in row["lines"]]
        assert gt.layout.lines[0].box() is not None
        assert_valid(schemas["page"], Path(gt.layout.source).read_bytes())
