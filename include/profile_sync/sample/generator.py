"""Generate a realistic, deterministic Active-Directory-shaped sample directory.

``generate(people, groups, seed)`` returns the same :class:`SampleDirectory` for the same
arguments, on every run and machine with the same Python: all randomness comes from one
``random.Random(seed)``, nothing reads the clock or the global random state.

The directory is a company, Contoso, with a manager hierarchy (a CEO, department heads,
managers, individual contributors), people of several cultures (non-ASCII names, right-to-left
family-name-first names), and planted edge cases, all listed in ``directory.expectations``:
names that need DN escaping, a container whose name needs escaping, disabled accounts with
different ``userAccountControl`` values, a disabled manager, managers that name nobody, a
manager cycle, a manager out of scope, nested groups, a group cycle, a big group, an empty
group, a member that names nobody, mixed-case UPNs, people without ``proxyAddresses`` or
without ``SIP:``. People and groups are shuffled, so many reports come before their manager.
"""

from __future__ import annotations

import bisect
import itertools
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

from profile_sync.sample.jpeg import make_jpeg
from profile_sync.sample.model import (
    Container,
    DanglingRef,
    Expectations,
    Group,
    Person,
    SampleDirectory,
)

__all__ = ["DOMAIN", "generate"]

_T = TypeVar("_T")

DOMAIN: Final = "contoso.com"
"""The mail and UPN domain of every generated account."""

_FANOUT: Final = 6
"""Direct reports per manager inside a department."""
_PHOTO_RATE: Final = 0.15
_DISABLED_RATE: Final = 0.04
_DISABLED_VALUES: Final = (514, 546, 66050, 66082)
"""Disabled ``userAccountControl`` values, each planted at least once: 512|2, 512|32|2,
512|65536|2, 512|65536|32|2."""
_ENABLED_VALUES: Final = ((512, 88), (66048, 10), (544, 2))
"""Enabled ``userAccountControl`` values with weights (544 has bit 0x20, not 0x2)."""

GROUP_SECURITY_GLOBAL: Final = -2147483646
GROUP_SECURITY_DOMAIN_LOCAL: Final = -2147483644
GROUP_SECURITY_UNIVERSAL: Final = -2147483640
GROUP_DISTRIBUTION_GLOBAL: Final = 2
GROUP_DISTRIBUTION_UNIVERSAL: Final = 8

_GROUPS: Final[Container] = ("Groups",)
_DISTRIBUTION_LISTS: Final[Container] = ("Groups", "Distribution Lists")
_SERVICE_ACCOUNTS: Final[Container] = ("Service Accounts",)
_CONTRACTORS: Final[Container] = ("Engineering", "Users", "Contractors")


@dataclass(frozen=True, slots=True)
class _Department:
    name: str
    container: Container
    weight: int
    titles: tuple[str, ...]


_EXECUTIVE: Final = _Department(
    "Executive", ("Executive", "Users"), 0,
    ("Chief Financial Officer", "Chief Technology Officer", "Chief Operating Officer",
     "Chief of Staff", "Executive Assistant", "General Counsel", "Chief People Officer"),
)
_DEPARTMENTS: Final = (
    _Department("Sales", ("Sales", "Users"), 20,
                ("Account Executive", "Sales Representative", "Inside Sales Specialist",
                 "Sales Engineer", "Key Account Manager")),
    _Department("Engineering", ("Engineering", "Users"), 28,
                ("Software Engineer", "Senior Software Engineer", "Site Reliability Engineer",
                 "QA Engineer", "Principal Engineer", "Data Engineer")),
    _Department("Marketing", ("Marketing", "Users"), 8,
                ("Marketing Specialist", "Content Strategist", "Brand Manager",
                 "Event Coordinator")),
    _Department("Finance", ("Finance", "Users"), 6,
                ("Accountant", "Financial Analyst", "Controller", "Payroll Specialist")),
    _Department("Human Resources", ("Human Resources", "Users"), 4,
                ("HR Generalist", "Recruiter", "HR Business Partner")),
    _Department("Operations", ("Operations", "Users"), 9,
                ("Operations Analyst", "Facilities Coordinator", "Logistics Specialist")),
    _Department("Legal", ("Legal", "Users"), 2, ("Paralegal", "Corporate Counsel")),
    _Department("Customer Support", ("Support", "Users"), 12,
                ("Support Engineer", "Customer Success Manager",
                 "Technical Support Specialist")),
    _Department("Research & Development", ("Research", "Users", "R&D, Zürich"), 6,
                ("Research Scientist", "Data Scientist", "Research Engineer")),
)


