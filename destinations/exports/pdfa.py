"""A small PDF/A-3b writer: just what an e-invoice needs (Factur-X, ZUGFeRD), written by us so that
every byte is ours to explain and the same input gives the same bytes.

It knows PDF objects, Type0/CIDFontType2 fonts subset with fontTools (Identity-H, ToUnicode, W), an
sRGB output intent whose ICC profile it generates, XMP metadata and associated files (ISO 19005-3
§6.8). Nothing about invoices: the page content and the XMP extension schemas come from the caller.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from destinations.exports.ledger import ExportRefused

COMPRESSION = 9  # fixed, so the same input gives the same bytes
A4 = (595.28, 841.89)


class Name(str):
    """A PDF name (/Type); characters outside the regular ones are written as #xx (ISO 32000 §7.3.5)."""


@dataclass(frozen=True)
class Ref:
    number: int


def pdf_date(moment: datetime) -> str:
    """D:YYYYMMDDHHmmSS+00'00' (UTC), the form whose XMP twin (``xmp_date``) PDF/A requires to agree."""
    return moment.strftime("D:%Y%m%d%H%M%S+00'00'")


def xmp_date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _name(name: str) -> bytes:
    return b"/" + b"".join(bytes([c]) if 0x21 <= c <= 0x7E and c not in b"#/()<>[]{}%" else b"#%02X" % c
                           for c in name.encode("utf-8"))


def _string(text: str) -> bytes:
    """A text string: printable ASCII as a literal, anything else UTF-16BE with a BOM (ISO 32000 §7.9.2.2)."""
    if all(0x20 <= ord(c) < 0x7F for c in text):
        return b"(" + text.encode("ascii").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode() + b">"


def _number(value: float) -> bytes:  # not money: PDF geometry
    if isinstance(value, int):
        return str(value).encode()
    return (f"{value:.3f}".rstrip("0").rstrip(".") or "0").encode()


def serialised(value: object) -> bytes:
    """A Python value as a PDF object: dict, list, Name, Ref, str (text), bytes (hex string), numbers."""
    if isinstance(value, Name):
        return _name(value)
    if isinstance(value, Ref):
        return b"%d 0 R" % value.number
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, bytes):
        return b"<" + value.hex().upper().encode() + b">"
    if isinstance(value, dict):
        return b"<<" + b"".join(_name(key) + b" " + serialised(item) + b"\n" for key, item in value.items()) + b">>"
    if isinstance(value, list):
        return b"[" + b" ".join(serialised(item) for item in value) + b"]"
    raise TypeError(f"no PDF form for {value!r}")


