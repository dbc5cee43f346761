"""ALTO 4.4 and PAGE XML 2019-07-15: write a :class:`~sparkhtr.io.layout.LayoutPage`, read ALTO / PAGE files.

Writing (one page per file):

* ALTO: ``Description`` (pixel units, source file name, processing step),
  ``ReadingOrder`` (one ordered group of the lines), ``Layout/Page/PrintSpace/TextBlock``
  with one ``TextLine`` per line: box (``HPOS``/``VPOS``/``WIDTH``/``HEIGHT``),
  ``BASELINE`` points, ``Shape/Polygon``, and a ``String`` per word (``CONTENT``, ``WC``
  = the line confidence) separated by ``SP``. Runs of whitespace therefore read back
  as one space; an empty line is one empty ``String``.
* PAGE: ``Metadata``, ``Page`` with a ``ReadingOrder`` over one ``TextRegion`` (its
  ``Coords`` the box around the lines) holding one ``TextLine`` per line
  (``@index`` = reading order): ``Coords``, ``Baseline`` (when it has two points or
  more), ``TextEquiv/@conf`` + ``Unicode``. Coordinates are integers clipped to the
  page, as PAGE's point pattern requires.

Text is escaped by lxml; characters XML 1.0 cannot hold are dropped and line breaks
inside a line become spaces (:func:`~sparkhtr.io.layout.clean_text`). Both writers
share one walker (:func:`_walk`) over the page's lines.

Reading accepts any ALTO (v2–v4) or PAGE (2013–2019) namespace, never fetches DTDs or
entities, and returns pages with lines in reading order: PAGE regions in the order of
``ReadingOrder`` (then the rest in document order), lines by ``@index`` when every
line has one (or Transkribus' ``custom="readingOrder {index:N;}"``), else in document
order; ALTO lines in document order. ALTO geometry is read in the file's units.

>>> page = LayoutPage("scans/a&b.png", width=200, height=100,
...                   lines=(LayoutLine("x < y & \\"z\\"", bbox=BBox(10, 10, 190, 40), confidence=0.9),))
>>> [p.lines[0].text for p in read_layout(to_page_xml(page))]
['x < y & "z"']
>>> read_layout(to_alto(page))[0].lines[0].box()
BBox(x0=10, y0=10, x1=190, y1=40)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from lxml import etree

from sparkhtr import __version__
from sparkhtr.core.types import BBox, Point
from sparkhtr.errors import SparkHtrError
from sparkhtr.io.layout import LayoutLine, LayoutPage, box_polygon, clean_text, points_box

__all__ = ["ALTO_NS", "FORMATS", "PAGE_NS", "load_schema", "read_layout", "to_alto", "to_page_xml"]

ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
ALTO_XSD = "http://www.loc.gov/standards/alto/v4/alto-4-4.xsd"
PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
PAGE_XSD = f"{PAGE_NS}/pagecontent.xsd"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
FORMATS = ("alto", "page")
SCHEMA_FILES = {"alto": "alto-4-4.xsd", "page": "pagecontent-2019-07-15.xsd"}
_CREATOR = f"sparkhtr {__version__}"


class LayoutXmlError(SparkHtrError):
    """A file is not ALTO or PAGE XML, or cannot be parsed."""


# ---------------------------------------------------------------- writing


@dataclass(frozen=True)
class _Line:
    """A line as both writers emit it: cleaned text, integer geometry inside the page."""

    number: int  # 1-based reading order
    text: str
    box: BBox
    polygon: tuple[tuple[int, int], ...]  # at least 3 points
    baseline: tuple[tuple[int, int], ...]  # empty or at least 2 points
    confidence: float | None


def _clip_point(x: float, y: float, width: int, height: int) -> tuple[int, int]:
    """A rounded point inside ``[0, width]×[0, height]`` (no upper bound where the size is unknown)."""
    px, py = max(0, round(x)), max(0, round(y))
    return (min(px, width) if width > 0 else px), (min(py, height) if height > 0 else py)


def _clip(points: tuple[Point, ...], width: int, height: int) -> tuple[tuple[int, int], ...]:
    """Rounded points inside the page, consecutive repeats dropped."""
    out: list[tuple[int, int]] = []
    for x, y in points:
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        point = _clip_point(x, y, width, height)
        if not out or out[-1] != point:
            out.append(point)
    return tuple(out)


def _walk(page: LayoutPage) -> Iterator[_Line]:
    """The page's lines, ready to serialise (shared by the ALTO and PAGE writers)."""
    for number, line in enumerate(page.lines, start=1):
        box = line.box() or BBox(0, 0, 0, 0)
        box = BBox(*_clip_point(box.x0, box.y0, page.width, page.height),
                   *_clip_point(box.x1, box.y1, page.width, page.height))
        polygon = _clip(line.polygon, page.width, page.height)
        if len(polygon) < 3:
            polygon = tuple((int(x), int(y)) for x, y in box_polygon(box))
        baseline = _clip(line.baseline, page.width, page.height)
        confidence = line.confidence
        if confidence is not None:
            confidence = min(1.0, max(0.0, float(confidence))) if math.isfinite(confidence) else None
        yield _Line(number, clean_text(line.text), box, polygon, baseline if len(baseline) >= 2 else (), confidence)


