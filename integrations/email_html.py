"""HTML mail as lines that know their quote depth, read by the mail's structure (lxml).

A `<blockquote>` or a client's quote container (Gmail's `gmail_quote`, Thunderbird's
`moz-cite-prefix`, …) is a quote level; from Outlook's reply header (`divRplyFwdMsg`, the 1pt
top-border separator of Outlook desktop and Windows Mail) to the end everything is history.
Only elements break lines: the line wrapping of the HTML source is a space, as a browser shows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import lxml.etree
import lxml.html


@dataclass
class Line:
    depth: int  # how many quote levels this line is inside (">" marks or HTML quote containers)
    text: str


_BLOCKS = frozenset(
    "address article aside blockquote body caption center dd details dialog div dl dt fieldset figcaption "
    "figure footer form h1 h2 h3 h4 h5 h6 header hr html li main nav ol p pre section table tr ul".split()
)
_DROPPED = ("script", "style", "head", "title", "template", "noscript")
# Containers that hold the quoted message (and its "On … wrote:" line), by class or id.
_QUOTE_CLASSES = frozenset({"gmail_quote", "gmail_quote_container", "gmail_attr", "moz-cite-prefix",
                            "yahoo_quoted", "outlookmessageheader", "protonmail_quote", "zmail_extra"})
# Where Outlook (desktop, web, mobile) and Windows Mail put the reply header: from there to the
# end of the message is history.
_CUT_IDS = frozenset({"divrplyfwdmsg", "mail-editor-reference-message-container", "x_divrplyfwdmsg"})
# Outlook/Windows Mail draw the header block under a 1pt top border with 3pt of padding (a
# signature's own rule has no such padding, and must not cut the text above it).
_CUT_STYLE = re.compile(r"border-top\s*:\s*(solid\s+#?[0-9a-z]+\s+1(\.0)?pt|1(\.0)?pt\s+solid)[^\"']*padding\s*:\s*3(\.0)?pt",
                        re.I)
_SIGNATURE_CLASSES = frozenset({"gmail_signature", "moz-signature", "signature"})
_SIGNATURE_IDS = frozenset({"signature", "applemailsignature", "ms-outlook-mobile-signature", "ms-outlook-ios-signature"})
SIG_DELIMITER = re.compile(r"^\s*(--|—|__)\s*$")
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0\u200b\u2007\u202f]+")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*>", re.I)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _classes(el: lxml.html.HtmlElement) -> set[str]:
    return {c.lower() for c in (el.get("class") or "").split()}


class _HtmlLines:
    """Renders an HTML tree to lines: only element boundaries and <br> break lines (the source's
    own wrapping is just a space), paragraphs are set apart by a blank line."""

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.parts: list[str] = []
        self.depth = 0
        self.cut = False  # past Outlook's reply header: everything is history
        self.pre = 0
        self.gap = False  # a paragraph ended: a blank line before the next text

    @property
    def level(self) -> int:
        return self.depth + (1 if self.cut else 0)

    def flush(self, force: bool = False) -> None:
        raw = "".join(self.parts)
        self.parts = []
        text = raw.rstrip() if self.pre else _SPACES.sub(" ", raw).strip()
        if not text and not force and "\u00a0" not in raw:
            return  # a block with only a no-break space is how Outlook and Yandex write a blank line
        if text and self.gap and self.lines and self.lines[-1].text:
            self.lines.append(Line(self.level, ""))
        if text:
            self.gap = False
        self.lines.append(Line(self.level, text))

    def add(self, text: str | None) -> None:
        if not text:
            return
        if not self.pre:
            self.parts.append(text)
            return
        *whole, rest = text.split("\n")
        for piece in whole:
            self.parts.append(piece)
            self.flush(force=True)
        self.parts.append(rest)

    def signature_mark(self, el: lxml.html.HtmlElement) -> None:
        last = next((line.text for line in reversed(self.lines) if line.text), "")
        own = _SPACES.sub(" ", el.text_content()).strip()
        if not SIG_DELIMITER.match(last) and not own.startswith(("--", "—")):
            self.lines.append(Line(self.level, "-- "))

    def render(self, root: lxml.html.HtmlElement) -> list[Line]:
        opened: dict[int, tuple[bool, bool]] = {}
        for event, el in lxml.etree.iterwalk(root, events=("start", "end")):
            tag = el.tag.lower() if isinstance(el.tag, str) else ""
            classes = _classes(el) if tag else set()
            ident = (el.get("id") or "").lower() if tag else ""
            if event == "start":
                block = tag in _BLOCKS
                quote = tag == "blockquote" or bool(classes & _QUOTE_CLASSES)
                paragraph = tag == "p" and "msonormal" not in classes
                if block or tag == "br" or quote:
                    self.flush(force=tag == "br")
                if paragraph:
                    self.gap = True
                if not self.cut and (ident in _CUT_IDS or (block and _CUT_STYLE.search(el.get("style") or ""))):
                    self.cut = True
                if quote:
                    self.depth += 1
                if classes & _SIGNATURE_CLASSES or ident in _SIGNATURE_IDS:
                    self.flush()
                    self.signature_mark(el)
                if tag == "pre":
                    self.pre += 1
                opened[id(el)] = (block, quote)
                self.add(el.text)
            else:
                block, quote = opened.pop(id(el), (False, False))
                if block:
                    self.flush()
                if tag in ("td", "th"):
                    self.parts.append(" ")
                if tag == "p" and "msonormal" not in classes:
                    self.gap = True
                if quote:
                    self.depth -= 1
                if tag == "pre":
                    self.pre -= 1
                self.add(el.tail)
        self.flush()
        return self.lines


def html_lines(markup: str) -> list[Line]:
    # libxml2 takes no XML declaration in a str, and no control characters at all.
    markup = _NOT_XML.sub("", _XML_DECL.sub("", markup))
    try:
        root = lxml.html.document_fromstring(markup)
    except (lxml.etree.ParserError, ValueError):  # an empty or unreadable document
        return []
    for el in list(root.iter(*_DROPPED)):
        el.drop_tree()  # keeps the tail text
    lxml.etree.strip_elements(root, lxml.etree.Comment, lxml.etree.ProcessingInstruction, with_tail=False)
    return _HtmlLines().render(root)
