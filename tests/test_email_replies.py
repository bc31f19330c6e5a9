"""Reply extraction over replies as real clients send them (tests/fixtures/email/replies/, one
.eml per client and language, expected.json with the text and signature operators must see),
through the adapter's parse that the SMTP listener and IMAP polling use."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.base import InboundMessage
from integrations.email import EmailAdapter
from integrations.email_quotes import extract_html, extract_text
from tests.email_reply_rates import CONFIG, REPLIES, Case, cases, parse, table

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
async def test_the_reply_and_signature_are_told_apart_from_the_quote(case: Case) -> None:
    msg = await parse(case.name)
    assert (msg.text, msg.signature) == (case.text, case.signature)
    # What was cut stays viewable: the original carries the quoted operator message.
    assert msg.original is not None and "RA123456789RU" in msg.original.replace("\n", " ")


async def test_pass_rate_by_client_and_language() -> None:
    report, passed, total = await table()
    print("\n" + report)  # the table for the issue: pytest -s tests/test_email_replies.py -k rate
    assert total >= 30 and passed / total >= 0.95, report


@pytest.mark.parametrize("text", [
    # A delivery request is not an Outlook header block.
    "From: Moscow\nTo: Kazan\nDate: 1 December\n\nHow much would that cost?",
    "От: Москва\nКому: Казань\nДата: 1 декабря\n\nСколько будет стоить?",
    # A time and a colon alone are no quote header.
    "Встреча 30.11.2026 в 10:00, адрес такой:\nул. Ленина, 5.",
    "Please call me on Monday at 10:00, here is my number:\n+7 495 123-45-67",
    # "Sent from ..." in the middle of the text is the text.
    "Sent from my iPhone is what my old mails said.\nAnyway, where is my order?",
])
def test_plain_text_that_only_looks_like_a_quote_is_kept_whole(text: str) -> None:
    got = extract_text(text)
    assert (got.text, got.signature) == (text, None)


def test_html_source_line_breaks_are_not_text_line_breaks() -> None:
    got = extract_html("<p class=MsoNormal>One long\nsentence, wrapped\r\nby the client.</p>")
    assert got.text == "One long sentence, wrapped by the client."


def test_a_message_that_is_all_quote_keeps_its_text() -> None:
    got = extract_text("> only a quote\n> nothing else")
    assert got.text == "> only a quote\n> nothing else"


def test_a_forward_is_content_not_history() -> None:
    text = ("Посмотрите, пожалуйста, письмо от курьера.\n\n---------- Forwarded message ---------\n"
            "От: Курьер <courier@delivery.example>\nDate: пн, 30 нояб. 2026 г. в 09:00\nSubject: Доставка\n"
            "To: <ivan@example.org>\n\nЗаказ не доставлен: нет пропуска.")
    assert extract_text(text).text == text
    gmail = ('<div dir="ltr">See the courier\'s mail below.<br><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
             "---------- Forwarded message ---------<br>From: <b>Courier</b> &lt;courier@delivery.example&gt;<br>"
             "Date: Mon, Nov 30, 2026 at 9:00 AM<br>Subject: Delivery<br></div><br>Not delivered: no pass.</div></div>")
    got = extract_html(gmail)
    assert "See the courier's mail below." in got.text and "Not delivered: no pass." in got.text


def test_a_signature_with_a_top_rule_does_not_cut_the_text_above_it() -> None:
    got = extract_html('<div>Please call me back.</div><div style="border-top:1px solid #ccc">Ivan Petrov, +7 495 123-45-67</div>')
    assert got.text == "Please call me back.\nIvan Petrov, +7 495 123-45-67"


def test_huge_lines_and_many_lines_stay_quick() -> None:
    import time
    started = time.perf_counter()
    extract_text(("a" * 50 + "@b 10:00 <x " * 20_000) + ":")
    extract_text("\n".join(f"line {i}: 10:00 <x@y>" for i in range(20_000)))
    extract_html("<div>" + "<p>От: x</p><p>Кому: y</p>" * 5_000 + "</div>")
    extract_text("От: x\nКому: y\n" * 10_000)
    assert time.perf_counter() - started < 5


PIECES = ["\n", ">", "<", "-- ", ":", "От: ", "Тема: ", "Sent: ", "<blockquote>", "</blockquote>", "</div>", "<p>", "<br>",
          "\x00", "&nbsp;", "\u00a0", "@", "10:00", "<x@y>", "wrote:", '<div class="gmail_quote">', '<div id="divRplyFwdMsg">']


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=8), max_size=40).map("".join))
def test_any_body_reads_without_error_and_loses_no_text(body: str) -> None:
    """A parse error would refuse the mail (451) on every retry; an empty text would drop it."""
    for got in (extract_text(body), extract_html(body)):
        if got.original.strip():
            assert got.text.strip() or got.signature


async def test_an_outlook_forward_keeps_what_was_forwarded() -> None:
    raw = (REPLIES / "outlook_desktop_en.eml").read_bytes().replace(b"Subject: RE: Order #42", b"Subject: FW: Order #42")
    [msg] = await EmailAdapter().parse(CONFIG, {"raw": raw, "rcpt": []})
    assert isinstance(msg, InboundMessage)
    assert msg.text.startswith("Yes, please go ahead") and "RA123456789RU" in msg.text and msg.signature is None


@pytest.mark.parametrize("header", [
    "пн, 30 нояб. 2026 г. в 10:00, Acme Support <support@acme.test>:",  # Gmail
    "пн, 30 нояб. 2026 г. в 10:00, Служба поддержки интернет-магазина Acme <\nsupport@acme.test>:",  # Gmail, wrapped
    "В пн, 30 нояб. 2026 в 10:00 Acme Support написал(а):",  # Gmail, older
    "30 нояб. 2026 г., в 10:00, Acme Support <support@acme.test> написал(а):",  # Apple Mail
    "30 нояб. 2026 г. 10:00 пользователь \"Acme Support\" <support@acme.test> написал:",  # Android Email
    "Понедельник, 30 ноября 2026, 10:00 +03:00 от Acme Support <support@acme.test>:",  # mail.ru
    "26.06.2014, 14:41, \"Acme Support\" <support@acme.test>:",  # Yandex
    "30.11.2026 10:00, Acme Support пишет:",  # Thunderbird
    "Вы писали 30 ноября 2026 г., 10:00:03:",  # The Bat!
    "30.11.2026, 10:00, Acme Support <support@acme.test> написал(а):",  # Rambler
    "On Mon, Nov 30, 2026 at 10:00 AM Acme Support <support@acme.test> wrote:",  # Gmail
    "On Mon, Nov 30, 2026 at 10:00 AM Acme Support Customer Care <\nsupport@acme.test> wrote:",  # Gmail, wrapped
    "On Mon, Nov 30, 2026 at 10:00 AM Acme Support <support@acme.test>\nwrote:",  # Gmail, wrapped before "wrote"
    "On 30 Nov 2026, at 10:00, Acme Support <support@acme.test> wrote:",  # Apple Mail
    "On 11/30/26 10:00 AM, Acme Support wrote:",  # Thunderbird
    "Am Mo., 30. Nov. 2026 um 10:00 Uhr schrieb Acme Support <support@acme.test>:",  # Gmail, German
    "Le lun. 30 nov. 2026 à 10:00, Acme Support <support@acme.test> a écrit :",  # Gmail, French
])
def test_quote_headers_of_each_client_start_the_quote(header: str) -> None:
    quoted = extract_text(f"Спасибо, понятно.\n\n{header}\n\n> Заказ отправлен.\n> Acme")
    assert (quoted.text, quoted.quoted) == ("Спасибо, понятно.", True)
    below = extract_text(f"{header}\n> Заказ отправлен.\n\nСпасибо, понятно.")  # bottom-posted
    assert below.text == "Спасибо, понятно."


@pytest.mark.parametrize("block", [
    "-----Original Message-----\nFrom: Acme Support <support@acme.test>\nSent: Monday, November 30, 2026 10:00 AM",
    "-----Исходное сообщение-----\nОт: Acme Support [mailto:support@acme.test]\nОтправлено: 30 ноября 2026 г. 10:00",
    "-------- Исходное сообщение --------\nОт: Acme Support <support@acme.test>\nДата: 30.11.2026 10:00",
    "________________________________\nОт: Acme Support <support@acme.test>\nОтправлено: 30 ноября 2026 г. 10:00\n"
    "Кому: Иван\nТема: Заказ",
    "От: Acme Support <support@acme.test>\nОтправлено: 30 ноября 2026 г. 10:00\nКому: Иван\nТема: Заказ",
    "*От:* Acme Support <support@acme.test>\n*Дата:* понедельник, 30 ноября 2026 г. в 10:00\n*Кому:* Иван\n*Тема:* Заказ",
    "From: Acme Support\nSent: Monday, November 30, 2026 10:00 AM\nTo: Anna Smith\nSubject: Order #42",
])
def test_outlook_style_header_blocks_cut_the_unmarked_history_below(block: str) -> None:
    got = extract_text(f"Да, отправляйте.\n\n{block}\n\nЗаказ отправлен.\n\n--\nAcme Support")
    assert (got.text, got.signature) == ("Да, отправляйте.", None)


def test_html_with_control_characters_still_has_its_text() -> None:
    assert extract_html("<div>Hello\x00 there\x0b</div><script>x</script><div>Bye</div>").text == "Hello there\nBye"
