"""Pass rate of reply extraction over the client fixtures, by client and language.

    .venv/bin/python -m tests.email_reply_rates        # the table; failures listed below it

Each fixture in tests/fixtures/email/replies/ is a reply as that client sends it; expected.json
holds the text and signature we must show. The test (tests/test_email_replies.py) asserts each.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integrations.base import InboundMessage
from integrations.email import EmailAdapter, EmailConfig

REPLIES = Path(__file__).resolve().parent / "fixtures" / "email" / "replies"
CONFIG = EmailConfig(address="support@acme.test")


@dataclass
class Case:
    name: str
    client: str
    language: str
    text: str
    signature: str | None


def cases() -> list[Case]:
    expected: dict[str, dict[str, Any]] = json.loads((REPLIES / "expected.json").read_text())
    return [Case(name, e["client"], e["language"], e["text"], e["signature"]) for name, e in sorted(expected.items())]


async def parse(name: str) -> InboundMessage:
    """Through the adapter's parse, as the SMTP listener and IMAP polling hand mail over."""
    [msg] = await EmailAdapter().parse(CONFIG, {"raw": (REPLIES / f"{name}.eml").read_bytes(), "rcpt": []})
    assert isinstance(msg, InboundMessage)
    return msg


async def table() -> tuple[str, int, int]:
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    failures = []
    for case in cases():
        msg = await parse(case.name)
        ok = (msg.text, msg.signature) == (case.text, case.signature)
        totals[(case.client, case.language)][0] += ok
        totals[(case.client, case.language)][1] += 1
        if not ok:
            failures.append(f"{case.name}: got {msg.text!r} / {msg.signature!r}")
    passed, total = sum(p for p, _ in totals.values()), sum(t for _, t in totals.values())
    rows = ["| client | language | passed/total |", "| --- | --- | --- |"]
    rows += [f"| {client} | {language} | {p}/{t} |" for (client, language), (p, t) in sorted(totals.items())]
    rows.append(f"| **all** | | **{passed}/{total} ({100 * passed / total:.0f} %)** |")
    return "\n".join(rows + [""] + failures), passed, total


if __name__ == "__main__":
    print(asyncio.run(table())[0])