def _points(points: tuple[tuple[int, int], ...]) -> str:
    return " ".join(f"{x},{y}" for x, y in points)


def _timestamp(created: datetime | None) -> str:
    """UTC ``xsd:dateTime``; a naive ``created`` is local time (as PySpark returns timestamps)."""
    when = created or datetime.now(timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _confidence(value: float) -> str:
    return f"{value:.4f}"


def _root(ns: str, tag: str, xsd: str) -> etree._Element:
    root = etree.Element(f"{{{ns}}}{tag}", nsmap={None: ns, "xsi": XSI_NS})
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{ns} {xsd}")
    return root


def _lines_box(lines: list[_Line]) -> BBox:
    """The box around every line's polygon and box (the block / region holding them)."""
    return points_box(pt for line in lines for pt in (*line.polygon, *box_polygon(line.box))) or BBox(0, 0, 0, 0)


def to_alto(page: LayoutPage, *, creator: str | None = None, created: datetime | None = None,
            settings: str | None = None) -> bytes:
    """ALTO 4.4 XML bytes of ``page`` (``creator`` names the software, ``settings`` e.g. the model)."""
    a = f"{{{ALTO_NS}}}"
    root = _root(ALTO_NS, "alto", ALTO_XSD)
    description = etree.SubElement(root, a + "Description")
    etree.SubElement(description, a + "MeasurementUnit").text = "pixel"
    source = etree.SubElement(description, a + "sourceImageInformation")
    etree.SubElement(source, a + "fileName").text = clean_text(page.image_name)
    step = etree.SubElement(description, a + "Processing", ID="proc_1")
    etree.SubElement(step, a + "processingCategory").text = "contentGeneration"
    etree.SubElement(step, a + "processingDateTime").text = _timestamp(created)
    if settings:
        etree.SubElement(step, a + "processingStepSettings").text = clean_text(settings)
    software = etree.SubElement(step, a + "processingSoftware")
    name, _, version = (creator or _CREATOR).partition(" ")
    etree.SubElement(software, a + "softwareName").text = clean_text(name)
    if version:
        etree.SubElement(software, a + "softwareVersion").text = clean_text(version)
    lines = list(_walk(page))
    if lines:
        order = etree.SubElement(etree.SubElement(root, a + "ReadingOrder"), a + "OrderedGroup", ID="ro_1")
        for line in lines:
            etree.SubElement(order, a + "ElementRef", ID=f"ro_1_{line.number}", REF=f"line_{line.number}")
    layout = etree.SubElement(root, a + "Layout")
    page_el = etree.SubElement(layout, a + "Page", ID=f"page_{page.page}", PHYSICAL_IMG_NR=str(page.page))
    if page.width > 0 and page.height > 0:
        page_el.set("WIDTH", str(page.width))
        page_el.set("HEIGHT", str(page.height))
    space = etree.SubElement(page_el, a + "PrintSpace")
    if not lines:
        return _serialise(root)
    block = etree.SubElement(space, a + "TextBlock", ID="block_1")
    _set_box(block, _lines_box(lines))
    for line in lines:
        el = etree.SubElement(block, a + "TextLine", ID=f"line_{line.number}")
        _set_box(el, line.box)
        if line.baseline:
            el.set("BASELINE", _points(line.baseline))
        etree.SubElement(etree.SubElement(el, a + "Shape"), a + "Polygon", POINTS=_points(line.polygon))
        for k, word in enumerate(line.text.split() or [""], start=1):
            if k > 1:
                etree.SubElement(el, a + "SP")
            string = etree.SubElement(el, a + "String", ID=f"line_{line.number}_w{k}", CONTENT=word)
            if line.confidence is not None:
                string.set("WC", _confidence(line.confidence))
    return _serialise(root)


def _set_box(el: etree._Element, box: BBox | None) -> None:
    if box is not None:
        for key, value in (("HPOS", box.x0), ("VPOS", box.y0), ("WIDTH", box.width), ("HEIGHT", box.height)):
            el.set(key, str(value))


def to_page_xml(page: LayoutPage, *, creator: str | None = None, created: datetime | None = None,
                comments: str | None = None) -> bytes:
    """PAGE XML (2019-07-15) bytes of ``page`` (``comments`` goes to ``Metadata/Comments``)."""
    p = f"{{{PAGE_NS}}}"
    root = _root(PAGE_NS, "PcGts", PAGE_XSD)
    metadata = etree.SubElement(root, p + "Metadata")
    etree.SubElement(metadata, p + "Creator").text = clean_text(creator or _CREATOR)
    stamp = _timestamp(created)
    etree.SubElement(metadata, p + "Created").text = stamp
    etree.SubElement(metadata, p + "LastChange").text = stamp
    if comments:
        etree.SubElement(metadata, p + "Comments").text = clean_text(comments, single_line=False)
    page_el = etree.SubElement(root, p + "Page", imageFilename=clean_text(page.image_name),
                               imageWidth=str(max(page.width, 0)), imageHeight=str(max(page.height, 0)))
    lines = list(_walk(page))
    if not lines:
        return _serialise(root)
    group = etree.SubElement(etree.SubElement(page_el, p + "ReadingOrder"), p + "OrderedGroup", id="ro_1",
                             caption="Regions reading order")
    etree.SubElement(group, p + "RegionRefIndexed", index="0", regionRef="r1")
    region = etree.SubElement(page_el, p + "TextRegion", id="r1", type="paragraph")
    etree.SubElement(region, p + "Coords", points=_points(box_polygon(_lines_box(lines))))  # type: ignore[arg-type]
    for line in lines:
        el = etree.SubElement(region, p + "TextLine", id=f"r1l{line.number}", index=str(line.number - 1),
                              custom=f"readingOrder {{index:{line.number - 1};}}")
        etree.SubElement(el, p + "Coords", points=_points(line.polygon))
        if line.baseline:
            etree.SubElement(el, p + "Baseline", points=_points(line.baseline))
        equiv = etree.SubElement(el, p + "TextEquiv")
        if line.confidence is not None:
            equiv.set("conf", _confidence(line.confidence))
        etree.SubElement(equiv, p + "Unicode").text = line.text
    return _serialise(root)


# ---------------------------------------------------------------- reading

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_CUSTOM_INDEX = re.compile(r"readingOrder\s*\{[^}]*index\s*:\s*(\d+)")
_RO_REFS = ("RegionRef", "RegionRefIndexed")
_RO_GROUPS = ("OrderedGroup", "UnorderedGroup", "OrderedGroupIndexed", "UnorderedGroupIndexed")


def _parser() -> etree.XMLParser:
    # no DTDs, no entity expansion, no network: ground truth may come from anywhere
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True)


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _parse_points(text: str | None) -> tuple[Point, ...]:
    """``"x1,y1 x2,y2"`` or ``"x1 y1 x2 y2"`` → points (an odd last number is dropped)."""
    numbers = [float(n) for n in _NUMBER.findall(text or "")]
    return tuple(zip(numbers[0::2], numbers[1::2], strict=False))


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def read_layout(data: bytes, source: str | None = None) -> list[LayoutPage]:
    """The pages of an ALTO or PAGE XML document (bytes), lines in reading order.

    ``source`` (the XML file's path) is recorded on the pages and used as the image
    name when the file names none. Raises :class:`LayoutXmlError` for other XML.
    """
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise LayoutXmlError(f"{source or 'document'}: not well-formed XML: {exc}") from exc
    kind = _local(root)
    if kind == "alto":
        return _read_alto(root, source)
    if kind == "PcGts":
        return _read_page(root, source)
    raise LayoutXmlError(f"{source or 'document'}: root element {kind!r} is neither ALTO nor PAGE XML")


