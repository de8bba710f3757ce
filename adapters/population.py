"""A synthetic population, generated from a seed, that every simulator serves.

No real person is in it. Each synthetic person has a valid IIN, a Kazakh or
Russian name (with Kazakh letters where Kazakh names have them), a residence
with a КАТО code in one of the seventeen regions or three cities of republican
significance, and — in realistic proportions — custody episodes, convictions
(some expunged), a pre-trial case, dispensary registrations with ICD-10 codes
and regimens, a disability, an РПН attachment and a social situation. People
in custody carry a planned release. The same seed always gives the same
people, so a simulator, a test and the demo agree on who exists.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from gateway.domain import (
    IIN,
    Address,
    Attachment,
    AttachmentState,
    Conviction,
    CriminalCodeArticle,
    CustodyBasis,
    CustodyEpisode,
    Disability,
    DispensaryRegistration,
    DrugSusceptibility,
    Education,
    EmploymentStatus,
    HealthSummary,
    Housing,
    HousingKind,
    IdentityDocument,
    MaritalStatus,
    Organisation,
    Person,
    PretrialCase,
    Programme,
    ReleaseNotice,
    ReleaseType,
    Sentence,
    SentenceKind,
    Sex,
    SocialStatus,
    make_iin,
)

# (КАТО region prefix, region name, its centre). Codes follow the classifier's
# first two digits; the three cities of republican significance come first.
REGIONS: tuple[tuple[str, str, str], ...] = (
    ("71", "Астана", "Астана"),
    ("75", "Алматы", "Алматы"),
    ("79", "Шымкент", "Шымкент"),
    ("10", "Абай облысы", "Семей"),
    ("11", "Ақмола облысы", "Көкшетау"),
    ("15", "Ақтөбе облысы", "Ақтөбе"),
    ("19", "Алматы облысы", "Қонаев"),
    ("23", "Атырау облысы", "Атырау"),
    ("27", "Батыс Қазақстан облысы", "Орал"),
    ("31", "Жамбыл облысы", "Тараз"),
    ("33", "Жетісу облысы", "Талдықорған"),
    ("35", "Қарағанды облысы", "Қарағанды"),
    ("39", "Қостанай облысы", "Қостанай"),
    ("43", "Қызылорда облысы", "Қызылорда"),
    ("47", "Маңғыстау облысы", "Ақтау"),
    ("55", "Павлодар облысы", "Павлодар"),
    ("59", "Солтүстік Қазақстан облысы", "Петропавл"),
    ("61", "Түркістан облысы", "Түркістан"),
    ("62", "Ұлытау облысы", "Жезқазған"),
    ("63", "Шығыс Қазақстан облысы", "Өскемен"),
)
DISTRICTS_PER_REGION = 3

_KAZAKH_SURNAMES = ("Жұмабеков", "Әбілқасымов", "Серікбаев", "Нұрғалиев", "Қасымов", "Төлеген", "Оспанов",
                    "Байғабылов", "Үсенов", "Ермұханов", "Мұратов", "Сәрсенбаев", "Ғабдуллин", "Ақылбеков")
_RUSSIAN_SURNAMES = ("Иванов", "Петров", "Кузнецов", "Смирнов", "Попов", "Васильев", "Соколов", "Михайлов",
                     "Новиков", "Фёдоров", "Морозов", "Волков")
_KAZAKH_MALE = ("Ерлан", "Нұрлан", "Әлихан", "Дәулет", "Ғалым", "Бақытжан", "Серік", "Қайрат", "Ұлан", "Асқар")
_KAZAKH_FEMALE = ("Әлия", "Гүлнар", "Айгүл", "Сәуле", "Жанар", "Динара", "Ұлжан", "Назгүл", "Меруерт", "Ақмарал")
_RUSSIAN_MALE = ("Александр", "Сергей", "Дмитрий", "Андрей", "Алексей", "Иван", "Николай", "Виктор")
_RUSSIAN_FEMALE = ("Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Светлана", "Анна", "Мария")
_STREETS = ("Абай даңғылы", "Сәтбаев көшесі", "ул. Ленина", "Қабанбай батыр көшесі", "ул. Гагарина",
            "Төле би көшесі", "мкр. Самал", "Райымбек даңғылы", "ул. Мира", "Әл-Фараби даңғылы")
_ARTICLES = (("188", 2), ("190", 2), ("296", 1), ("106", 1), ("293", 2), ("287", 1), ("192", 2), ("120", 1))
_SPECIALTIES = ("электрогазосварщик", "повар", "тракторист-машинист", "слесарь-сантехник", "швея",
                "водитель", "каменщик", "бухгалтер", None)
# Programme -> (ICD-10 codes, regimens, share of the population in custody registered).
_PROGRAMMES: dict[Programme, tuple[tuple[str, ...], tuple[str, ...], float]] = {
    Programme.TB: (("A15.0", "A15.1", "A16.2"), ("2HRZE/4HR", "BPaLM", "6Bdq-Lzd-Lfx-Cfz"), 0.12),
    Programme.HIV: (("B20", "B23.8", "B24"), ("TDF/3TC/DTG", "ABC/3TC/DTG"), 0.06),
    Programme.NARCO: (("F11.2", "F10.2", "F12.2"), ("метадон 80 мг", "наблюдение"), 0.15),
    Programme.PSYCH: (("F20.0", "F32.1", "F60.3"), ("рисперидон 4 мг", "наблюдение"), 0.05),
    Programme.DIAB: (("E11.9", "E10.9"), ("метформин 1000 мг", "инсулин гларгин"), 0.06),
    Programme.ONCO: (("C34.1", "C16.9"), ("химиотерапия", "наблюдение"), 0.01),
}


@dataclass(frozen=True, slots=True)
class District:
    kato: str  # 9 digits
    region: str
    locality: str
    clinic: Organisation
    probation_office: Organisation
    employment_centre: Organisation
    has_clinic: bool = True  # a district whose clinic the register cannot resolve (escalation path)


@dataclass(frozen=True, slots=True)
class SyntheticPerson:
    person: Person
    residence: Address
    district: District
    custody: tuple[CustodyEpisode, ...] = ()
    convictions: tuple[Conviction, ...] = ()
    pretrial_case: PretrialCase | None = None
    health: HealthSummary | None = None
    attachment: Attachment | None = None
    social: SocialStatus | None = None
    release: ReleaseNotice | None = None

    @property
    def iin(self) -> IIN:
        return self.person.iin

    @property
    def in_custody(self) -> bool:
        return bool(self.custody) and self.custody[-1].release_date is None


@dataclass
class Population:
    """``size`` synthetic people generated from ``seed``; see the module docstring."""

    seed: int = 20261126
    size: int = 1000
    today: dt.date = dt.date(2026, 11, 26)
    districts: tuple[District, ...] = field(init=False)
    facilities: tuple[Organisation, ...] = field(init=False)
    people: tuple[SyntheticPerson, ...] = field(init=False)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.districts = tuple(_districts())
        self.facilities = tuple(
            Organisation(code=f"UG-{157 + n}/{n % 9 + 1}", name=f"Учреждение УГ-{157 + n}/{n % 9 + 1}")
            for n in range(12)
        )
        used: set[str] = set()
        self.people = tuple(self._person(rng, number, used) for number in range(self.size))
        self._by_iin = {p.iin: p for p in self.people}
        self._by_erdr = {p.pretrial_case.erdr_number: p for p in self.people if p.pretrial_case}
        self._by_kato = {d.kato: d for d in self.districts}

    def __iter__(self) -> Iterator[SyntheticPerson]:
        return iter(self.people)

    def __len__(self) -> int:
        return len(self.people)

    def by_iin(self, iin: str) -> SyntheticPerson | None:
        return self._by_iin.get(iin)

    def by_erdr(self, erdr_number: str) -> SyntheticPerson | None:
        return self._by_erdr.get(erdr_number)

    def district(self, kato: str | None) -> District | None:
        return self._by_kato.get(kato or "")

    def clinic_for(self, address: Address) -> Organisation | None:
        """The primary-care clinic serving an address, or None where the register cannot resolve it."""
        district = self.district(address.kato)
        return district.clinic if district and district.has_clinic else None

    def in_custody(self) -> list[SyntheticPerson]:
        return [p for p in self.people if p.in_custody]

    def suspects(self) -> list[SyntheticPerson]:
        return [p for p in self.people if p.pretrial_case is not None]

    # -- generation

    def _person(self, rng: random.Random, number: int, used: set[str]) -> SyntheticPerson:
        sex = Sex.MALE if rng.random() < 0.88 else Sex.FEMALE  # most people in custody are men
        iin = _unique_iin(rng, sex, used)
        person = _name(rng, iin, sex)
        district = rng.choice(self.districts)
        residence = _address(rng, district)
        custody, convictions = _criminal_history(rng, self.today, self.facilities, held=rng.random() < 0.3)
        in_custody = bool(custody) and custody[-1].release_date is None
        health = _health(rng, iin, self.today, in_custody)
        attachment = _attachment(rng, iin, self.today, district, custody, in_custody)
        social = _social(rng, iin)
        pretrial = None
        if not in_custody and rng.random() < 0.25:
            pretrial = PretrialCase(
                erdr_number=f"{rng.choice(('21', '22', '23', '24', '25', '26'))}{district.kato[:4]}"
                f"{number:09d}"[:15].ljust(15, "0"),
                registration_date=self.today - dt.timedelta(days=rng.randint(10, 200)),
                articles=(CriminalCodeArticle(article=rng.choice(_ARTICLES)[0], part=rng.choice((1, 2))),),
            )
        release = None
        if in_custody:
            destination = rng.choice(self.districts)
            release_type = rng.choices(list(ReleaseType), weights=(60, 30, 8, 2))[0]
            release = ReleaseNotice(
                iin=iin,
                facility=custody[-1].facility,
                release_type=release_type,
                planned_date=self.today + dt.timedelta(days=rng.randint(14, 60)),
                destination=_address(rng, destination),
                housing=social.housing or Housing(available=False),
                identity_documents=social.identity_documents,
                education=social.education,
                specialty=social.specialty,
                # Post-release probation follows parole (УДО).
                probation_office=destination.probation_office if release_type is ReleaseType.PAROLE else None,
            )
        return SyntheticPerson(person, residence, district, custody, convictions, pretrial, health, attachment,
                               social, release)


def _districts() -> Iterator[District]:
    for prefix, region, centre in REGIONS:
        for n in range(1, DISTRICTS_PER_REGION + 1):
            kato = f"{prefix}{n:02d}10000"[:9].ljust(9, "0")
            locality = centre if n == 1 else f"{centre}, {n}-аудан"
            yield District(
                kato=kato,
                region=region,
                locality=locality,
                clinic=Organisation(code=f"PMSP-{kato}", name=f"Қалалық емхана №{n} ({centre})"),
                probation_office=Organisation(code=f"PROB-{kato}", name=f"Пробация қызметі ({locality})"),
                employment_centre=Organisation(code=f"CZN-{kato}", name=f"Халықты жұмыспен қамту орталығы ({locality})"),
                # One district in each region has no clinic in the register yet: the
                # gateway must escalate instead of guessing.
                has_clinic=n != DISTRICTS_PER_REGION,
            )


def _unique_iin(rng: random.Random, sex: Sex, used: set[str]) -> IIN:
    while True:
        birth = dt.date(1960, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 45))
        iin = make_iin(birth, sex, rng.randint(1, 9999))
        if iin is not None and iin not in used:
            used.add(iin)
            return iin


def _name(rng: random.Random, iin: IIN, sex: Sex) -> Person:
    kazakh = rng.random() < 0.7
    surname = rng.choice(_KAZAKH_SURNAMES if kazakh else _RUSSIAN_SURNAMES)
    father = rng.choice(_KAZAKH_MALE if kazakh else _RUSSIAN_MALE)
    if sex is Sex.FEMALE:
        given = rng.choice(_KAZAKH_FEMALE if kazakh else _RUSSIAN_FEMALE)
        surname = surname + "а" if surname.endswith(("ов", "ев", "ин")) else surname
        patronymic = f"{father}қызы" if kazakh else _russian_patronymic(father, female=True)
    else:
        given = rng.choice(_KAZAKH_MALE if kazakh else _RUSSIAN_MALE)
        patronymic = f"{father}ұлы" if kazakh else _russian_patronymic(father, female=False)
    return Person(iin=iin, surname=surname, given_name=given, patronymic=patronymic,
                  birth_date=iin.birth_date, sex=sex)


def _russian_patronymic(father: str, *, female: bool) -> str:
    stem = father[:-1] + "е" if father.endswith("й") else father
    return stem + ("вна" if female else "вич")


def _address(rng: random.Random, district: District) -> Address:
    street, house = rng.choice(_STREETS), str(rng.randint(1, 180))
    flat = str(rng.randint(1, 120)) if rng.random() < 0.6 else None
    raw = f"{district.region}, {district.locality}, {street}, {house}" + (f", {flat}" if flat else "")
    return Address(kato=district.kato, region=district.region, locality=district.locality, street=street,
                   house=house, flat=flat, raw=raw)


def _criminal_history(
    rng: random.Random, today: dt.date, facilities: tuple[Organisation, ...], *, held: bool
) -> tuple[tuple[CustodyEpisode, ...], tuple[Conviction, ...]]:
    """Convictions and custody episodes; with ``held`` the last episode is still open."""
    convictions: list[Conviction] = []
    custody: list[CustodyEpisode] = []
    count = rng.choices((1, 2, 3), weights=(55, 30, 15))[0] if held else rng.choices((0, 1, 2), weights=(50, 35, 15))[0]
    when = today - dt.timedelta(days=rng.randint(365 * 4, 365 * 20))
    for index in range(count):
        article, part = rng.choice(_ARTICLES)
        months = rng.choice((12, 18, 24, 36, 48, 60, 84))
        last = index == count - 1 or (held and when > today - dt.timedelta(days=months * 28 + 400))
        admitted = min(when + dt.timedelta(days=rng.randint(0, 20)), today - dt.timedelta(days=2))
        if last and held:
            # Serving now: admitted within the term, so release lies ahead.
            admitted = today - dt.timedelta(days=rng.randint(30, months * 28 - 20))
            admitted = min(max(admitted, when), today - dt.timedelta(days=30))
            release_date = None
        else:
            release_date = min(admitted + dt.timedelta(days=months * 28), today - dt.timedelta(days=1))
        convictions.append(
            Conviction(
                articles=(CriminalCodeArticle(article=article, part=part),),
                court=f"Аудандық сот №{rng.randint(1, 9)}",
                judgment_date=when if release_date is not None else admitted - dt.timedelta(days=rng.randint(5, 30)),
                sentence=Sentence(kind=SentenceKind.IMPRISONMENT, term_months=months),
                # Old convictions of those not reoffending are expunged (Criminal Code art. 79).
                expunged=not last and rng.random() < 0.4,
            )
        )
        custody.append(
            CustodyEpisode(
                facility=rng.choice(facilities),
                basis=CustodyBasis.SENTENCE,
                admission_date=admitted,
                release_date=release_date,
                release_type=None if release_date is None else rng.choice((ReleaseType.END_OF_TERM, ReleaseType.PAROLE)),
            )
        )
        if release_date is None:
            break
        when = release_date + dt.timedelta(days=rng.randint(60, 900))
        if when >= today - dt.timedelta(days=30):
            break
    return tuple(custody), tuple(convictions)


def _health(rng: random.Random, iin: IIN, today: dt.date, in_custody: bool) -> HealthSummary:
    registrations = []
    boost = 2.0 if in_custody else 1.0  # TB and HIV are far more common in custody
    for programme, (codes, regimens, share) in _PROGRAMMES.items():
        if rng.random() < share * boost:
            since = today - dt.timedelta(days=rng.randint(30, 3000))
            treated = programme in (Programme.TB, Programme.HIV, Programme.DIAB, Programme.NARCO)
            registrations.append(
                DispensaryRegistration(
                    programme=programme,
                    icd10=rng.choice(codes),
                    since=since,
                    regimen=rng.choice(regimens),
                    last_dose=today - dt.timedelta(days=rng.randint(0, 3)) if treated else None,
                    days_supplied=rng.choice((3, 7, 10, 14)) if treated else None,
                    drug_susceptibility=rng.choice(list(DrugSusceptibility)) if programme is Programme.TB else None,
                )
            )
    disability = None
    if rng.random() < 0.07:
        disability = Disability(group=rng.choice((1, 2, 3)), valid_until=today + dt.timedelta(days=rng.randint(30, 700)))
    return HealthSummary(iin=iin, registrations=tuple(registrations), disability=disability)


def _attachment(
    rng: random.Random, iin: IIN, today: dt.date, district: District,
    custody: tuple[CustodyEpisode, ...], in_custody: bool,
) -> Attachment | None:
    if in_custody:
        # Attached at the medical unit of the facility: this attachment lapses on release.
        facility = custody[-1].facility
        clinic = Organisation(code=f"MED-{facility.code}", name=f"Медицинская часть {facility.name}")
        return Attachment(iin=iin, clinic=clinic, since=custody[-1].admission_date, state=AttachmentState.ATTACHED)
    if rng.random() < 0.05:
        return None
    since = today - dt.timedelta(days=rng.randint(30, 4000))
    return Attachment(iin=iin, clinic=district.clinic, since=since, state=AttachmentState.ATTACHED)


def _social(rng: random.Random, iin: IIN) -> SocialStatus:
    has_housing = rng.random() < 0.75
    documents = (IdentityDocument.ID_CARD,) if rng.random() < 0.8 else ()
    return SocialStatus(
        iin=iin,
        marital_status=rng.choice(list(MaritalStatus)),
        dependants=rng.choices((0, 1, 2, 3), weights=(50, 25, 15, 10))[0],
        housing=Housing(available=has_housing, kind=rng.choice((HousingKind.OWN, HousingKind.FAMILY, HousingKind.RENTED)) if has_housing else None),
        identity_documents=documents,
        education=rng.choice(list(Education)),
        specialty=rng.choice(_SPECIALTIES),
        employment=rng.choice((EmploymentStatus.EMPLOYED, EmploymentStatus.UNEMPLOYED, EmploymentStatus.SELF_EMPLOYED)),
        benefits=(),
    )
