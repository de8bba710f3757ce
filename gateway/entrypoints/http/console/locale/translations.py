"""The console's Russian and Kazakh wording, kept as one table; ``python -m
gateway.entrypoints.http.console.locale.translations`` (run by ``make console-messages``) extracts the
messages from the code and templates with Babel and writes the three ``.po`` catalogues from it."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import write_po

# msgid -> (ru, kk). Plurals: msgid is the singular, and the value holds a tuple of forms per language.
TEXTS: dict[str, tuple] = {
    "Reentry gateway console": ("Консоль шлюза ресоциализации", "Ресоциализация шлюзінің консолі"),
    "Skip to content": ("Перейти к содержанию", "Мазмұнға өту"),
    "Main": ("Главное меню", "Негізгі мәзір"),
    "Language": ("Язык", "Тіл"),
    "Sign in": ("Вход", "Кіру"),
    "Sign out": ("Выйти", "Шығу"),
    "Username": ("Имя пользователя", "Пайдаланушы аты"),
    "Password": ("Пароль", "Құпиясөз"),
    "Wrong username or password.": ("Неверное имя пользователя или пароль.", "Пайдаланушы аты немесе құпиясөз қате."),
    "Too many failed sign-ins. Sign-in is blocked for this account or address; try again in %(minutes)d min.": (
        "Слишком много неудачных попыток входа. Вход для этой учётной записи или адреса заблокирован; "
        "повторите через %(minutes)d мин.",
        "Сәтсіз кіру әрекеттері тым көп. Бұл есептік жазба немесе мекенжай үшін кіру бұғатталды; "
        "%(minutes)d мин кейін қайталаңыз."),
    "Dashboard": ("Обзор", "Шолу"),
    "Messages": ("Сообщения", "Хабарламалар"),
    "Message": ("Сообщение", "Хабарлама"),
    "Dead letters": ("Недоставленные", "Жеткізілмегендер"),
    "Release cases": ("Дела об освобождении", "Босату істері"),
    "Release case": ("Дело об освобождении", "Босату ісі"),
    "Indicators": ("Индикаторы", "Индикаторлар"),
    "Pre-trial reports": ("Досудебные доклады", "Сотқа дейінгі баяндамалар"),
    "Pre-trial report": ("Досудебный доклад", "Сотқа дейінгі баяндама"),
    "Subject report": ("Отчёт по лицу", "Тұлға бойынша есеп"),
    "Audit log": ("Журнал аудита", "Аудит журналы"),
    "operator": ("оператор", "оператор"),
    "probation_officer": ("сотрудник пробации", "пробация қызметкері"),
    "oversight": ("надзор", "қадағалау"),
    "auditor": ("аудитор", "аудитор"),
    "Refresh": ("Обновить", "Жаңарту"),
    "Destinations": ("Получатели", "Алушылар"),
    "as of": ("на", "уақыты"),
    "Member": ("Участник", "Қатысушы"),
    "Queued": ("В очереди", "Кезекте"),
    "In flight": ("Доставляются", "Жеткізілуде"),
    "Delivered (last hour)": ("Доставлено (за час)", "Жеткізілді (соңғы сағат)"),
    "Breaker": ("Автомат", "Ажыратқыш"),
    "closed": ("закрыт", "жабық"),
    "open": ("открыт", "ашық"),
    "half_open": ("полуоткрыт", "жартылай ашық"),
    "Last error": ("Последняя ошибка", "Соңғы қате"),
    "Queued messages and dead letters by destination (the table above has the same figures)": (
        "Сообщения в очереди и недоставленные по получателям (те же данные — в таблице выше)",
        "Алушылар бойынша кезектегі және жеткізілмеген хабарламалар (дәл сол сандар жоғарыдағы кестеде)"),
    "Store": ("Хранилище", "Қойма"),
    "answering": ("отвечает", "жауап береді"),
    "not answering": ("не отвечает", "жауап бермейді"),
    "Latest signed tree head": ("Последняя подписанная вершина дерева", "Соңғы қол қойылған ағаш төбесі"),
    "size": ("размер", "өлшемі"),
    "signed": ("подписана", "қол қойылды"),
    "root": ("корень", "түбір"),
    "none yet": ("пока нет", "әзірге жоқ"),
    "Newest first": ("Сначала новые", "Алдымен жаңалары"),
    "Select": ("Выбрать", "Таңдау"),
    "Message id": ("Идентификатор сообщения", "Хабарлама идентификаторы"),
    "Sender": ("Отправитель", "Жіберуші"),
    "Recipient": ("Получатель", "Алушы"),
    "Service": ("Сервис", "Сервис"),
    "Status": ("Статус", "Мәртебе"),
    "Attempts": ("Попытки", "Әрекеттер"),
    "Accepted": ("Принято", "Қабылданды"),
    "Nothing found.": ("Ничего не найдено.", "Ештеңе табылмады."),
    "Older": ("Старше", "Ескілері"),
    "More": ("Ещё", "Тағы"),
    "Search messages": ("Поиск сообщений", "Хабарламаларды іздеу"),
    "any": ("любой", "кез келген"),
    "Search": ("Найти", "Іздеу"),
    "Correlation id": ("Идентификатор корреляции", "Корреляция идентификаторы"),
    "Accepted from": ("Принято с", "Қабылданған уақыты, бастап"),
    "Accepted until": ("Принято до", "Қабылданған уақыты, дейін"),
    "accepted": ("принято", "қабылданды"),
    "in_flight": ("доставляется", "жеткізілуде"),
    "delivered": ("доставлено", "жеткізілді"),
    "dead": ("не доставлено", "жеткізілмеді"),
    "retry": ("повтор", "қайталау"),
    "queued": ("в очереди", "кезекте"),
    "Choose one of the listed states.": ("Выберите одно из перечисленных состояний.", "Тізімдегі күйлердің бірін таңдаңыз."),
    "Give a date and time as YYYY-MM-DDTHH:MM.": ("Укажите дату и время как ГГГГ-ММ-ДДTЧЧ:ММ.",
                                                  "Күн мен уақытты ЖЖЖЖ-АА-ККTСС:ММ түрінде көрсетіңіз."),
    "Give a date as YYYY-MM-DD.": ("Укажите дату как ГГГГ-ММ-ДД.", "Күнді ЖЖЖЖ-АА-КК түрінде көрсетіңіз."),
    "Sender's message id": ("Идентификатор отправителя", "Жіберушінің идентификаторы"),
    "Purpose": ("Цель", "Мақсат"),
    "Delivered": ("Доставлено", "Жеткізілді"),
    "Replays": ("Повторы", "Қайта жіберулер"),
    "Size": ("Размер", "Өлшемі"),
    "bytes": ("байт", "байт"),
    "No attempt yet.": ("Попыток ещё не было.", "Әрекет әлі болған жоқ."),
    "Payload": ("Содержимое", "Мазмұны"),
    "This view of the payload was recorded in the audit log under your name.": (
        "Этот просмотр содержимого записан в журнал аудита под вашим именем.",
        "Мазмұнды бұл қарау сіздің атыңызбен аудит журналына жазылды."),
    "The payload may hold personal data. It is shown only for a reason you give, and that view is recorded in the audit log.": (
        "Содержимое может содержать персональные данные. Оно показывается только по указанной вами причине, "
        "и просмотр записывается в журнал аудита.",
        "Мазмұнда дербес деректер болуы мүмкін. Ол тек сіз көрсеткен себеппен ғана көрсетіледі, "
        "ал қарау аудит журналына жазылады."),
    "Reason": ("Причина", "Себеп"),
    "Show payload": ("Показать содержимое", "Мазмұнды көрсету"),
    "Say why you need to see the payload (at least 10 characters).": (
        "Укажите, зачем вам нужно содержимое (не менее 10 символов).",
        "Мазмұн не үшін қажет екенін көрсетіңіз (кемінде 10 таңба)."),
    "Select at least one dead letter to replay.": ("Выберите хотя бы одно недоставленное сообщение.",
                                                   "Кемінде бір жеткізілмеген хабарламаны таңдаңыз."),
    "%(num)d dead letter queued again.": (
        ("%(num)d недоставленное сообщение снова в очереди.", "%(num)d недоставленных сообщения снова в очереди.",
         "%(num)d недоставленных сообщений снова в очереди."),
        ("%(num)d жеткізілмеген хабарлама қайта кезекке қойылды.",
         "%(num)d жеткізілмеген хабарлама қайта кезекке қойылды.")),
    "Not dead letters (left alone):": ("Не являются недоставленными (не тронуты):",
                                       "Жеткізілмегендер емес (өзгертілмеді):"),
    "Replay %(num)d dead letter?": (
        ("Отправить повторно %(num)d сообщение?", "Отправить повторно %(num)d сообщения?",
         "Отправить повторно %(num)d сообщений?"),
        ("%(num)d хабарламаны қайта жіберу керек пе?", "%(num)d хабарламаны қайта жіберу керек пе?")),
    "To:": ("Кому:", "Кімге:"),
    "Replay": ("Отправить повторно", "Қайта жіберу"),
    "Cancel": ("Отмена", "Бас тарту"),
    "Filter dead letters": ("Отбор недоставленных", "Жеткізілмегендерді сүзу"),
    "Filter": ("Отобрать", "Сүзу"),
    "Replay selected…": ("Повторить выбранные…", "Таңдалғандарды қайта жіберу…"),
    "Back to the console": ("Вернуться в консоль", "Консольге оралу"),
    "This request was refused": ("Запрос отклонён", "Сұрау қабылданбады"),
    "There is nothing here": ("Здесь ничего нет", "Мұнда ештеңе жоқ"),
    "Not allowed": ("Не разрешено", "Рұқсат етілмеген"),
    "Something went wrong": ("Что-то пошло не так", "Бірдеңе дұрыс болмады"),
    "The form was not sent from this console, or it has expired: reload the page and try again.": (
        "Форма отправлена не из этой консоли или устарела: обновите страницу и повторите.",
        "Пішін осы консольден жіберілмеген немесе ескірген: бетті жаңартып, қайталаңыз."),
    "No page here, or none you may see.": ("Такой страницы нет, или она вам недоступна.",
                                           "Мұндай бет жоқ немесе ол сізге қолжетімсіз."),
    "The gateway could not answer; try again later.": ("Шлюз не смог ответить; повторите позже.",
                                                       "Шлюз жауап бере алмады; кейінірек қайталаңыз."),
    "Who saw what about a person, when and why. Your look-up is itself recorded.": (
        "Кто, что, когда и зачем видел о человеке. Ваш запрос тоже записывается.",
        "Адам туралы кім нені, қашан және не үшін көрді. Сіздің сұрауыңыз да жазылады."),
    "Find a person": ("Найти лицо", "Тұлғаны табу"),
    "IIN of the person": ("ИИН лица", "Тұлғаның ЖСН"),
    "Show": ("Показать", "Көрсету"),
    "%(num)d entry": (("%(num)d запись", "%(num)d записи", "%(num)d записей"),
                      ("%(num)d жазба", "%(num)d жазба")),
    "When": ("Когда", "Қашан"),
    "Kind": ("Вид", "Түрі"),
    "Who": ("Кто", "Кім"),
    "Role": ("Роль", "Рөлі"),
    "Document": ("Документ", "Құжат"),
    "Fields": ("Поля", "Өрістер"),
    "disclosure": ("раскрытие", "ашу"),
    "inbound": ("входящее", "кіріс"),
    "outbound": ("исходящее", "шығыс"),
    "sign_in": ("вход", "кіру"),
    "action": ("действие", "әрекет"),
    "disclosed": ("раскрыто", "ашылды"),
    "denied": ("отказано", "тыйым салынды"),
    "refused": ("отклонено", "қабылданбады"),
    "failed": ("ошибка", "сәтсіз"),
    "Signed": ("Подписано", "Қол қойылды"),
    "Root": ("Корень", "Түбір"),
    "Signature": ("Подпись", "Қолтаңба"),
    "Key fingerprints": ("Отпечатки ключей", "Кілт іздері"),
    "No tree head has been signed yet.": ("Ни одна вершина дерева ещё не подписана.",
                                          "Әзірге бірде-бір ағаш төбесіне қол қойылмаған."),
    "Verify the whole log": ("Проверить весь журнал", "Бүкіл журналды тексеру"),
    "Verify": ("Проверить", "Тексеру"),
    "Intact: %(entries)d entries, %(heads)d signed tree heads.": (
        "Целостен: записей %(entries)d, подписанных вершин %(heads)d.",
        "Бүтін: %(entries)d жазба, %(heads)d қол қойылған ағаш төбесі."),
    "NOT intact.": ("НЕ целостен.", "Бүтін ЕМЕС."),
    "Consistency proof": ("Доказательство согласованности", "Сәйкестік дәлелі"),
    "Older size": ("Прежний размер", "Бұрынғы өлшемі"),
    "Newer size": ("Новый размер", "Жаңа өлшемі"),
    "Prove": ("Доказать", "Дәлелдеу"),
    "No signed tree head at one of these sizes.": ("Для одного из размеров нет подписанной вершины.",
                                                   "Осы өлшемдердің біріне қол қойылған төбе жоқ."),
    "Give two sizes, the older first.": ("Укажите два размера, сначала прежний.",
                                         "Екі өлшемді көрсетіңіз, алдымен бұрынғысын."),
    "The log at size %(new)d extends the log at size %(old)d: the proof verifies against both signed heads.": (
        "Журнал размера %(new)d продолжает журнал размера %(old)d: доказательство сходится с обеими подписанными вершинами.",
        "%(new)d өлшемді журнал %(old)d өлшемді журналдың жалғасы: дәлел қол қойылған екі төбемен де сәйкес."),
    "The strategy's target indicators, computed from the exchange itself, will be shown here.": (
        "Здесь будут показаны целевые индикаторы стратегии, рассчитанные по самому обмену.",
        "Мұнда алмасудың өзінен есептелген стратегияның нысаналы индикаторлары көрсетіледі."),
    "Request a pre-trial report": ("Запросить досудебный доклад", "Сотқа дейінгі баяндаманы сұрау"),
    "The workflows are not enabled on this gateway.": ("Рабочие процессы на этом шлюзе не включены.",
                                                       "Бұл шлюзде жұмыс процестері қосылмаған."),
    "The request was not sent: correct the fields marked below.": (
        "Запрос не отправлен: исправьте отмеченные ниже поля.", "Сұрау жіберілмеді: төменде белгіленген өрістерді түзетіңіз."),
    "12 digits": ("12 цифр", "12 цифр"),
    "15 digits": ("15 цифр", "15 цифр"),
    "ERDR number": ("Номер ЕРДР", "СДТБТ нөмірі"),
    "Court code": ("Код суда", "Сот коды"),
    "Court name": ("Наименование суда", "Соттың атауы"),
    "Due date": ("Срок", "Мерзімі"),
    "Legal basis for the full health summary (optional)": ("Правовое основание для полной справки о здоровье (необязательно)",
                                                           "Денсаулық туралы толық анықтамаға құқықтық негіз (міндетті емес)"),
    "Officer's conclusion (optional)": ("Заключение сотрудника (необязательно)", "Қызметкердің қорытындысы (міндетті емес)"),
    "Send the request": ("Отправить запрос", "Сұрауды жіберу"),
    "The reports requested by your office, %(office)s.": ("Доклады, запрошенные вашим подразделением, %(office)s.",
                                                          "Сіздің бөлімшеңіз сұраған баяндамалар, %(office)s."),
    "Request a report": ("Запросить доклад", "Баяндама сұрау"),
    "Your office's reports": ("Доклады вашего подразделения", "Бөлімшеңіздің баяндамалары"),
    "Report": ("Доклад", "Баяндама"),
    "IIN": ("ИИН", "ЖСН"),
    "Court": ("Суд", "Сот"),
    "Failure": ("Сбой", "Іркіліс"),
    "Provenance": ("Происхождение", "Шығу тегі"),
    "Where each section came from": ("Откуда получен каждый раздел", "Әр бөлім қайдан алынды"),
    "Section": ("Раздел", "Бөлім"),
    "Source": ("Источник", "Дереккөз"),
    "Fetched": ("Получено", "Алынды"),
    "Nothing gathered yet.": ("Пока ничего не собрано.", "Әзірге ештеңе жиналмады."),
    "Versions and court receipts": ("Версии и квитанции суда", "Нұсқалар және сот түбіртектері"),
    "Each version sent to the court": ("Каждая версия, отправленная в суд", "Сотқа жіберілген әр нұсқа"),
    "Version": ("Версия", "Нұсқа"),
    "Court registration": ("Регистрация в суде", "Сотта тіркелуі"),
    "Sections": ("Разделы", "Бөлімдер"),
    "No version yet.": ("Версий пока нет.", "Әзірге нұсқа жоқ."),
    "The document": ("Документ", "Құжат"),
    "identity": ("личность", "жеке басы"),
    "criminal_history": ("судимости", "сотталғандығы"),
    "custody_history": ("отбывание наказания", "жазаны өтеуі"),
    "social_situation": ("социальное положение", "әлеуметтік жағдайы"),
    "health_summary": ("здоровье", "денсаулығы"),
    "gathering": ("сбор сведений", "мәлімет жинау"),
    "State": ("Состояние", "Күйі"),
    "Facility": ("Учреждение", "Мекеме"),
    "Release type": ("Вид освобождения", "Босату түрі"),
    "Release date": ("Дата освобождения", "Босату күні"),
    "Region": ("Регион", "Өңір"),
    "Clinic": ("Поликлиника", "Емхана"),
    "Timeline": ("Хронология", "Хронология"),
    "planned": ("запланировано", "жоспарланды"),
    "notified": ("уведомлено", "хабарланды"),
    "acknowledged by the clinic": ("подтверждено поликлиникой", "емхана растады"),
    "escalated": ("передано выше", "жоғарыға жіберілді"),
    "Filter release cases": ("Отбор дел об освобождении", "Босату істерін сүзу"),
    "Released from": ("Освобождён с", "Босатылған күні, бастап"),
    "Released until": ("Освобождён по", "Босатылған күні, дейін"),
    "Case": ("Дело", "Іс"),
    "Updated": ("Обновлено", "Жаңартылды"),
    "The due date is in the past: give today or a later day.": (
        "Срок уже прошёл: укажите сегодняшний или более поздний день.",
        "Мерзімі өтіп кетті: бүгінгі немесе кейінгі күнді көрсетіңіз."),
    "The due date is too far ahead: at most %(days)d days from today.": (
        "Срок слишком далёк: не более %(days)d дней от сегодняшнего дня.",
        "Мерзім тым алыс: бүгіннен бастап %(days)d күннен аспауы керек."),
    "An IIN has digits only.": ("ИИН состоит только из цифр.", "ЖСН тек цифрлардан тұрады."),
    "An IIN has exactly 12 digits.": ("В ИИН ровно 12 цифр.", "ЖСН-да дәл 12 цифр болады."),
    "The 7th digit (century and sex) must be 1 to 6.": ("7-я цифра (век и пол) должна быть от 1 до 6.",
                                                        "7-цифр (ғасыр және жыныс) 1-ден 6-ға дейін болуы керек."),
    "The first six digits are not a birth date.": ("Первые шесть цифр не составляют дату рождения.",
                                                   "Алғашқы алты цифр туған күн емес."),
    "The last digit does not match the others: check the number.": (
        "Последняя цифра не сходится с остальными: проверьте номер.",
        "Соңғы цифр қалғандарымен сәйкес келмейді: нөмірді тексеріңіз."),
    "No IIN of this form is ever issued: check the number.": ("ИИН такого вида не выдаётся: проверьте номер.",
                                                              "Мұндай ЖСН берілмейді: нөмірді тексеріңіз."),
    "This is not a valid IIN.": ("Это не действительный ИИН.", "Бұл жарамды ЖСН емес."),
    "An ERDR number has exactly 15 digits.": ("В номере ЕРДР ровно 15 цифр.", "СДТБТ нөмірінде дәл 15 цифр болады."),
    "The due date is out of range: give a date between 1900 and 2100.": (
        "Срок вне допустимого диапазона: укажите дату между 1900 и 2100 годами.",
        "Мерзім рұқсат етілген аралықтан тыс: 1900 және 2100 жылдар арасындағы күнді көрсетіңіз."),
    "Fill in this field.": ("Заполните это поле.", "Бұл өрісті толтырыңыз."),
    "This is too long: at most %(max)d characters.": ("Слишком длинно: не более %(max)d символов.",
                                                      "Тым ұзын: %(max)d таңбадан аспауы керек."),
    "This value is not accepted: check it.": ("Это значение не принимается: проверьте его.",
                                              "Бұл мән қабылданбайды: тексеріңіз."),
}

def main() -> None:
    """Extract the messages with Babel, add the ones chosen at run time (menu labels, states),
    and write ``<lang>/LC_MESSAGES/console.po`` for ru, kk and en."""
    here = Path(__file__).resolve().parent
    package = here.parent
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2)}
    extracted: dict[str, str | tuple[str, str]] = {}
    for _file, _line, message, _comments, _context in extract_from_dir(str(package), method_map,
                                                                         keywords=keywords):
        extracted[message if isinstance(message, str) else message[0]] = message
    missing = sorted(set(extracted) - set(TEXTS))
    if missing:
        raise SystemExit(f"no translation for: {missing}")
    for index, language in enumerate(("ru", "kk", "en")):
        catalogue = Catalog(locale=language, domain="console", project="reentry-gateway", fuzzy=False)
        for msgid, translations in TEXTS.items():
            message = extracted.get(msgid, msgid)
            text = "" if language == "en" else translations[index]
            if isinstance(message, tuple):
                forms = text if text else ("", "")
                catalogue.add(message, tuple(forms))
            else:
                catalogue.add(msgid, text)
        target = here / language / "LC_MESSAGES"
        target.mkdir(parents=True, exist_ok=True)
        with (target / "console.po").open("wb") as po:
            write_po(po, catalogue, width=100, omit_header=False, sort_output=True)


if __name__ == "__main__":
    main()