def _read_alto(root: etree._Element, source: str | None) -> list[LayoutPage]:
    file_name = root.findtext("{*}Description/{*}sourceImageInformation/{*}fileName")
    pages = []
    for position, page_el in enumerate(root.iterfind("{*}Layout/{*}Page"), start=1):
        number = _float(page_el.get("PHYSICAL_IMG_NR"))
        number = int(number) if number is not None and number >= 1 and number == int(number) else position
        lines = []
        for line_el in page_el.iter("{*}TextLine"):
            words = []
            for child in line_el:
                name = _local(child)
                if name == "String":
                    words.append(child.get("CONTENT", ""))
                elif name == "SP" and words:
                    words.append(" ")
                elif name == "HYP":
                    words.append(child.get("CONTENT", ""))
            text = "".join(words)
            confidences = [v for v in (_float(s.get("WC")) for s in line_el.iterfind("{*}String")) if v is not None]
            box = _alto_box(line_el)
            polygon = next((_parse_points(s.get("POINTS")) for s in line_el.iterfind("{*}Shape/{*}Polygon")), ())
            lines.append(LayoutLine(text, polygon, _alto_baseline(line_el.get("BASELINE"), box), box,
                                    min(confidences) if confidences else None))
        pages.append(LayoutPage(file_name or "", number, int(_float(page_el.get("WIDTH")) or 0),
                                int(_float(page_el.get("HEIGHT")) or 0), tuple(lines), source))
    return pages