class PdfFile:
    """Numbered objects, written in order with a classic xref table and a content-derived /ID."""

    def __init__(self):
        self.objects: list[bytes | None] = []

    def reserve(self) -> Ref:
        self.objects.append(None)
        return Ref(len(self.objects))

    def add(self, value: object, ref: Ref | None = None) -> Ref:
        ref = ref or self.reserve()
        self.objects[ref.number - 1] = serialised(value)
        return ref

    def add_stream(self, data: bytes, entries: dict | None = None, compress: bool = True) -> Ref:
        entries = dict(entries or {})
        if compress:
            data = zlib.compress(data, COMPRESSION)
            entries["Filter"] = Name("FlateDecode")
        entries["Length"] = len(data)
        ref = self.reserve()
        self.objects[ref.number - 1] = serialised(entries) + b"\nstream\n" + data + b"\nendstream"
        return ref

    def to_bytes(self, root: Ref, info: Ref) -> bytes:
        # The binary comment tells transfer tools the file is binary (ISO 19005-3 §6.1.2).
        out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(self.objects, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
        file_id = hashlib.sha256(bytes(out)).digest()[:16]
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f\r\n" % (len(self.objects) + 1)
        out += b"".join(b"%010d 00000 n\r\n" % offset for offset in offsets)
        trailer = {"Size": len(self.objects) + 1, "Root": root, "Info": info, "ID": [file_id, file_id]}
        out += b"trailer\n" + serialised(trailer) + b"\nstartxref\n%d\n%%%%EOF\n" % xref
        return bytes(out)


# ---------------------------------------------------------------- fonts


@functools.lru_cache(maxsize=8)
def _font_tables(path: Path) -> tuple[dict[int, str], dict[str, tuple[int, int]], int]:
    """(cmap, horizontal metrics, units per em) of a TrueType font, read once per file and process."""
    from fontTools.ttLib import TTFont, TTLibError

    try:
        font = TTFont(path, recalcTimestamp=False)
        if "glyf" not in font:
            raise ExportRefused(f"{path}: not a TrueType font (no glyf table; CFF fonts are not supported)")
        return font.getBestCmap(), dict(font["hmtx"].metrics), font["head"].unitsPerEm
    except (OSError, TTLibError) as exc:
        raise ExportRefused(f"{path}: not a readable TrueType font ({exc})") from None


# OpenType layout (shaping) tables: a PDF places every glyph itself, so no reader uses them.
LAYOUT_TABLES = {"GSUB", "GPOS", "GDEF", "BASE", "JSTF", "MATH", "kern"}


@dataclass
class Font:
    """A TrueType font to embed as Type0/CIDFontType2 with Identity-H: widths for layout, and the
    characters used, from which ``embed`` writes a subset whose glyph ids are the CIDs."""

    path: Path
    resource: str  # F1, F2, … in the page's /Font resources
    used: set[str] = field(default_factory=set)

    def __post_init__(self):
        self.cmap, self.metrics, units = _font_tables(self.path)
        self.scale = 1000 / units
        self.codes: dict[str, int] = {}

    def lacks(self, text: str) -> str | None:
        """The first character of ``text`` the font has no glyph for."""
        return next((c for c in text if ord(c) not in self.cmap), None)

    def use(self, text: str) -> str:
        self.used.update(text)
        return text

    def width(self, text: str, size: float) -> float:  # not money: PDF geometry
        return sum(round(self.metrics[self.cmap[ord(c)]][0] * self.scale) for c in text) * size / 1000

    def encoded(self, text: str) -> bytes:
        """The text as 2-byte CIDs of the subset; only valid after ``embed``."""
        return b"".join(struct.pack(">H", self.codes[c]) for c in text)

    def embed(self, pdf: PdfFile) -> Ref:
        from fontTools import subset
        from fontTools.ttLib import TTFont

        options = subset.Options()
        options.layout_features = []
        options.hinting = False
        options.notdef_outline = True
        options.drop_tables += ["FFTM"]  # FontForge's timestamps: nothing a PDF reader uses
        options.name_IDs = ["*"]  # keep copyright and licence (the DejaVu licence asks for it)
        font = TTFont(self.path, recalcTimestamp=False)  # a fresh copy: the subsetter changes its font
        for tag in LAYOUT_TABLES & set(font.keys()):
            del font[tag]  # before the subsetter decodes them: 9/10 of its time
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=sorted(ord(c) for c in self.used))
        subsetter.subset(font)
        glyph_ids = {name: font.getGlyphID(name) for name in font.getGlyphOrder()}
        subset_cmap = font.getBestCmap()
        self.codes = {c: glyph_ids[subset_cmap[ord(c)]] for c in self.used}
        program = io.BytesIO()
        font.save(program)
        return self._objects(pdf, font, program.getvalue())

    def _objects(self, pdf: PdfFile, font, program: bytes) -> Ref:
        tag = "".join(chr(65 + b % 26) for b in hashlib.sha256(program).digest()[:6])
        base = Name(f"{tag}+{font['name'].getDebugName(6) or self.path.stem}")
        head, hhea, os2 = font["head"], font["hhea"], font["OS/2"]
        descriptor = {"Type": Name("FontDescriptor"), "FontName": base, "Flags": 4,
                      "FontBBox": [round(v * self.scale) for v in (head.xMin, head.yMin, head.xMax, head.yMax)],
                      "ItalicAngle": font["post"].italicAngle, "Ascent": round(hhea.ascent * self.scale),
                      "Descent": round(hhea.descent * self.scale),
                      "CapHeight": round(getattr(os2, "sCapHeight", hhea.ascent) * self.scale),
                      "StemV": 80 + (40 if os2.usWeightClass >= 600 else 0),
                      "FontFile2": pdf.add_stream(program, {"Length1": len(program)})}
        metrics = font["hmtx"].metrics
        widths = sorted({gid: round(metrics[font.getGlyphName(gid)][0] * self.scale)
                         for gid in self.codes.values()}.items())
        cid_font = {"Type": Name("Font"), "Subtype": Name("CIDFontType2"), "BaseFont": base,
                    "CIDSystemInfo": {"Registry": "Adobe", "Ordering": "Identity", "Supplement": 0},
                    "FontDescriptor": pdf.add(descriptor), "DW": 1000,
                    "W": [item for gid, width in widths for item in (gid, [width])],
                    "CIDToGIDMap": Name("Identity")}
        return pdf.add({"Type": Name("Font"), "Subtype": Name("Type0"), "BaseFont": base,
                        "Encoding": Name("Identity-H"), "DescendantFonts": [pdf.add(cid_font)],
                        "ToUnicode": pdf.add_stream(_to_unicode(self.codes))})


