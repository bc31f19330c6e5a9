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

import functools
import re
from dataclasses import dataclass

from .email_html import SIG_DELIMITER, Line, html_lines


@dataclass
class Extracted:
    text: str  # what the person wrote now, without quotes and signature
    signature: str | None
    original: str  # the whole body as text, quoted lines marked with "> "
    quoted: bool = False  # whether any quoted history was found (and cut)


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


def html_to_text(markup: str) -> str:
    """Readable text of an HTML message, quoted lines marked with "> "."""
    return render(html_lines(markup))


def render(lines: list[Line]) -> str:
    text = "\n".join(("> " * line.depth + line.text).rstrip() if line.text else ">" * line.depth
                     for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


# --- Quote headers ---------------------------------------------------------------------------

_TIME = r"\d{1,2}[:.]\d{2}"
_EMAIL = r"[^\s<>@]+@[^\s<>@]+"
# "… wrote:" in the languages our customers write in, as clients print it.
_WROTE_WORDS = ("wrote", "написал(а)", "написала", "написал", "пишет", "писал(а)", "schrieb", "a écrit", "escribió",
                "ha scritto", "schreef", "skrev", "napsal(a)", "napisał(a)", "pisze", "escreveu", "kirjoitti", "yazdı",
                "írta", "napísal(a)")
_WROTE = "|".join(re.escape(word) for word in _WROTE_WORDS)
_ATTRIBUTION = [
    # Gmail, Apple Mail, Thunderbird in English: "On Mon, Nov 30, 2026 at 10:00 AM Ivan <i@x> wrote:"
    re.compile(r"^On\b(?=.*\d).{4,300}\bwrote\s*:?$", re.I),
    # Any client, any language: a date or time, and an address or a "wrote", before a colon:
    # "пн, 30 нояб. 2026 г. в 10:00, Иван <ivan@…>:", "26.06.2014, 14:41, "Имя" <…>:",
    # "Понедельник, 30 ноября 2026, 10:00 +03:00 от Иван <…>:", "… пользователь "…" <…> написал:"
    re.compile(rf"^(?=.*{_TIME})(?=.*(<{_EMAIL}>|(?<!\w)({_WROTE})(?!\w))).{{6,400}}:$", re.I),
    re.compile(rf"^(?=.*\d{{4}})(?=.*(?<!\w)({_WROTE})\s*:?$).{{6,400}}$", re.I),
]
# Weaker: enough when a quoted block follows right below.
_WEAK_ATTRIBUTION = re.compile(rf"^(?=.*({_EMAIL}|{_TIME}|\d{{4}}|(?<!\w)({_WROTE})(?!\w))).{{3,400}}:$", re.I)
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
        # Every quote header ends in a colon or a "wrote": a cheap test before the patterns.
        if text is not None and (text.endswith(":") or text.lower().endswith(_WROTE_WORDS)) \
                and any(p.match(text) for p in patterns):
            return i + count
    return None


@functools.lru_cache(maxsize=4096)
def _header_name(text: str) -> str | None:
    found = _HEADER.match(text)
    return found.group("name").lower() if found else None


def _header_block(lines: list[Line], i: int) -> int | None:
    """An Outlook-style block ("From:", "Sent:", "To:", "Subject:", in any order, values perhaps
    wrapped) starting at i: its end, if it names the sender and at least two more fields."""
    names: list[str] = []
    j, depth = i, lines[i].depth
    while j < len(lines) and j - i < 16 and lines[j].depth == depth and lines[j].text.strip():
        name = _header_name(lines[j].text)
        if name:
            names.append(name)
        elif not names or j - i > 8:
            break  # a wrapped value continues a header; anything else ends the block
        j += 1
    has_from = any(_FROM_HEADER.match(n) for n in names)
    if has_from and any(_MAIL_HEADER.match(n) for n in names) and len(set(names)) >= 3 and _header_name(lines[i].text):
        return j
    return None


def _quote_start(lines: list[Line], i: int) -> tuple[int, bool] | None:
    """If a quote header starts at line i: where it ends, and whether it is strong enough to cut
    what follows even when that is not marked as quoted."""
    text = lines[i].text
    if len(text) > 600:
        return None  # no client writes a quote header that long; and the patterns stay cheap
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
    nxt = _next_text(lines, end) if end is not None else None
    if end is not None and nxt is not None and lines[nxt].depth > 0:
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
        if SIG_DELIMITER.match(line):
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
    if signature and SIG_DELIMITER.match(signature[0]):
        signature = signature[1:]
    return body, signature


# --- All together ----------------------------------------------------------------------------


def _tidy(lines: list[str]) -> str:
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in lines)).strip()


_FORWARD = re.compile(
    r"^[\s>*-]*(forwarded message|begin forwarded message|пересылаемое сообщение|переадресованное сообщение|"
    r"начало переадресованного сообщения|пересланное сообщение|weitergeleitete nachricht|message transféré|"
    r"mensaje reenviado|messaggio inoltrato)[\s:*-]*$", re.I)


def _forwarded(lines: list[Line], mask: list[bool]) -> bool:
    """A forward: its marker comes before (or opens) the first quote. What was forwarded is the
    content the person sends us, so nothing is cut."""
    first = next((i for i, quoted in enumerate(mask) if quoted), None)
    if first is None:
        return False
    opening = [line for line in lines[first:] if line.text.strip()][:2]
    return any(_FORWARD.match(line.text) for line in lines[:first] + opening)


def extract(lines: list[Line], original: str | None = None) -> Extracted:
    mask = quoted_mask(lines)
    if _forwarded(lines, mask):
        whole = render(lines) if original is None else original
        return Extracted(whole, None, whole)
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