def _alto_box(el: etree._Element) -> BBox | None:
    values = [_float(el.get(k)) for k in ("HPOS", "VPOS", "WIDTH", "HEIGHT")]
    if any(v is None for v in values):
        return None
    x, y, w, h = (round(v) for v in values)  # type: ignore[arg-type]
    return BBox(x, y, x + w, y + h)


def _alto_baseline(value: str | None, box: BBox | None) -> tuple[Point, ...]:
    """ALTO ≥ 4.2 points, or the older single y (a horizontal line across the line's box)."""
    points = _parse_points(value)
    if not points and value and box is not None and _float(value) is not None:
        y = float(value)
        return ((float(box.x0), y), (float(box.x1), y))
    return points


def _read_page(root: etree._Element, source: str | None) -> list[LayoutPage]:
    page_el = root.find("{*}Page")
    if page_el is None:
        raise LayoutXmlError(f"{source or 'document'}: PAGE XML without a Page element")
    regions = list(page_el.iter("{*}TextRegion"))
    ranks = {ref: k for k, ref in enumerate(_region_order(page_el.find("{*}ReadingOrder")))}
    regions.sort(key=lambda r: ranks.get(r.get("id", ""), len(ranks)))  # stable: unordered ones keep doc order
    lines = []
    for region in regions:
        line_els = region.findall("{*}TextLine")
        indices = [_line_index(el) for el in line_els]
        if line_els and all(i is not None for i in indices):
            line_els = [el for _, el in sorted(zip(indices, line_els, strict=True), key=lambda t: t[0])]
        lines.extend(_page_line(el) for el in line_els)
    return [LayoutPage(page_el.get("imageFilename", ""), 1, int(_float(page_el.get("imageWidth")) or 0),
                       int(_float(page_el.get("imageHeight")) or 0), tuple(lines), source)]