@dataclass(frozen=True, slots=True)
class _Culture:
    language: str
    weight: int
    given: tuple[str, ...]
    """Given names; ``"native|latin"`` where the native script is not Latin."""
    surnames: tuple[str, ...]
    phone_prefix: str
    offices: tuple[str, ...]
    family_first: bool = False


_CULTURES: Final = (
    _Culture("en-US", 45,
             ("James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
              "William", "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph",
              "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Christopher", "Nancy",
              "Daniel", "Lisa", "Matthew", "Ashley", "Anthony", "Emily", "Mark", "Zoë",
              "Chloë", "Renée", "Noël", "Kevin", "Laura", "Brian", "Rachel"),
             ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
              "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee",
              "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young",
              "Allen", "King", "O'Brien", "O'Neil", "Van der Berg", "St. John", "MacDonald",
              "Nguyen", "Patel", "Kim", "Scott", "Green"),
             "+1 425", ("Redmond", "Seattle", "New York", "London", "Dublin")),
    _Culture("de-DE", 10,
             ("Jürgen", "Jörg", "Günter", "Käthe", "Björn", "Sören", "Uwe", "Anja", "Lena",
              "Lukas", "Maximilian", "Sophie", "Stefan", "Ute", "Hans", "Greta"),
             ("Müller", "Schröder", "Schäfer", "Weiß", "Groß", "Köhler", "Krüger", "Hoffmann",
              "Becker", "Wagner", "Fischer", "Meyer", "Schulz", "Bauer", "Koch", "Jäger"),
             "+49 89", ("München", "Berlin", "Köln", "Zürich")),
    _Culture("fr-FR", 7,
             ("François", "Hélène", "Amélie", "Jérôme", "Loïc", "Gaëlle", "Benoît", "Cécile",
              "Léa", "Élodie", "Théo", "Anaïs"),
             ("Lefèvre", "Dubois", "Lefebvre", "Moreau", "Girard", "Bézier", "Fournier",
              "Rousseau", "Mercier", "Bonnet", "Lemaître", "Faure"),
             "+33 1", ("Paris La Défense", "Lyon", "Montréal")),
    _Culture("es-ES", 8,
             ("José", "María", "Jesús", "Ángel", "Lucía", "Martín", "Sofía", "Iñaki",
              "Begoña", "Raúl", "Carmen", "Andrés"),
             ("Núñez", "García", "Martínez", "Rodríguez", "López", "Sánchez", "Pérez", "Gómez",
              "Fernández", "Muñoz", "Ibáñez", "Peña"),
             "+34 91", ("Madrid", "Sevilla", "São Paulo", "Ciudad de México")),
    _Culture("nb-NO", 7,
             ("Øyvind", "Åsa", "Søren", "Bjørn", "Ægir", "Ingrid", "Kjell", "Sigrún", "Freja",
              "Mads", "Ole", "Liv"),
             ("Ærø", "Hansen", "Johansen", "Lindqvist", "Sørensen", "Håkansson", "Østergaard",
              "Ødegård", "Nilsson", "Berg", "Dahl", "Lund"),
             "+47 22", ("Oslo", "København", "Stockholm", "Tromsø")),
    _Culture("tr-TR", 5,
             ("Ayşe", "Mehmet", "Çağlar", "Gül", "İbrahim", "Özge", "Şükrü", "Ümit", "Emre",
              "Elif"),
             ("Ağaoğlu", "Yılmaz", "Öztürk", "Çelik", "Şahin", "Doğan", "Kılıç", "Aydın",
              "Arslan", "Güneş"),
             "+90 212", ("İstanbul", "Ankara")),
    _Culture("pl-PL", 5,
             ("Łukasz", "Wojciech", "Małgorzata", "Zdeněk", "Jiří", "Božena", "Agnieszka",
              "Paweł"),
             ("Żółkiewski", "Dvořák", "Nowak", "Kowalski", "Wiśniewski", "Šimková", "Novák",
              "Łukasiewicz", "Wójcik"),
             "+48 12", ("Kraków", "Praha", "Łódź")),
    _Culture("zh-CN", 6,
             ("雷|Lei", "伟|Wei", "芳|Fang", "娜|Na", "敏|Min", "静|Jing", "洋|Yang", "勇|Yong",
              "艳|Yan", "杰|Jie"),
             ("李|Li", "王|Wang", "张|Zhang", "刘|Liu", "陈|Chen", "杨|Yang", "黄|Huang",
              "赵|Zhao", "吴|Wu", "周|Zhou"),
             "+86 10", ("北京", "Shanghai", "Shenzhen"), family_first=True),
    _Culture("ru-RU", 4,
             ("Иван|Ivan", "Ольга|Olga", "Дмитрий|Dmitry", "Наталья|Natalya",
              "Сергей|Sergey", "Анна|Anna"),
             ("Иванов|Ivanov", "Петрова|Petrova", "Смирнов|Smirnov", "Кузнецова|Kuznetsova",
              "Попов|Popov", "Соколова|Sokolova"),
             "+7 495", ("Москва", "Санкт-Петербург")),
    _Culture("ja-JP", 3,
             ("太郎|Taro", "花子|Hanako", "翔|Sho", "結衣|Yui", "健|Ken"),
             ("山田|Yamada", "佐藤|Sato", "鈴木|Suzuki", "高橋|Takahashi", "田中|Tanaka"),
             "+81 3", ("東京", "Osaka"), family_first=True),
)
_CULTURE_BY_LANGUAGE: Final = {c.language: c for c in _CULTURES}
_CULTURE_CUMULATIVE: Final = tuple(itertools.accumulate(c.weight for c in _CULTURES))

