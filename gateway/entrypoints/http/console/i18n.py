"""The console's languages: Russian, Kazakh and English, from gettext catalogues.

The ``.po`` files in ``locale/`` are the catalogues themselves, read with Babel at start
(no compile step, so a wheel and a checkout behave alike). A person chooses the language
(a cookie); until then it follows ``Accept-Language``, and English is the fallback.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel import Locale, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

__all__ = ["DEFAULT", "LANGUAGES", "choose", "translations"]

LANGUAGES = ("ru", "kk", "en")
DEFAULT = "en"
DOMAIN = "console"
LANGUAGE_COOKIE = "console_lang"
_LOCALE = Path(__file__).resolve().parent / "locale"


@cache
def translations(language: str) -> gettext.NullTranslations:
    path = _LOCALE / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        catalogue = read_po(po, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def language_name(language: str) -> str:
    return Locale.parse(language).get_display_name(language).capitalize()


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The person's choice, else the best of ``Accept-Language``, else English."""
    if cookie in LANGUAGES:
        return cookie
    preferred = []
    for item in (accept_language or "").split(","):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            preferred.append((quality, tag.replace("-", "_")))
    ordered = [tag for _, tag in sorted(preferred, key=lambda pair: -pair[0])]
    return negotiate_locale(ordered, LANGUAGES, sep="_") or DEFAULT
