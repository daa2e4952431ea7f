"""DN normalisation as a property: spellings of generated DNs are equal after normalisation exactly
when they are equal by RFC 4517 distinguishedNameMatch.

A DN is generated as a *model* — RDNs, each a set of (attribute type, value) — whose values are
already in the form RFC 4518 compares (case-folded, NFKC, single inner spaces), so two models match
by the standard exactly when they are equal as sets per RDN. A model is then *spelled* at random:
type names in any case or as their long name or OID; AVAs of an RDN in any order; every character
of a value in any case, as a compatibility variant NFKC folds (full-width letters, the Kelvin sign,
a decomposed é, ß for ss), escaped as ``\\c`` or as hex (``\\2C``, ``\\C3\\A9``, any case), spaces
repeated, tabs and no-break spaces for spaces, escaped leading and trailing spaces, soft hyphens
and zero-width spaces (mapped to nothing); spaces around separators.

The second DN of a pair is the same model or a small mutation of it (one character, one type, an
RDN order, an AVA moved between RDNs, an RDN dropped, a space added) — which may or may not still
match, the model says which.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from profile_sync.directory.dn import (
    is_within,
    normalize_dn,
    normalize_dn_or_none,
    normalize_dns,
    split_optional_uid,
)

# Canonical type → spellings (all caseIgnoreMatch types; x-custom is unknown to the engine).
TYPES = {
    "cn": ["cn", "CN", "Cn", "commonName", "COMMONNAME", "2.5.4.3"],
    "ou": ["ou", "OU", "organizationalUnitName", "2.5.4.11"],
    "o": ["o", "O", "organizationName", "2.5.4.10"],
    "dc": ["dc", "DC", "domainComponent", "0.9.2342.19200300.100.1.25"],
    "uid": ["uid", "UID", "userid", "0.9.2342.19200300.100.1.1"],
    "sn": ["sn", "SN", "surname", "2.5.4.4"],
    "l": ["l", "L", "localityName", "2.5.4.7"],
    "x-custom": ["x-custom", "X-Custom", "X-CUSTOM"],
}

# Value tokens in compared form → unescaped spellings that prepare to it.
_LETTERS = {c: [c, c.upper()] for c in "abxz"}
TOKENS: dict[str, list[str]] = {
    **_LETTERS,
    "a": ["a", "A", "\uff41", "\uff21"],            # full-width a, A
    "k": ["k", "K", "\u212a"],                      # Kelvin sign
    "s": ["s", "S"],
    "ss": ["ss", "SS", "sS", "\u00df", "\u1e9e"],   # ß and capital ß fold to ss
    "é": ["é", "É", "e\u0301", "E\u0301"],          # composed and decomposed
    "ø": ["ø", "Ø"],
    "0": ["0", "\uff10"],                           # full-width zero
    "9": ["9"],
    "田": ["田"],
    "€": ["€"],
    "#": ["#"],                                     # raw unless first (then escaped)
    "=": ["=", "\uff1d"],
    "'": ["'"],
    ",": ["\uff0c"],                                # full-width comma: NFKC makes it a comma
    "+": ["\uff0b"],
    ";": ["\uff1b"],
    '"': ["\uff02"],
    "<": ["\uff1c"],
    ">": ["\uff1e"],
    "\\": ["\uff3c"],
    " ": [" ", "  ", "   ", "\t", "\u00a0", "\\ ", "\\20"],
}
INVISIBLE = ["\u00ad", "\u200b"]  # soft hyphen, zero-width space: mapped to nothing


# -- models ------------------------------------------------------------------------------------
Model = tuple[tuple[tuple[str, tuple[str, ...]], ...], ...]
"""RDNs → AVAs (canonical type, value tokens); values have no leading, trailing or double spaces."""


def _clean(tokens: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for t in tokens:
        if t == " " and (not out or out[-1] == " "):
            continue
        out.append(t)
    while out and out[-1] == " ":
        out.pop()
    return tuple(out) or ("a",)


values = st.lists(st.sampled_from(sorted(TOKENS)), min_size=1, max_size=7).map(_clean)


@st.composite
def rdns(draw):
    types = draw(st.lists(st.sampled_from(sorted(TYPES)), min_size=1, max_size=3, unique=True))
    return tuple((t, draw(values)) for t in types)


models = st.lists(rdns(), min_size=1, max_size=4).map(tuple)


def text_of(value: tuple[str, ...]) -> str:
    return "".join(value)


def same_by_the_standard(a: Model, b: Model) -> bool:
    """distinguishedNameMatch on models: the same RDN count, each RDN the same set of (type, value)."""
    return len(a) == len(b) and all(
        sorted((t, text_of(v)) for t, v in x) == sorted((t, text_of(v)) for t, v in y) for x, y in zip(a, b))


# -- spellings ---------------------------------------------------------------------------------
MUST_ESCAPE = set(',+"\\<>;')
"""Characters RFC 4514 never allows raw in a value (and '#' first)."""


@st.composite
def spell_value(draw, value: tuple[str, ...]) -> str:
    out = []
    for i, token in enumerate(value):
        choices = list(TOKENS[token])
        if token in MUST_ESCAPE or token in "#=":
            choices += ["\\" + token, "".join(f"\\{b:02X}" for b in token.encode())]
        if token == "#" and i == 0:
            choices.remove("#")
        spelling = draw(st.sampled_from(choices))
        if i == 0 and spelling[:1] in (" ", "\t", "\u00a0"):
            spelling = "\\20"  # raw leading and trailing spaces are not RFC 4514
        if i == len(value) - 1 and spelling[-1:] in (" ", "\t", "\u00a0"):
            spelling = "\\ "
        if not spelling.startswith("\\") and draw(st.integers(0, 6)) == 0:
            spelling = "".join(f"\\{b:02x}" for b in spelling.encode("utf-8"))  # hex escapes of any character
            spelling = spelling.upper() if draw(st.booleans()) else spelling
        out.append(spelling)
        if draw(st.integers(0, 12)) == 0:
            out.append(draw(st.sampled_from(INVISIBLE)))
    text = "".join(out)
    if draw(st.integers(0, 5)) == 0:
        text = draw(st.sampled_from(["\\ ", "\\20"])) + text
    if draw(st.integers(0, 5)) == 0:
        text = text + draw(st.sampled_from(["\\ ", "\\20"]))
    return text


@st.composite
def spell(draw, model: Model) -> str:
    rdn_texts = []
    for rdn in model:
        avas = [f"{draw(st.sampled_from(TYPES[t]))}={draw(spell_value(v))}" for t, v in rdn]
        avas = draw(st.permutations(avas))
        rdn_texts.append("+".join(avas))
    separators = [draw(st.sampled_from([",", ",", ",", ", "])) for _ in rdn_texts[1:]]
    text = rdn_texts[0]
    for sep, rdn in zip(separators, rdn_texts[1:]):
        text += sep + rdn
    return text


# -- mutations ---------------------------------------------------------------------------------
@st.composite
def mutate(draw, model: Model) -> Model:
    rdn_list = [list(r) for r in model]
    kind = draw(st.sampled_from(["same", "token", "type", "swap", "move", "drop", "space"]))
    i = draw(st.integers(0, len(rdn_list) - 1))
    j = draw(st.integers(0, len(rdn_list[i]) - 1))
    t, v = rdn_list[i][j]
    if kind == "token":
        k = draw(st.integers(0, len(v) - 1))
        v = _clean([*v[:k], draw(st.sampled_from(sorted(TOKENS))), *v[k + 1:]])
        rdn_list[i][j] = (t, v)
    elif kind == "type":
        others = sorted(set(TYPES) - {x for x, _ in rdn_list[i]})
        if others:
            rdn_list[i][j] = (draw(st.sampled_from(others)), v)
    elif kind == "swap" and len(rdn_list) > 1:
        k = draw(st.integers(0, len(rdn_list) - 1))
        rdn_list[i], rdn_list[k] = rdn_list[k], rdn_list[i]
    elif kind == "move" and len(rdn_list) > 1 and len(rdn_list[i]) > 1:
        k = draw(st.integers(0, len(rdn_list) - 1))
        if k != i and t not in {x for x, _ in rdn_list[k]}:
            rdn_list[k].append(rdn_list[i].pop(j))
    elif kind == "drop" and len(rdn_list) > 1:
        rdn_list.pop(i)
    elif kind == "space":
        k = draw(st.integers(1, len(v)))
        rdn_list[i][j] = (t, _clean([*v[:k], " ", *v[k:]]) if k < len(v) else v)
    return tuple(tuple(r) for r in rdn_list)


@st.composite
def pairs(draw):
    a = draw(models)
    b = draw(mutate(a))
    return a, b, draw(spell(a)), draw(spell(b))


# -- properties --------------------------------------------------------------------------------
@settings(max_examples=600, deadline=None)
@given(pairs())
def test_equal_after_normalisation_exactly_when_equal_by_the_standard(pair):
    a, b, spelled_a, spelled_b = pair
    na, nb = normalize_dn(spelled_a), normalize_dn(spelled_b)
    assert (na == nb) == same_by_the_standard(a, b), (spelled_a, spelled_b, na, nb)
    # The cached hot path agrees with the parser on every spelling.
    assert normalize_dns([spelled_a, spelled_b]) == [na, nb]


@settings(max_examples=300, deadline=None)
@given(models.flatmap(lambda m: st.tuples(st.just(m), spell(m))))
def test_the_canonical_spelling_is_a_fixed_point_and_a_valid_dn(case):
    _, spelled = case
    canonical = normalize_dn(spelled)
    assert normalize_dn(canonical) == canonical
    assert normalize_dns([canonical]) == [canonical]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_is_within_follows_rdn_boundaries(data):
    model = data.draw(models.filter(lambda m: len(m) >= 2))
    cut = data.draw(st.integers(1, len(model) - 1))
    container = data.draw(mutate(model[cut:]))
    inside = normalize_dn(data.draw(spell(model)))
    expected = any(same_by_the_standard(model[c:], container) for c in range(len(model)))
    assert is_within(inside, normalize_dn(data.draw(spell(container)))) == expected
    assert is_within(inside, inside)


DN_CHARS = st.sampled_from(list("cnou=,+\\#\"; <>aAé ") + ["\\2c", "\\c3\\a9", "\uff0c", "\uff1d", "\u0338", "2.5.4.3",
                                                           "\u00ad", "\t", "ß"])


@settings(max_examples=1000, deadline=None)
@given(st.lists(DN_CHARS, max_size=24).map("".join))
def test_the_hot_path_agrees_with_the_parser_on_any_string(text):
    assert normalize_dns([text]) == [normalize_dn_or_none(text)]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_unique_member_values_name_the_same_object_with_or_without_a_uid(data):
    model = data.draw(models)
    spelled = data.draw(spell(model))
    bits = data.draw(st.text(alphabet="01", max_size=12))
    with_uid = f"{spelled}#'{bits}'B"
    assert split_optional_uid(with_uid) == (spelled, f"'{bits}'B")
    assert normalize_dns([with_uid, spelled], optional_uid=True) == [normalize_dn(spelled)] * 2


def test_an_escaped_hash_is_part_of_the_dn_not_a_uid():
    value = "cn=a\\#'01'B,dc=x"
    assert split_optional_uid(value) == (value, None)
    tail = "cn=x,o=a\\#'01'B"
    assert split_optional_uid(tail) == (tail, None)
    assert normalize_dns([tail], optional_uid=True) == [normalize_dn(tail)] == ["cn=x,o=a#'01'b"]
    # An escaped backslash before the '#': the '#' itself is not escaped.
    assert split_optional_uid("cn=a\\\\#'1'B") == ("cn=a\\\\", "'1'B")
