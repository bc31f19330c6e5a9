"""What a person wrote in an email, apart from the history they quoted and their signature.

HTML mail is read by its structure (lxml): a `<blockquote>` or a client's known quote container
is the quote whatever the language, and Outlook's reply header separator starts a history that
runs to the end. Both HTML and plain text then become lines that carry their quote depth, and
one pass over those lines finds what is left: the quote headers clients write ("On … wrote:",
"пн, 30 нояб. 2026 г. в 10:00, Иван <…>:", "-----Исходное сообщение-----", an Outlook
"От: / Отправлено: / Кому: / Тема:" block, …) start a quote too. Text above *and* below a quote
is the reply, so top-posting, bottom-posting and inline answers all keep what was written.
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


@dataclass
class Extracted:
    text: str  # what the person wrote now, without quotes and signature
    signature: str | None
    original: str  # the whole body as text, quoted lines marked with "> "
    quoted: bool = False  # whether any quoted history was found (and cut)


# --- HTML structure --------------------------------------------------------------------------

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
# Outlook/Windows Mail draw the header block under a 1pt top border.
_CUT_STYLE = re.compile(r"border-top\s*:\s*solid\s+#?[0-9a-z]+\s+1(\.0)?pt", re.I)
_SIGNATURE_CLASSES = frozenset({"gmail_signature", "moz-signature", "signature"})
_SIGNATURE_IDS = frozenset({"signature", "applemailsignature", "ms-outlook-mobile-signature", "ms-outlook-ios-signature"})
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0\u200b\u2007\u202f]+")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*>", re.I)


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
        if not _SIG_DELIMITER.match(last) and not own.startswith(("--", "—")):
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
    try:
        root = lxml.html.document_fromstring(_XML_DECL.sub("", markup))
    except (lxml.etree.ParserError, ValueError):  # an empty or unreadable document
        return []
    for el in root.iter(*_DROPPED):
        el.drop_tree()  # keeps the tail text
    lxml.etree.strip_elements(root, lxml.etree.Comment, lxml.etree.ProcessingInstruction, with_tail=False)
    return _HtmlLines().render(root)


def html_to_text(markup: str) -> str:
    """Readable text of an HTML message, quoted lines marked with "> "."""
    return render(html_lines(markup))


# --- Plain text ------------------------------------------------------------------------------

_QUOTE_MARK = re.compile(r"^((?:[ \t]?>)+)[ \t]?")


def text_lines(text: str) -> list[Line]:
    lines = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        raw = raw.replace("\u00a0", " ").rstrip()
        found = _QUOTE_MARK.match(raw)
        if found:
            lines.append(Line(found.group(1).count(">"), raw[found.end():]))
        else:
            lines.append(Line(0, raw))
    return lines


def render(lines: list[Line]) -> str:
    text = "\n".join(("> " * line.depth + line.text).rstrip() if line.text else ">" * line.depth
                     for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


# --- Quote headers ---------------------------------------------------------------------------

_TIME = r"\d{1,2}[:.]\d{2}"
_EMAIL = r"[^\s<>@]+@[^\s<>@]+"
# "… wrote:" in the languages our customers write in, as clients print it.
_WROTE = (r"wrote|написал\(а\)|написала?|пишет|писал\(а\)|schrieb|a écrit|escribió|ha scritto|schreef|skrev|"
          r"napsal\(a\)|napisał\(a\)|pisze|escreveu|kirjoitti|yazdı|írta|napísal\(a\)")
_ATTRIBUTION = [
    # Gmail, Apple Mail, Thunderbird in English: "On Mon, Nov 30, 2026 at 10:00 AM Ivan <i@x> wrote:"
    re.compile(r"^On\b(?=.*\d).{4,300}\bwrote\s*:?$", re.I),
    # Any client, any language: a date or time, and an address or a "wrote", before a colon:
    # "пн, 30 нояб. 2026 г. в 10:00, Иван <ivan@…>:", "26.06.2014, 14:41, "Имя" <…>:",
    # "Понедельник, 30 ноября 2026, 10:00 +03:00 от Иван <…>:", "… пользователь "…" <…> написал:"
    re.compile(rf"^(?=.*{_TIME})(?=.*(<{_EMAIL}>|\b({_WROTE})\b)).{{6,400}}:$", re.I),
    re.compile(rf"^(?=.*\d{{4}})(?=.*\b({_WROTE})\s*:?$).{{6,400}}$", re.I),
]
# Weaker: enough when a quoted block follows right below.
_WEAK_ATTRIBUTION = re.compile(rf"^(?=.*({_EMAIL}|{_TIME}|\d{{4}}|\b({_WROTE})\b)).{{3,400}}:$", re.I)
_SEPARATOR = re.compile(
    r"^[\s*]*-{2,}\s*(original message|исходное сообщение|исходное письмо|оригинальное сообщение|"
    r"ursprüngliche nachricht|message d'origine|mensaje original|messaggio originale|oorspronkelijk bericht|"
    r"wiadomość oryginalna|původní zpráva|original meddelelse|ursprungligt meddelande|alkuperäinen viesti|"
    r"mensagem original)\s*-{2,}[\s*]*$", re.I)
_RULE = re.compile(r"^\s*(_{8,}|-{8,})\s*$")
_FROM_NAMES = r"from|от|от кого|von|de|van|od|fra|från|da|lähettäjä"
_OTHER_NAMES = (r"sent|date|to|cc|subject|отправлено|отправлен|дата|кому|копия|тема|gesendet|datum|an|betreff|"
                r"envoyé|à|objet|enviado|fecha|para|asunto|inviato|data|a|oggetto|verzonden|aan|onderwerp|"
                r"wysłano|do|temat|odesláno|komu|předmět|sendt|til|emne|skickat|till|ämne|lähetetty|vastaanottaja|"
                r"aihe|reply-to|ответить")
_HEADER = re.compile(rf"^\s*\**\s*(?P<name>{_FROM_NAMES}|{_OTHER_NAMES})\s*\**\s*:\s*\**(?P<value>.*)$", re.I)
_FROM_HEADER = re.compile(rf"^({_FROM_NAMES})$", re.I)
# A block must also name the subject or when it was sent: "From: Moscow / To: Kazan / Date: …"
# in a delivery request is not a quote header.
_MAIL_HEADER = re.compile(r"^(subject|тема|betreff|objet|asunto|oggetto|onderwerp|temat|předmět|emne|ämne|aihe|"
                          r"sent|отправлено|отправлен|gesendet|envoyé|enviado|inviato|verzonden|wysłano|odesláno|sendt|"
                          r"skickat|lähetetty)$", re.I)
# Joining a wrapped line: no space after an opening bracket ("Иван <" + "ivan@…>:").
_NO_SPACE_AFTER = "<([{\"'"


def _joined(lines: list[Line], i: int, count: int) -> str | None:
    chunk = lines[i:i + count]
    if len(chunk) < count or any(not line.text.strip() or line.depth != chunk[0].depth for line in chunk):
        return None
    text = chunk[0].text.strip()
    for line in chunk[1:]:
        text += ("" if text[-1:] in _NO_SPACE_AFTER else " ") + line.text.strip()
    return text


def _attribution(lines: list[Line], i: int, patterns: list[re.Pattern[str]]) -> int | None:
    """The end (exclusive) of a quote header line starting at i, also when wrapped onto two lines."""
    for count in (1, 2):
        if count == 2 and not re.search(r"\d|^\s*on\b", lines[i].text, re.I):
            break  # only a header's date line wraps on; a signature's last line does not
        text = _joined(lines, i, count)
        if text is not None and any(p.match(text) for p in patterns):
            return i + count
    return None


def _header_block(lines: list[Line], i: int) -> int | None:
    """An Outlook-style block ("From:", "Sent:", "To:", "Subject:", in any order, values perhaps
    wrapped) starting at i: its end, if it names the sender and at least two more fields."""
    names: list[str] = []
    j, depth = i, lines[i].depth
    while j < len(lines) and lines[j].depth == depth and lines[j].text.strip():
        found = _HEADER.match(lines[j].text)
        if found:
            names.append(found.group("name").lower())
        elif not names or j - i > 8:
            break  # a wrapped value continues a header; anything else ends the block
        j += 1
    has_from = any(_FROM_HEADER.match(n) for n in names)
    if has_from and any(_MAIL_HEADER.match(n) for n in names) and len(set(names)) >= 3 and _HEADER.match(lines[i].text):
        return j
    return None


def _quote_start(lines: list[Line], i: int) -> tuple[int, bool] | None:
    """If a quote header starts at line i: where it ends, and whether it is strong enough to cut
    what follows even when that is not marked as quoted."""
    text = lines[i].text
    if _SEPARATOR.match(text):
        return i + 1, True
    if _RULE.match(text):
        nxt = _next_text(lines, i + 1)
        if nxt is not None and lines[nxt].depth == lines[i].depth and _header_block(lines, nxt):
            return i + 1, True
        return None
    end = _header_block(lines, i)
    if end is not None:
        return end, True
    end = _attribution(lines, i, _ATTRIBUTION)
    if end is not None:
        return end, True
    end = _attribution(lines, i, [_WEAK_ATTRIBUTION])
    if end is not None:
        return end, False
    return None


def _next_text(lines: list[Line], i: int) -> int | None:
    while i < len(lines):
        if lines[i].text.strip() or lines[i].depth:
            return i
        i += 1
    return None


def _quote_end(lines: list[Line], i: int) -> int:
    """The end of the quoted block at i: its marked lines and the blank lines between them."""
    end = i
    while i < len(lines):
        if lines[i].depth > 0:
            end = i = i + 1
        elif not lines[i].text.strip():
            i += 1
        else:
            break
    return end


def quoted_mask(lines: list[Line]) -> list[bool]:
    """Which lines are quoted history: marked lines, the headers that introduce them, and
    everything after a header that introduces unmarked history (Outlook, Android)."""
    mask = [line.depth > 0 for line in lines]
    i = 0
    while i < len(lines):
        if mask[i] or not lines[i].text.strip():
            i += 1
            continue
        found = _quote_start(lines, i)
        if found is None:
            i += 1
            continue
        end, strong = found
        nxt = _next_text(lines, end)
        if nxt is not None and lines[nxt].depth > 0:
            k = _quote_end(lines, nxt)
            for j in range(i, k):
                mask[j] = True
            i = k
        elif strong:
            for j in range(i, len(lines)):
                mask[j] = True
            break
        else:
            i += 1
    return mask


# --- Signatures ------------------------------------------------------------------------------

_SIG_DELIMITER = re.compile(r"^\s*(--|—|__)\s*$")
_DEVICE = re.compile(
    r"^\s*(sent from my .{2,50}|sent from (mail|outlook|yahoo mail|gmail|yandex|mail\.ru|samsung|my mobile).{0,50}|"
    r"sent (with|via|using) .{2,50}|get outlook for .{2,30}|"
    r"отправлено (с|со|из|через) .{2,60}|отправлено с моего .{2,50}|получить outlook для .{2,30}|"
    r"послано (с|со|из|через) .{2,50}|"
    r"envoyé de mon .{2,40}|von meinem .{2,40} gesendet|enviado desde mi .{2,40}|inviato da .{2,40})"
    r"(\s*<[^<>\s]+>)?\s*$",  # Outlook mobile's plain text adds the link: "Get Outlook for iOS<https://…>"
    re.I,
)


def split_signature(lines: list[str]) -> tuple[list[str], list[str]]:
    """The reply's own lines and its signature: from a "-- " line on, or a trailing
    "Sent from my iPhone"-style line the client added."""
    cut = len(lines)
    for i, line in enumerate(lines):
        if _SIG_DELIMITER.match(line):
            cut = i
            break
    # A device line counts only where nothing but blank lines or the signature follows it.
    for i in range(cut - 1, -1, -1):
        if not lines[i].strip():
            continue
        if _DEVICE.match(lines[i]):
            cut = i
            continue
        break
    body, signature = lines[:cut], lines[cut:]
    if signature and _SIG_DELIMITER.match(signature[0]):
        signature = signature[1:]
    return body, signature


# --- All together ----------------------------------------------------------------------------


def _tidy(lines: list[str]) -> str:
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in lines)).strip()


def extract(lines: list[Line], original: str | None = None) -> Extracted:
    mask = quoted_mask(lines)
    kept: list[str] = []
    for line, quoted in zip(lines, mask, strict=True):
        if quoted:
            if kept and kept[-1]:
                kept.append("")  # an inline answer's parts stay apart
            continue
        kept.append(line.text)
    body, signature = split_signature(kept)
    original = render(lines) if original is None else original
    text = _tidy(body)
    if not text:  # nothing of their own (a bare forward, a quote-only message): keep it all
        return Extracted(original, None, original)
    return Extracted(text, _tidy(signature) or None, original, quoted=any(mask))


def extract_text(text: str) -> Extracted:
    # Plain text is kept exactly as it came.
    return extract(text_lines(text), text.replace("\r\n", "\n").strip())


def extract_html(markup: str) -> Extracted:
    return extract(html_lines(markup))