def _to_unicode(codes: dict[str, int]) -> bytes:
    """The CMap that lets readers copy and search the text (PDF/A-3 level U demands it; B gains from it too)."""
    pairs = sorted((gid, char) for char, gid in codes.items())
    chunks = [pairs[i:i + 100] for i in range(0, len(pairs), 100)]
    body = "".join(f"{len(chunk)} beginbfchar\n"
                   + "".join(f"<{gid:04X}> <{char.encode('utf-16-be').hex().upper()}>\n" for gid, char in chunk)
                   + "endbfchar\n" for chunk in chunks)
    return ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
            "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
            "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
            f"{body}endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n").encode("ascii")


# ---------------------------------------------------------------- page content


@dataclass(frozen=True)
class Text:
    font: Font
    size: float  # not money: PDF geometry
    x: float  # not money: PDF geometry
    y: float  # not money: PDF geometry
    text: str


@dataclass(frozen=True)
class Rule:
    """A horizontal line, in grey (0 black, 1 white)."""

    x1: float  # not money: PDF geometry
    x2: float  # not money: PDF geometry
    y: float  # not money: PDF geometry
    width: float = 0.5  # not money: PDF geometry
    gray: float = 0.0  # not money: PDF geometry


def content_stream(drawing: list[Text | Rule]) -> bytes:
    """The page's operators; text in DeviceGray black, which any PDF/A output intent allows."""
    out = []
    for item in drawing:
        if isinstance(item, Text):
            out.append(b"BT /%s %s Tf %s %s Td <%s> Tj ET" % (
                item.font.resource.encode(), _number(item.size), _number(item.x), _number(item.y),
                item.font.encoded(item.text).hex().upper().encode()))
        else:
            out.append(b"%s G %s w %s %s m %s %s l S" % (
                _number(item.gray), _number(item.width), _number(item.x1), _number(item.y), _number(item.x2),
                _number(item.y)))
    return b"0 g\n" + b"\n".join(out) + b"\n"


# ---------------------------------------------------------------- sRGB output intent


def _s15(value: float) -> bytes:  # not money: PDF geometry
    return struct.pack(">i", round(value * 65536))


def _tag_xyz(x: float, y: float, z: float) -> bytes:  # not money: PDF geometry
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def _srgb_curve(points: int = 1024) -> bytes:
    """IEC 61966-2.1's transfer function, sampled (ICC v2 has no parametric curves)."""
    def decoded(v: float) -> float:  # not money: PDF geometry
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    samples = (min(65535, math.floor(decoded(i / (points - 1)) * 65535 + 0.5)) for i in range(points))
    return b"curv\0\0\0\0" + struct.pack(">I", points) + b"".join(struct.pack(">H", s) for s in samples)