# Planted names: case → (given, surname, cn or None for the usual "Given Surname", language).
_SPECIAL_NAMES: Final[tuple[tuple[str, str, str, str | None, str], ...]] = (
    ("comma", "Jürgen", "Müller", "Müller, Jürgen", "de-DE"),
    ("plus", "Anna", "Smith+Jones", None, "en-US"),
    ("leading_hash", "Ida", "Olsen", "#Ida Olsen", "nb-NO"),
    ("trailing_space", "Tom", "Trailing", "Tom Trailing ", "en-US"),
    ("quote_semicolon", "Robert", "Tables", 'Robert "Bobby" Tables; Jr.', "en-US"),
    ("backslash", "Dana", "Ops", "Dana\\Ops", "en-US"),
    ("angle_brackets", "Lee", "Chen", "Lee <IT> Chen", "en-US"),
    ("jose", "José", "Núñez", None, "es-ES"),
    ("zoe", "Zoë", "Lefèvre", None, "fr-FR"),
    ("oyvind", "Øyvind", "Sørensen", None, "nb-NO"),
    ("agaoglu", "Ayşe", "Ağaoğlu", None, "tr-TR"),
    ("li_lei", "雷|Lei", "李|Li", None, "zh-CN"),
    ("aero", "Freja", "Ærø", None, "nb-NO"),
)
"""The ``comma`` person is made a manager, so reports reference an escaped, non-ASCII DN."""

_SERVICE_ACCOUNT_NAMES: Final = (
    ("svc_backup", "Backup Service"), ("svc_sql", "SQL Server Service"),
    ("svc_spcrawl", "SharePoint Crawl Account"), ("svc_sync", "Profile Sync Service"),
    ("svc_scan", "Scanner Service"), ("svc_print", "Print Spooler Service"),
    ("svc_monitor", "Monitoring Agent"), ("svc_deploy", "Deployment Pipeline"),
    ("svc_web", "Intranet Web Pool"), ("svc_mail", "Mail Relay"),
)
_INTERESTS: Final = (
    "Chess Club", "Running Club", "Book Club", "Photography", "Women in Tech", "Volunteers",
    "Board Games", "Cycling", "Café Lovers", "Toastmasters", "Hackathon", "Mentoring",
)
_TRANSLITERATE: Final = str.maketrans({
    "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "ł": "l", "Ł": "L", "đ": "d",
    "Đ": "D", "ı": "i", "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "Th", "ð": "d", "Ð": "D",
})


def _latin(name: str) -> str:
    """The Latin-script spelling of a pool name (``"李|Li"`` → ``"Li"``)."""
    return name.rsplit("|", 1)[-1]


def _native(name: str) -> str:
    """The native spelling of a pool name (``"李|Li"`` → ``"李"``)."""
    return name.split("|", 1)[0]


