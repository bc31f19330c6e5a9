"""The inbox's catalogues (inbox_ui/i18n/*.json) say the same things in every language: the same
keys, the plural forms each language needs, the same {placeholders}, and every key the inbox
asks for (t("…") in inbox_ui/js, data-i18n* in index.html) is there."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from chat_server.actions.operators import LANGUAGES

ROOT = Path(__file__).resolve().parent.parent
UI = ROOT / "inbox_ui"
# The plural categories Intl.PluralRules gives for whole numbers (and "other" for the rest).
PLURALS = {"en": {"one", "other"}, "ru": {"one", "few", "many", "other"}}
# Errors the inbox itself raises, not the server.
CLIENT_ERRORS = {"network", "http", "upload_failed", "download_failed"}


def catalogue(lang: str) -> dict[str, Any]:
    data = json.loads((UI / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in sorted((UI / "js").glob("*.js")):
        keys |= set(re.findall(r"\bt\(\s*\"([^\"]+)\"", path.read_text(encoding="utf-8")))
    keys |= set(re.findall(r'\bdata-i18n(?:-[a-z-]+)?="([^"]+)"', (UI / "index.html").read_text(encoding="utf-8")))
    return keys


def placeholders(entry: str | dict[str, str]) -> set[str]:
    texts = entry.values() if isinstance(entry, dict) else [entry]
    return {name for text in texts for name in re.findall(r"\{(\w+)\}", text)}


def problems(catalogues: dict[str, dict[str, Any]], used: set[str]) -> list[str]:
    found = []
    every = set().union(*(set(c) for c in catalogues.values()))
    english = catalogues["en"]
    for lang, texts in catalogues.items():
        found += [f"{lang}: no text for {key}" for key in sorted(every - set(texts))]
        found += [f"{lang}: {key} is used by the inbox but missing" for key in sorted(used - set(texts))]
        for key, entry in texts.items():
            if isinstance(entry, dict):
                if set(entry) != PLURALS[lang]:
                    found.append(f"{lang}: {key} has forms {sorted(entry)}, {lang} needs {sorted(PLURALS[lang])}")
                if "count" not in placeholders(entry):
                    found.append(f"{lang}: plural {key} never says {{count}}")
            elif not isinstance(entry, str) or not entry:
                found.append(f"{lang}: {key} is not a text")
            if key in english and isinstance(entry, dict) != isinstance(english[key], dict):
                found.append(f"{lang}: {key} is plural in one language only")
            if key in english and placeholders(entry) != placeholders(english[key]):
                found.append(f"{lang}: {key} has {sorted(placeholders(entry))}, en {sorted(placeholders(english[key]))}")
    return found


def test_every_language_has_every_text_the_inbox_uses() -> None:
    assert set(LANGUAGES) == set(PLURALS) == {p.stem for p in (UI / "i18n").glob("*.json")}
    used = used_keys()
    assert len(used) > 200  # the regex still finds the calls
    catalogues = {lang: catalogue(lang) for lang in LANGUAGES}
    assert problems(catalogues, used) == []


def test_a_missing_or_malformed_text_is_caught() -> None:
    catalogues = {lang: catalogue(lang) for lang in LANGUAGES}
    del catalogues["ru"]["inbox.pick"]
    catalogues["ru"]["inbox.count"] = {"one": "{count} диалог", "other": "{count} диалога"}
    catalogues["en"]["inbox.me"] = "{nam} (me)"
    found = problems(catalogues, used_keys() | {"nowhere.yet"})
    assert "ru: no text for inbox.pick" in found
    assert "ru: inbox.pick is used by the inbox but missing" in found
    assert "en: nowhere.yet is used by the inbox but missing" in found
    assert any(p.startswith("ru: inbox.count has forms") for p in found)
    assert any(p.startswith("ru: inbox.me has") for p in found)


def test_no_text_is_left_unused() -> None:
    used = used_keys()
    unused = [key for key in catalogue("en") if key not in used and not key.startswith("error.")]
    assert unused == []


def test_error_texts_name_codes_the_server_sends() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "chat_server").rglob("*.py"))
    stale = [key for key in catalogue("en") if key.startswith("error.")
             and key[6:] not in CLIENT_ERRORS and f'"{key[6:]}"' not in source]
    assert stale == []