def _tag_desc(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    # textDescriptionType: ASCII part, then empty Unicode and ScriptCode parts (ICC.1:2001-04 §6.5.17)
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text + b"\0" * 8 + b"\0\0\0" + b"\0" * 67


def srgb_profile() -> bytes:
    """A small ICC v2 RGB display profile of sRGB: primaries adapted to D50 (Bradford), the sRGB curve
    on each channel. Generated rather than shipped, so its origin and licence are ours."""
    curve = _srgb_curve()
    tags = [(b"desc", _tag_desc("sRGB IEC61966-2.1 (ledgerflow)")),
            (b"cprt", b"text\0\0\0\0" + b"No copyright, use freely\0"),
            (b"wtpt", _tag_xyz(0.9505, 1.0, 1.0891)),
            (b"rXYZ", _tag_xyz(0.43607, 0.22249, 0.01392)),
            (b"gXYZ", _tag_xyz(0.38515, 0.71687, 0.09708)),
            (b"bXYZ", _tag_xyz(0.14307, 0.06061, 0.71410)),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, data, placed = b"", b"", {}
    for signature, element in tags:
        if element not in placed:  # the three TRCs share one curve
            placed[element] = offset + len(data)
            data += element + b"\0" * (-len(element) % 4)
        table += signature + struct.pack(">II", placed[element], len(element))
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"\0\0\0\0" + b"\x02\x10\0\0" + b"mntrRGB XYZ "
              + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 24 + struct.pack(">I", 0)
              + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + data


def output_intent(pdf: PdfFile) -> dict:
    profile = pdf.add_stream(srgb_profile(), {"N": 3})
    return {"Type": Name("OutputIntent"), "S": Name("GTS_PDFA1"), "OutputConditionIdentifier": "sRGB IEC61966-2.1",
            "RegistryName": "http://www.color.org", "Info": "sRGB IEC61966-2.1", "DestOutputProfile": profile}


# ---------------------------------------------------------------- metadata and associated files


@dataclass(frozen=True)
class ExtensionProperty:
    name: str
    value: str
    description: str


@dataclass(frozen=True)
class ExtensionSchema:
    """An XMP schema PDF/A does not know, declared in the file itself (ISO 19005-3 §6.6.2.3)."""

    prefix: str
    namespace: str
    description: str
    properties: tuple[ExtensionProperty, ...]


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def xmp_packet(title: str, author: str, producer: str, moment: datetime, extension: ExtensionSchema) -> bytes:
    """PDF/A-3b identification, Dublin Core, the dates and producer the Info dictionary repeats, and
    the caller's extension schema with its declaration."""
    declared = "".join(
        f"<rdf:li rdf:parseType=\"Resource\"><pdfaProperty:name>{p.name}</pdfaProperty:name>"
        "<pdfaProperty:valueType>Text</pdfaProperty:valueType><pdfaProperty:category>external"
        f"</pdfaProperty:category><pdfaProperty:description>{_xml(p.description)}</pdfaProperty:description>"
        "</rdf:li>\n" for p in extension.properties)
    values = "".join(f"<{extension.prefix}:{p.name}>{_xml(p.value)}</{extension.prefix}:{p.name}>\n"
                     for p in extension.properties)
    date = xmp_date(moment)
    text = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
<pdfaid:part>3</pdfaid:part>
<pdfaid:conformance>B</pdfaid:conformance>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
<dc:format>application/pdf</dc:format>
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{_xml(title)}</rdf:li></rdf:Alt></dc:title>
<dc:creator><rdf:Seq><rdf:li>{_xml(author)}</rdf:li></rdf:Seq></dc:creator>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
<pdf:Producer>{_xml(producer)}</pdf:Producer>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
<xmp:CreatorTool>{_xml(producer)}</xmp:CreatorTool>
<xmp:CreateDate>{date}</xmp:CreateDate>
<xmp:ModifyDate>{date}</xmp:ModifyDate>
<xmp:MetadataDate>{date}</xmp:MetadataDate>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"
 xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">
<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">
<pdfaSchema:schema>{_xml(extension.description)}</pdfaSchema:schema>
<pdfaSchema:namespaceURI>{_xml(extension.namespace)}</pdfaSchema:namespaceURI>
<pdfaSchema:prefix>{extension.prefix}</pdfaSchema:prefix>
<pdfaSchema:property><rdf:Seq>
{declared}</rdf:Seq></pdfaSchema:property>
</rdf:li></rdf:Bag></pdfaExtension:schemas>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:{extension.prefix}="{_xml(extension.namespace)}">
{values}</rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""
    return text.encode("utf-8")


def info_dictionary(title: str, author: str, producer: str, moment: datetime) -> dict:
    """The Info entries, which PDF/A requires to agree with their XMP twins in ``xmp_packet``."""
    return {"Title": title, "Author": author, "Creator": producer, "Producer": producer,
            "CreationDate": pdf_date(moment), "ModDate": pdf_date(moment)}


def associated_file(pdf: PdfFile, name: str, data: bytes, mime: str, description: str, relationship: str,
                    moment: datetime) -> Ref:
    """An embedded file with its file specification, for the catalog's /AF and /EmbeddedFiles."""
    stream = pdf.add_stream(data, {"Type": Name("EmbeddedFile"), "Subtype": Name(mime),
                                   "Params": {"ModDate": pdf_date(moment), "Size": len(data)}})
    return pdf.add({"Type": Name("Filespec"), "F": name, "UF": name, "EF": {"F": stream, "UF": stream},
                    "Desc": description, "AFRelationship": Name(relationship)})