def _fold(text: str) -> str:
    """ASCII lower-case letters and digits only: ``"Ø'Neil-Núñez"`` → ``"oneilnunez"``."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum()).lower()


class _Unique:
    """Hands out unique spellings of a base name: ``base``, then ``base2``, ``base3``, ..."""

    def __init__(self, max_length: int | None = None) -> None:
        self._taken: set[str] = set()
        self._next: dict[str, int] = {}
        self._max = max_length

    def take(self, base: str, separator: str = "") -> str:
        """Return ``base`` or the first free numbered variant of it, and reserve it."""
        if self._max is not None:
            base = base[: self._max]
        candidate = base
        while candidate.casefold() in self._taken:
            number = self._next.get(base, 2)
            self._next[base] = number + 1
            suffix = f"{separator}{number}"
            stem = base if self._max is None else base[: self._max - len(suffix)]
            candidate = f"{stem}{suffix}"
        self._taken.add(candidate.casefold())
        return candidate


@dataclass(slots=True)
class _Draft:
    """A person before keys are assigned (hierarchy index order)."""

    department: _Department | None
    container: Container
    culture: _Culture
    manager: int | None
    is_manager: bool = False
    is_head: bool = False
    role: str = "regular"
    special: str | None = None
    uac: int = 512
    dangling_manager: DanglingRef | None = None
    reports: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _GroupDraft:
    cn: str
    container: Container
    description: str | None
    group_type: int
    people: list[int] = field(default_factory=list)
    """Member people by hierarchy index."""
    groups: list[int] = field(default_factory=list)
    """Member groups by group-draft index."""
    dangling: list[DanglingRef] = field(default_factory=list)


def generate(people: int = 2000, groups: int = 100, seed: int = 42) -> SampleDirectory:
    """Generate a sample directory with ``people`` accounts and ``groups`` groups.

    ``people`` includes a few service accounts (``OU=Service Accounts``, out of scope for the
    usual base DNs) once there are at least 20 people. Planted cases need room: with 50 people
    or more every case of :class:`Expectations` is present; smaller sizes plant what fits, in
    priority order. The big group holds every regular (non-service) account, so it exceeds
    1,500 members from 2,000 people up.
    """
    if people < 0 or groups < 0:
        raise ValueError(f"people and groups must be >= 0, got people={people}, groups={groups}")
    rng = random.Random(seed)
    service = min(len(_SERVICE_ACCOUNT_NAMES), max(1, people // 400)) if people >= 20 else 0
    drafts = _draft_hierarchy(people - service, rng)
    regular = len(drafts)
    for _ in range(service):
        drafts.append(_Draft(None, _SERVICE_ACCOUNTS, _CULTURES[0], None, role="service"))
    planted = _plant_people(drafts, regular, rng)

    order = list(range(len(drafts)))
    rng.shuffle(order)  # order[i] is the file position of hierarchy index i
    width = max(6, len(str(max(len(drafts) - 1, 0))))
    keys = [f"p{position:0{width}d}" for position in order]

    persons = _build_people(drafts, keys, planted, rng)
    group_drafts = _draft_groups(drafts, persons, regular, groups, rng)
    group_order = list(range(len(group_drafts)))
    rng.shuffle(group_order)
    group_width = max(4, len(str(max(len(group_drafts) - 1, 0))))
    group_keys = [f"g{position:0{group_width}d}" for position in group_order]
    built_groups = _build_groups(group_drafts, keys, group_keys, rng)

    expectations = _expectations(
        drafts, keys, order, persons, group_drafts, group_keys, planted
    )
    return SampleDirectory(
        people=_in_file_order(persons, order),
        groups=_in_file_order(built_groups, group_order),
        expectations=expectations,
        comment=(
            f"Profile Sync sample directory: people={people} groups={groups} seed={seed}. "
            "Generated; do not edit."
        ),
    )


def _in_file_order(items: list[_T], positions: list[int]) -> list[_T]:
    """Reorder ``items`` so that ``items[i]`` lands at ``positions[i]``."""
    out: list[_T] = list(items)
    for index, position in enumerate(positions):
        out[position] = items[index]
    return out


def _allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` proportionally to ``weights`` (largest remainder, ties to the first)."""
    weight_sum = sum(weights)
    exact = [total * w / weight_sum for w in weights]
    sizes = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - sizes[i]), i))
    for i in by_remainder[: total - sum(sizes)]:
        sizes[i] += 1
    return sizes