def _region_order(order: etree._Element | None) -> list[str]:
    """Region ids in reading order: ordered groups by ``@index``, unordered ones as written, nested."""
    if order is None:
        return []
    out: list[str] = []

    def visit(group: etree._Element) -> None:
        children = [c for c in group if _local(c) in _RO_REFS or _local(c) in _RO_GROUPS]
        if _local(group).startswith("Ordered"):
            children.sort(key=lambda c: int(_float(c.get("index")) or 0))
        for child in children:
            if child.get("regionRef"):
                out.append(child.get("regionRef"))
            if _local(child) in _RO_GROUPS:
                visit(child)

    for group in order:
        visit(group)
    return out


def _line_index(el: etree._Element) -> int | None:
    index = el.get("index")
    if index is not None and index.strip().lstrip("-").isdigit():
        return int(index)
    match = _CUSTOM_INDEX.search(el.get("custom", ""))
    return int(match.group(1)) if match else None


def _equiv_text(el: etree._Element) -> tuple[str | None, float | None]:
    """Text and confidence of an element's own ``TextEquiv`` (the lowest ``@index`` first), or (None, None)."""
    equivs = el.findall("{*}TextEquiv")
    if not equivs:
        return None, None
    best = min(equivs, key=lambda e: int(_float(e.get("index")) or 0))
    return best.findtext("{*}Unicode") or "", _float(best.get("conf"))


def _page_line(el: etree._Element) -> LayoutLine:
    text, confidence = _equiv_text(el)
    if text is None:  # only word-level transcriptions
        text = " ".join(t for t in (_equiv_text(w)[0] for w in el.findall("{*}Word")) if t)
    polygon = _parse_points(el.find("{*}Coords").get("points") if el.find("{*}Coords") is not None else None)
    baseline = _parse_points(el.find("{*}Baseline").get("points") if el.find("{*}Baseline") is not None else None)
    return LayoutLine(text, polygon, baseline, points_box(polygon), confidence)


# ---------------------------------------------------------------- validation

# ALTO imports the XLink schema from the network; this offline stand-in declares what ALTO uses.
_XLINK_XSD = b"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="http://www.w3.org/1999/xlink"
           attributeFormDefault="qualified">
  <xs:attributeGroup name="simpleLink">
    <xs:attribute name="type" type="xs:string" fixed="simple"/>
    <xs:attribute name="href" type="xs:anyURI"/>
    <xs:attribute name="role" type="xs:anyURI"/>
    <xs:attribute name="arcrole" type="xs:anyURI"/>
    <xs:attribute name="title" type="xs:string"/>
    <xs:attribute name="show" type="xs:string"/>
    <xs:attribute name="actuate" type="xs:string"/>
  </xs:attributeGroup>
</xs:schema>
"""


class _XlinkResolver(etree.Resolver):
    def resolve(self, system_url: str, public_id: str, context: object) -> object:
        if system_url and "xlink" in system_url:
            return self.resolve_string(_XLINK_XSD, context)
        return None


def load_schema(kind: str, schemas_dir: str | Path) -> etree.XMLSchema:
    """The official XSD of ``kind`` (``"alto"`` or ``"page"``) from ``schemas_dir``, loaded offline.

    ``schemas_dir`` holds ``alto-4-4.xsd`` and ``pagecontent-2019-07-15.xsd``; the XLink
    schema ALTO imports from the network is replaced by a local stand-in.
    """
    if kind not in SCHEMA_FILES:
        raise ValueError(f"kind must be one of {FORMATS}, not {kind!r}")
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_XlinkResolver())
    return etree.XMLSchema(etree.parse(str(Path(schemas_dir) / SCHEMA_FILES[kind]), parser))
