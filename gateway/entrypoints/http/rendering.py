"""A pre-trial report as a page a judge can read, in Russian or Kazakh.

The signed XML is what the court's system registers; this rendering is for
people. Every value is escaped; nothing is fetched from outside the page.
"""

from __future__ import annotations

from html import escape
from typing import Any

_LABELS: dict[str, dict[str, str]] = {
    "title": {"ru": "Досудебный доклад", "kk": "Сотқа дейінгі баяндама"},
    "version": {"ru": "версия", "kk": "нұсқа"},
    "case": {"ru": "Дело ЕРДР", "kk": "СДТБ ісі"},
    "court": {"ru": "Суд", "kk": "Сот"},
    "requested_by": {"ru": "Запросил", "kk": "Сұраған"},
    "due": {"ru": "Срок", "kk": "Мерзімі"},
    "identity": {"ru": "Личность", "kk": "Жеке басы"},
    "criminal_history": {"ru": "Судимости", "kk": "Соттылығы"},
    "custody_history": {"ru": "Содержание под стражей", "kk": "Күзетпен ұстау"},
    "social_situation": {"ru": "Социальное положение", "kk": "Әлеуметтік жағдайы"},
    "health_summary": {"ru": "Здоровье", "kk": "Денсаулығы"},
    "risk_needs": {"ru": "Оценка рисков и потребностей", "kk": "Тәуекелдер мен қажеттіліктерді бағалау"},
    "officer_conclusion": {"ru": "Заключение сотрудника пробации", "kk": "Пробация қызметкерінің қорытындысы"},
    "unavailable": {"ru": "Сведения недоступны", "kk": "Мәліметтер қолжетімсіз"},
    "none": {"ru": "нет", "kk": "жоқ"},
    "source": {"ru": "Источник", "kk": "Дереккөз"},
    "status": {"ru": "Состояние", "kk": "Күйі"},
    "fetched": {"ru": "Получено", "kk": "Алынған уақыты"},
    "provenance": {"ru": "Происхождение сведений", "kk": "Мәліметтердің шығу тегі"},
    "continuous_treatment": {"ru": "Нуждается в непрерывном лечении", "kk": "Үздіксіз емдеуді қажет етеді"},
    "disability": {"ru": "Инвалидность, группа", "kk": "Мүгедектік, тобы"},
    "yes": {"ru": "да", "kk": "иә"},
    "no": {"ru": "нет", "kk": "жоқ"},
    "iin": {"ru": "ИИН", "kk": "ЖСН"},
    "born": {"ru": "Дата рождения", "kk": "Туған күні"},
    "article": {"ru": "ст.", "kk": "б."},
    "registrations": {"ru": "Диспансерный учёт", "kk": "Диспансерлік есеп"},
}


def render_report(report: dict[str, Any], language: str) -> str:
    def t(key: str) -> str:
        return _LABELS[key][language]

    sections = report["sections"]
    parts = [
        "<!doctype html>",
        f'<html lang="{language}"><head><meta charset="utf-8">',
        f"<title>{t('title')} {escape(report['report_id'])}</title>",
        "<style>body{font-family:serif;max-width:50em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .5em}"
        ".gap{color:#a00}</style></head><body>",
        f"<h1>{t('title')} <small>({t('version')} {int(report['version'])})</small></h1>",
        "<dl>",
        f"<dt>{t('case')}</dt><dd>{escape(report['case']['erdr_number'])}</dd>",
        f"<dt>{t('court')}</dt><dd>{escape(report['court']['name'])}</dd>",
        f"<dt>{t('requested_by')}</dt><dd>{escape(report['requesting_body']['name'])}</dd>",
        f"<dt>{t('due')}</dt><dd>{escape(report['due_date'])}</dd>",
        "</dl>",
    ]
    for name in ("identity", "criminal_history", "custody_history", "social_situation", "health_summary",
                 "risk_needs", "officer_conclusion"):
        parts.append(f"<h2>{t(name)}</h2>")
        content = sections.get(name)
        if content is None:
            reason = report["provenance"][name].get("reason") or ""
            parts.append(f'<p class="gap">{t("unavailable")}: {escape(reason)}</p>')
        else:
            parts.append(_section(name, content, t))
    parts += [f"<h2>{t('provenance')}</h2>", "<table>",
              f"<tr><th></th><th>{t('source')}</th><th>{t('status')}</th><th>{t('fetched')}</th></tr>"]
    for name, entry in report["provenance"].items():
        parts.append(
            f"<tr><td>{t(name)}</td><td>{escape(entry['source'])}</td><td>{escape(entry['status'])}</td>"
            f"<td>{escape(entry['fetched_at'])}</td></tr>"
        )
    parts += ["</table>", "</body></html>"]
    return "\n".join(parts)


def _section(name: str, content: Any, t) -> str:
    if name == "identity":
        full_name = " ".join(filter(None, (content["surname"], content["given_name"], content.get("patronymic"))))
        return (f"<p>{escape(full_name)}<br>{t('iin')}: {escape(content['iin'])}<br>"
                f"{t('born')}: {escape(content['birth_date'])}</p>")
    if name == "criminal_history":
        if not content:
            return f"<p>{t('none')}</p>"
        items = []
        for conviction in content:
            articles = ", ".join(f"{t('article')} {escape(a['article'])}" + (f" ч.{a['part']}" if a.get("part") else "")
                                 for a in conviction["articles"])
            sentence = conviction["sentence"]
            term = f", {sentence['term_months']} мес." if sentence.get("term_months") else ""
            items.append(f"<li>{escape(conviction['judgment_date'])} — {escape(conviction['court'])}: {articles}; "
                         f"{escape(sentence['kind'])}{term}</li>")
        return "<ul>" + "".join(items) + "</ul>"
    if name == "custody_history":
        if not content:
            return f"<p>{t('none')}</p>"
        return "<ul>" + "".join(
            f"<li>{escape(e['facility']['name'])}: {escape(e['admission_date'])} — {escape(e.get('release_date') or '…')}</li>"
            for e in content
        ) + "</ul>"
    if name == "health_summary":
        rows = []
        if "continuous_treatment" in content:
            rows.append(f"{t('continuous_treatment')}: {t('yes') if content['continuous_treatment'] else t('no')}")
        elif "registrations" in content:  # absent when the policy withheld them from this reader
            registrations = ", ".join(f"{escape(r['programme'])} ({escape(r['icd10'])})" for r in content["registrations"])
            rows.append(f"{t('registrations')}: {registrations or t('none')}")
        disability = content.get("disability")
        rows.append(f"{t('disability')}: {escape(str(disability['group'])) if disability else t('none')}")
        return "<p>" + "<br>".join(rows) + "</p>"
    if name == "officer_conclusion":
        return "<p>" + escape(content).replace("\n", "<br>") + "</p>"
    return "<dl>" + "".join(
        f"<dt>{escape(str(key))}</dt><dd>{escape(_plain(value))}</dd>" for key, value in content.items() if key != "iin"
    ) + "</dl>"


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    return "" if value is None else str(value)