def _draft_hierarchy(regular: int, rng: random.Random) -> list[_Draft]:
    """Regular people in hierarchy order: the CEO, executives, then each department."""
    if regular <= 0:
        return []
    random_ = rng.random
    total = _CULTURE_CUMULATIVE[-1]

    def culture() -> _Culture:
        return _CULTURES[bisect.bisect(_CULTURE_CUMULATIVE, random_() * total)]

    executives = 1 + min(7, regular // 300)
    sizes = _allocate(regular - executives, [d.weight for d in _DEPARTMENTS])
    drafts = [_Draft(_EXECUTIVE, _EXECUTIVE.container, culture(), None, is_head=True,
                     is_manager=True, role="ceo")]
    for _ in range(executives - 1):
        drafts.append(_Draft(_EXECUTIVE, _EXECUTIVE.container, culture(), 0, role="executive"))
    for department, size in zip(_DEPARTMENTS, sizes, strict=True):
        start = len(drafts)
        for j in range(size):
            manager = 0 if j == 0 else start + (j - 1) // _FANOUT
            draft = _Draft(department, department.container, culture(), manager)
            draft.is_head = j == 0
            draft.is_manager = _FANOUT * j + 1 < size
            if department.name == "Engineering" and not draft.is_manager and rng.random() < 0.2:
                draft.container = _CONTRACTORS
                draft.role = "contractor"
            drafts.append(draft)
    for index, draft in enumerate(drafts):
        if draft.manager is not None:
            drafts[draft.manager].reports.append(index)
    return drafts


@dataclass(slots=True)
class _Planted:
    """Planted roles by hierarchy index."""

    special: dict[str, int] = field(default_factory=dict)
    cycle: tuple[int, ...] = ()
    dangling: list[int] = field(default_factory=list)
    disabled: list[int] = field(default_factory=list)
    disabled_manager: int | None = None
    out_of_scope_manager: int | None = None
    mixed_case_upn: set[int] = field(default_factory=set)
    hidden: set[int] = field(default_factory=set)
    not_hidden: set[int] = field(default_factory=set)
    no_proxy: set[int] = field(default_factory=set)
    no_sip: set[int] = field(default_factory=set)
    photo: set[int] = field(default_factory=set)


def _plant_people(drafts: list[_Draft], regular: int, rng: random.Random) -> _Planted:
    """Choose who carries each planted case and set their hierarchy fields."""
    planted = _Planted()
    leaves = [i for i in range(regular) if not drafts[i].is_manager and drafts[i].role == "regular"]
    managers = [i for i in range(regular) if drafts[i].is_manager and not drafts[i].is_head]
    rng.shuffle(leaves)
    rng.shuffle(managers)
    pool = iter(leaves)

    def take(count: int) -> list[int]:
        return [i for _, i in zip(range(count), pool, strict=False)]

    # The comma person is a manager when there is one, so reports name an escaped DN.
    specials = [case for case, *_ in _SPECIAL_NAMES]
    if managers:
        planted.special["comma"] = managers.pop()
        specials.remove("comma")
    for case, index in zip(specials, take(len(specials)), strict=False):
        planted.special[case] = index
    for case, index in planted.special.items():
        drafts[index].special = case

    cycle = take(2)
    if len(cycle) == 2:
        a, b = cycle
        drafts[a].manager, drafts[b].manager = b, a
        planted.cycle = (a, b)

    for number, index in enumerate(take(max(2, min(50, regular // 500))), start=1):
        draft = drafts[index]
        draft.manager = None
        draft.dangling_manager = DanglingRef(draft.container, f"Former Manager {number:03d}")
        planted.dangling.append(index)

    disabled_count = max(len(_DISABLED_VALUES), round(regular * _DISABLED_RATE))
    for n, index in enumerate(take(disabled_count)):
        value = _DISABLED_VALUES[n] if n < len(_DISABLED_VALUES) else rng.choices(
            _DISABLED_VALUES, weights=(5, 1, 3, 1))[0]
        drafts[index].uac = value
        planted.disabled.append(index)
    if managers:
        planted.disabled_manager = managers.pop()
        drafts[planted.disabled_manager].uac = 66050
        planted.disabled.append(planted.disabled_manager)
    planted.disabled.sort()

    if len(drafts) > regular:  # a person whose manager is a service account: out of scope
        chosen = take(1)
        if chosen:
            planted.out_of_scope_manager = chosen[0]
            drafts[chosen[0]].manager = regular

    disabled = set(planted.disabled)
    enabled = [i for i in range(regular) if i not in disabled]
    values = [v for v, _ in _ENABLED_VALUES]
    cumulative = list(itertools.accumulate(w for _, w in _ENABLED_VALUES))
    random_ = rng.random
    for draft_index in enabled:
        draft = drafts[draft_index]
        if draft.uac == 512:
            draft.uac = values[bisect.bisect(cumulative, random_() * cumulative[-1])]

    def some(rate: float, exclude: frozenset[int] | set[int] = frozenset()) -> set[int]:
        candidates = [i for i in enabled if i not in exclude]
        count = min(len(candidates), max(1, round(regular * rate)))
        return set(rng.sample(candidates, count)) if candidates else set()

    planted.mixed_case_upn = some(0.03)
    planted.hidden = some(0.01)
    planted.not_hidden = some(0.01, planted.hidden)
    planted.no_proxy = some(0.02)
    planted.no_sip = some(0.03, planted.no_proxy)
    planted.photo = {i for i in range(regular) if rng.random() < _PHOTO_RATE}
    if "jose" in planted.special:
        planted.photo.add(planted.special["jose"])
    return planted


def _guid(rng: random.Random, seen: set[bytes]) -> bytes:
    """A random version-4 GUID in Active Directory's byte order (``uuid.UUID.bytes_le``),
    unique within ``seen``."""
    while True:
        bits = rng.getrandbits(128)
        # byte 7 (little-endian): version 4 in its high nibble; byte 8: the RFC 4122 variant
        bits = (bits & ~(0xF0 << 56) & ~(0xC0 << 64)) | (0x40 << 56) | (0x80 << 64)
        value = bits.to_bytes(16, "little")
        if value not in seen:
            seen.add(value)
            return value


def _build_people(
    drafts: list[_Draft], keys: list[str], planted: _Planted, rng: random.Random
) -> list[Person]:
    """Turn drafts into people (hierarchy index order), names and attributes included."""
    special_by_case = {case: (given, surname, cn, language)
                       for case, given, surname, cn, language in _SPECIAL_NAMES}
    cns: dict[Container, _Unique] = {}
    folded: dict[str, str] = {}
    sams = _Unique(max_length=20)
    mails = _Unique()
    guids: set[bytes] = set()
    service_names = iter(_SERVICE_ACCOUNT_NAMES)
    random_ = rng.random

    def choice(options: Sequence[str]) -> str:
        return options[int(random_() * len(options))]

    def randrange(start: int, stop: int) -> int:
        return start + int(random_() * (stop - start))

    def fold(name: str) -> str:
        value = folded.get(name)
        if value is None:
            value = folded[name] = _fold(_latin(name))
        return value

    result: list[Person] = []
    for index, draft in enumerate(drafts):
        guid = _guid(rng, guids)
        if draft.role == "service":
            sam_base, display = next(service_names)
            sam = sams.take(sam_base)
            result.append(Person(
                key=keys[index], container=draft.container, cn=sam, guid=guid,
                sam_account_name=sam, user_principal_name=f"{sam}@{DOMAIN}",
                display_name=display, user_account_control=66048,
            ))
            continue

        culture = draft.culture
        fixed_cn: str | None = None
        if draft.special is not None:
            given_raw, surname_raw, fixed_cn, language = special_by_case[draft.special]
            culture = _CULTURE_BY_LANGUAGE[language]
        else:
            given_raw, surname_raw = choice(culture.given), choice(culture.surnames)
        given, surname = _native(given_raw), _native(surname_raw)
        latin_given, latin_surname = fold(given_raw), fold(surname_raw)
        if fixed_cn is not None:
            base_cn = fixed_cn
        elif culture.family_first:
            base_cn = f"{surname} {given}"
        else:
            base_cn = f"{given} {surname}"
        in_container = cns.get(draft.container)
        if in_container is None:
            in_container = cns[draft.container] = _Unique()
        cn = in_container.take(base_cn, " ")

        sam = sams.take((latin_given[:1] + latin_surname) or "user")
        mail = mails.take(f"{latin_given}.{latin_surname}".strip(".") or sam) + f"@{DOMAIN}"
        upn = f"{sam}@{DOMAIN}"
        if index in planted.mixed_case_upn:
            upn = upn.upper() if index % 2 else f"{sam[:1].upper()}{sam[1:]}@Contoso.com"

        proxies: list[str] = []
        if index not in planted.no_proxy:
            local = mail.split("@", 1)[0]
            proxies = [f"SMTP:{mail}", f"smtp:{sam}@{DOMAIN}",
                       f"smtp:{local}@contoso.mail.onmicrosoft.com"]
            if index not in planted.no_sip:
                proxies.append(f"SIP:{mail}")
            if random_() < 0.3:  # the primary is not always first
                turn = randrange(1, len(proxies))
                proxies = proxies[turn:] + proxies[:turn]

        department = draft.department
        assert department is not None
        if draft.role == "ceo":
            title = "Chief Executive Officer"
        elif draft.is_head and department is not _EXECUTIVE:
            title = f"Vice President, {department.name}"
        elif draft.is_manager:
            title = (f"{department.name} Manager" if random_() < 0.5
                     else f"Director, {department.name}")
        elif draft.role == "contractor":
            title = f"Contractor - {choice(department.titles)}"
        else:
            title = choice(department.titles)

        hide: bool | None = None
        if index in planted.hidden:
            hide = True
        elif index in planted.not_hidden:
            hide = False

        photo = None
        if index in planted.photo:
            photo = make_jpeg([randrange(0, 256) for _ in range(4)])

        result.append(Person(
            key=keys[index],
            container=draft.container,
            cn=cn,
            guid=guid,
            sam_account_name=sam,
            user_principal_name=upn,
            given_name=given,
            surname=surname,
            display_name=base_cn,
            mail=mail,
            proxy_addresses=proxies,
            telephone_number=(
                f"{culture.phone_prefix} {randrange(100, 1000)} {randrange(1000, 10000)}"
                if random_() < 0.95 else None
            ),
            office=f"{choice(culture.offices)} {randrange(1, 40)}/{randrange(1000, 4000)}",
            title=title,
            department=department.name,
            web_page=(f"https://contoso.sharepoint.com/personal/{sam}"
                      if random_() < 0.25 else None),
            preferred_language=culture.language if random_() < 0.9 else None,
            hide_from_address_lists=hide,
            employee_id=None if draft.role == "contractor" else str(100000 + index),
            user_account_control=draft.uac,
            photo=photo,
            manager_key=None if draft.manager is None else keys[draft.manager],
            dangling_manager=draft.dangling_manager,
        ))
    return result


def _draft_groups(
    drafts: list[_Draft], persons: list[Person], regular: int, count: int, rng: random.Random
) -> list[_GroupDraft]:
    """Groups in priority order: planted ones first, then departments, teams and interests."""
    everyone = list(range(regular))
    drafts_out: list[_GroupDraft] = []

    def add(group: _GroupDraft) -> int | None:
        if len(drafts_out) >= count:
            return None
        drafts_out.append(group)
        return len(drafts_out) - 1

    def some_people(size: int) -> list[int]:
        return sorted(rng.sample(everyone, min(size, len(everyone))))

    add(_GroupDraft("All Employees", _GROUPS, "Everyone employed by Contoso",
                    GROUP_SECURITY_UNIVERSAL, people=list(everyone)))
    core = add(_GroupDraft("Project Phoenix Core", _GROUPS, "Phoenix core team",
                           GROUP_SECURITY_GLOBAL, people=some_people(8)))
    extended = add(_GroupDraft("Project Phoenix Extended", _GROUPS,
                               "Phoenix extended team (contains the core team)",
                               GROUP_SECURITY_GLOBAL, people=some_people(12)))
    if core is not None and extended is not None:
        drafts_out[core].groups.append(extended)
        drafts_out[extended].groups.append(core)
    add(_GroupDraft("Alumni Network", _DISTRIBUTION_LISTS, "Réseau des anciens — alumni",
                    GROUP_DISTRIBUTION_UNIVERSAL, people=some_people(10),
                    dangling=[DanglingRef(("Sales", "Users"), "Departed Colleague")]))
    add(_GroupDraft("Project Atlas (archived)", _DISTRIBUTION_LISTS, "No members left",
                    GROUP_DISTRIBUTION_GLOBAL))
    research = [i for i in everyone if drafts[i].department is _DEPARTMENTS[-1]]
    add(_GroupDraft("R&D, Zürich Team", _GROUPS, "Forschung und Entwicklung, Zürich",
                    GROUP_SECURITY_DOMAIN_LOCAL, people=research[:50]))

    departments: dict[str, int] = {}
    for department in (_EXECUTIVE, *_DEPARTMENTS):
        head = next((i for i in everyone
                     if drafts[i].department is department and drafts[i].is_head), None)
        if head is None:
            continue
        index = add(_GroupDraft(f"Department - {department.name}", _GROUPS,
                                f"Members of the {department.name} department",
                                GROUP_SECURITY_GLOBAL, people=[head]))
        if index is not None:
            departments[department.name] = index

    team_names = _Unique()
    for manager in (i for i in everyone if drafts[i].reports):
        if len(drafts_out) >= count:
            break
        team_department = drafts[manager].department
        assert team_department is not None
        display = (persons[manager].display_name or persons[manager].cn).strip()
        index = add(_GroupDraft(
            team_names.take(f"Team {display}", " "), _GROUPS, f"Direct reports of {display}",
            GROUP_SECURITY_GLOBAL,
            people=sorted(r for r in drafts[manager].reports if r < regular),
        ))
        if index is not None and team_department.name in departments:
            drafts_out[departments[team_department.name]].groups.append(index)

    interest_names = _Unique()
    while len(drafts_out) < count:
        name = interest_names.take(f"Interest - {rng.choice(_INTERESTS)}", " ")
        add(_GroupDraft(name, _DISTRIBUTION_LISTS, f"{name.split(' - ', 1)[1]} community",
                        GROUP_DISTRIBUTION_GLOBAL,
                        people=some_people(rng.randrange(3, 41))))
    return drafts_out


def _build_groups(
    drafts: list[_GroupDraft], person_keys: list[str], group_keys: list[str],
    rng: random.Random,
) -> list[Group]:
    """Turn group drafts into groups (draft order)."""
    sams = _Unique(max_length=64)
    guids: set[bytes] = set()
    result: list[Group] = []
    for index, draft in enumerate(drafts):
        members = [person_keys[i] for i in draft.people]
        members += [group_keys[g] for g in draft.groups]
        result.append(Group(
            key=group_keys[index],
            container=draft.container,
            cn=draft.cn,
            guid=_guid(rng, guids),
            sam_account_name=sams.take(
                "-".join(_fold(w) for w in draft.cn.split() if _fold(w)) or "group"),
            description=draft.description,
            group_type=draft.group_type,
            member_keys=members,
            dangling_members=list(draft.dangling),
        ))
    return result


def _expectations(
    drafts: list[_Draft], keys: list[str], order: list[int], persons: list[Person],
    group_drafts: list[_GroupDraft], group_keys: list[str], planted: _Planted,
) -> Expectations:
    """Translate planted hierarchy indexes into keys."""

    def k(indexes: Sequence[int] | set[int]) -> tuple[str, ...]:
        return tuple(sorted(keys[i] for i in indexes))

    forward = [keys[i] for i, d in enumerate(drafts)
               if d.manager is not None and order[i] < order[d.manager]]
    by_cn = {g.cn: i for i, g in enumerate(group_drafts)}

    def group_key(cn: str) -> str | None:
        index = by_cn.get(cn)
        return None if index is None else group_keys[index]

    cycle_keys = tuple(filter(None, (group_key("Project Phoenix Core"),
                                     group_key("Project Phoenix Extended"))))
    return Expectations(
        ceo_key=keys[0] if drafts and drafts[0].role == "ceo" else None,
        service_account_keys=k([i for i, d in enumerate(drafts) if d.role == "service"]),
        disabled_keys=k(planted.disabled),
        disabled_values=tuple(sorted({drafts[i].uac for i in planted.disabled})),
        disabled_manager_key=(None if planted.disabled_manager is None
                              else keys[planted.disabled_manager]),
        out_of_scope_manager_key=(None if planted.out_of_scope_manager is None
                                  else keys[planted.out_of_scope_manager]),
        dangling_manager_keys=k(planted.dangling),
        manager_cycle=tuple(keys[i] for i in planted.cycle),
        forward_manager_keys=tuple(sorted(forward)),
        group_cycle=cycle_keys if len(cycle_keys) == 2 else (),
        nested_group_keys=tuple(sorted(group_keys[i] for i, g in enumerate(group_drafts)
                                       if g.groups)),
        big_group_key=group_key("All Employees"),
        dangling_member_group_key=group_key("Alumni Network"),
        empty_group_key=group_key("Project Atlas (archived)"),
        special_cn_keys={case: keys[i] for case, i in sorted(planted.special.items())},
        special_container_keys=k([i for i, d in enumerate(drafts)
                                  if d.department is _DEPARTMENTS[-1]]),
        non_ascii_keys=tuple(sorted(p.key for p in persons if not p.cn.isascii())),
        photo_keys=k(planted.photo),
        mixed_case_upn_keys=k(planted.mixed_case_upn),
        no_proxy_address_keys=k(planted.no_proxy),
        no_sip_keys=k(planted.no_sip),
        hidden_keys=k(planted.hidden),
        not_hidden_keys=k(planted.not_hidden),
    )
