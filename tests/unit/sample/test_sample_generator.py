"""The generator: determinism, sizes, and every planted case at the default size."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from profile_sync.sample import (
    ACCOUNTDISABLE,
    FLAVOURS,
    SampleDirectory,
    generate,
    render_ldif,
)

DISABLED_VALUES = {514, 546, 66050, 66082}


@pytest.fixture(scope="module")
def directory() -> SampleDirectory:
    """The default sample directory (2,000 people, 100 groups, seed 42)."""
    return generate()


def test_same_seed_gives_identical_bytes() -> None:
    for flavour in FLAVOURS:
        first = render_ldif(generate(300, 20, seed=7), flavour)
        second = render_ldif(generate(300, 20, seed=7), flavour)
        assert first == second, flavour


def test_different_seed_gives_different_bytes() -> None:
    assert render_ldif(generate(300, 20, seed=7)) != render_ldif(generate(300, 20, seed=8))


def test_generation_does_not_touch_global_random() -> None:
    import random

    random.seed(1234)
    expected = random.random()
    random.seed(1234)
    generate(100, 10, seed=3)
    assert random.random() == expected


@pytest.mark.parametrize(
    ("people", "groups"), [(0, 0), (1, 1), (7, 3), (19, 5), (20, 0), (50, 12), (400, 40)]
)
def test_requested_sizes_render_in_both_flavours(people: int, groups: int) -> None:
    directory = generate(people, groups, seed=11)
    assert len(directory.people) == people
    assert len(directory.groups) == groups
    assert len({p.key for p in directory.people}) == people
    assert len({g.key for g in directory.groups}) == groups
    for flavour in FLAVOURS:
        directory.validate(flavour)
        assert render_ldif(directory, flavour).startswith(b"version: 1\n")


def test_keys_follow_list_order(directory: SampleDirectory) -> None:
    assert [p.key for p in directory.people] == [f"p{i:06d}" for i in range(2000)]
    assert [g.key for g in directory.groups] == [f"g{i:04d}" for i in range(100)]


def test_guids_are_unique_version_4_and_16_bytes(directory: SampleDirectory) -> None:
    guids = [p.guid for p in directory.people] + [g.guid for g in directory.groups]
    assert len(set(guids)) == len(guids)
    assert all(len(g) == 16 and uuid.UUID(bytes_le=g).version == 4 for g in guids)


def test_account_names_are_unique_short_and_ascii(directory: SampleDirectory) -> None:
    sams = [p.sam_account_name.casefold() for p in directory.people]
    assert len(set(sams)) == len(sams)
    assert all(len(s) <= 20 and s.isascii() for s in sams)
    mails = [p.mail for p in directory.people if p.mail]
    assert len(set(mails)) == len(mails)
    employee_ids = [p.employee_id for p in directory.people if p.employee_id]
    assert len(set(employee_ids)) == len(employee_ids) > 1500


def test_disabled_accounts_use_several_values_with_bit_2(directory: SampleDirectory) -> None:
    disabled = [p for p in directory.people if p.user_account_control & ACCOUNTDISABLE]
    assert {p.user_account_control for p in disabled} == DISABLED_VALUES
    assert 40 <= len(disabled) <= 160
    assert directory.disabled_keys() == sorted(directory.expectations.disabled_keys)
    assert set(directory.expectations.disabled_values) == DISABLED_VALUES
    enabled = Counter(p.user_account_control for p in directory.people if not p.disabled)
    assert enabled[512] > 1000 and enabled[66048] > 50 and enabled[544] > 0


def test_disabled_manager_still_has_reports(directory: SampleDirectory) -> None:
    key = directory.expectations.disabled_manager_key
    assert key is not None and directory.person(key).disabled
    assert any(p.manager_key == key for p in directory.people)


def test_hierarchy_has_one_root_and_reaches_it(directory: SampleDirectory) -> None:
    e = directory.expectations
    people = directory.people_by_key()
    roots = [p.key for p in directory.people
             if p.manager_key is None and p.dangling_manager is None
             and p.key not in e.service_account_keys]
    assert roots == [e.ceo_key]
    cycle = set(e.manager_cycle)
    for person in directory.people:
        seen: set[str] = set()
        key: str | None = person.key
        while key is not None and key not in seen and key not in cycle:
            seen.add(key)
            key = people[key].manager_key
        # every chain ends at the CEO, a dangling manager, a service account, or the cycle
        assert (key in cycle or key is None), person.key


def test_manager_cycle(directory: SampleDirectory) -> None:
    a, b = directory.expectations.manager_cycle
    assert directory.person(a).manager_key == b
    assert directory.person(b).manager_key == a
    assert directory.manager_cycles() == [tuple(sorted((a, b)))]


def test_dangling_managers_name_nobody(directory: SampleDirectory) -> None:
    keys = directory.expectations.dangling_manager_keys
    assert 2 <= len(keys) == len(directory.dangling_manager_keys())
    cns = {p.cn for p in directory.people}
    for key in keys:
        ref = directory.person(key).dangling_manager
        assert ref is not None and ref.cn not in cns


def test_manager_out_of_scope(directory: SampleDirectory) -> None:
    key = directory.expectations.out_of_scope_manager_key
    assert key is not None
    manager = directory.person(key).manager_key
    assert manager in directory.expectations.service_account_keys
    assert directory.person(manager).container == ("Service Accounts",)


def test_many_reports_come_before_their_manager(directory: SampleDirectory) -> None:
    position = {p.key: i for i, p in enumerate(directory.people)}
    forward = [p.key for p in directory.people
               if p.manager_key is not None and position[p.manager_key] > position[p.key]]
    assert len(forward) > 500
    assert tuple(sorted(forward)) == directory.expectations.forward_manager_keys


def test_service_accounts_are_out_of_the_user_containers(directory: SampleDirectory) -> None:
    keys = directory.expectations.service_account_keys
    assert 1 <= len(keys) <= 10
    for key in keys:
        person = directory.person(key)
        assert person.container == ("Service Accounts",)
        assert person.employee_id is None and not person.proxy_addresses
    containers = Counter(p.container for p in directory.people)
    assert len([c for c in containers if c[-1] == "Users"]) >= 8


def test_special_names(directory: SampleDirectory) -> None:
    expected = {
        "comma": "Müller, Jürgen",
        "plus": "Anna Smith+Jones",
        "leading_hash": "#Ida Olsen",
        "trailing_space": "Tom Trailing ",
        "quote_semicolon": 'Robert "Bobby" Tables; Jr.',
        "backslash": "Dana\\Ops",
        "angle_brackets": "Lee <IT> Chen",
        "jose": "José Núñez",
        "zoe": "Zoë Lefèvre",
        "oyvind": "Øyvind Sørensen",
        "agaoglu": "Ayşe Ağaoğlu",
        "li_lei": "李 雷",
        "aero": "Freja Ærø",
    }
    special = directory.expectations.special_cn_keys
    assert {case: directory.person(key).cn for case, key in special.items()} == expected
    # the comma person manages people, so their escaped DN is referenced
    assert any(p.manager_key == special["comma"] for p in directory.people)
    assert special["jose"] in directory.expectations.photo_keys
    non_ascii = set(directory.expectations.non_ascii_keys)
    assert {special[c] for c in ("jose", "zoe", "li_lei", "aero")} <= non_ascii
    assert len(non_ascii) > 200


def test_container_that_needs_escaping(directory: SampleDirectory) -> None:
    keys = directory.expectations.special_container_keys
    assert len(keys) > 20
    assert {directory.person(k).container for k in keys} == {("Research", "Users", "R&D, Zürich")}


def test_proxy_addresses(directory: SampleDirectory) -> None:
    e = directory.expectations
    with_proxies = [p for p in directory.people if p.proxy_addresses]
    for person in with_proxies:
        primaries = [a for a in person.proxy_addresses if a.startswith("SMTP:")]
        assert primaries == [f"SMTP:{person.mail}"], person.key
        assert any(a.startswith("smtp:") for a in person.proxy_addresses)
    with_sip = [p for p in with_proxies if any(a.startswith("SIP:") for a in p.proxy_addresses)]
    assert len(with_sip) > 0.9 * len(directory.people)
    assert e.no_proxy_address_keys and all(
        not directory.person(k).proxy_addresses for k in e.no_proxy_address_keys)
    assert e.no_sip_keys and all(
        directory.person(k).proxy_addresses
        and not any(a.startswith("SIP:") for a in directory.person(k).proxy_addresses)
        for k in e.no_sip_keys)
    # the primary is not always the first value
    assert any(not p.proxy_addresses[0].startswith("SMTP:") for p in with_proxies)


def test_mixed_case_upns_and_address_list_flags(directory: SampleDirectory) -> None:
    e = directory.expectations
    mixed = [directory.person(k).user_principal_name for k in e.mixed_case_upn_keys]
    assert mixed and all(u is not None and u != u.lower() for u in mixed)
    assert all(directory.person(k).hide_from_address_lists is True for k in e.hidden_keys)
    assert all(directory.person(k).hide_from_address_lists is False for k in e.not_hidden_keys)
    assert e.hidden_keys and e.not_hidden_keys
    flagged = sum(p.hide_from_address_lists is not None for p in directory.people)
    assert flagged == len(e.hidden_keys) + len(e.not_hidden_keys) < 0.1 * len(directory.people)


def test_photos_are_valid_distinct_jpegs(directory: SampleDirectory) -> None:
    photos = [p.photo for p in directory.people if p.photo is not None]
    assert 0.10 * len(directory.people) <= len(photos) <= 0.20 * len(directory.people)
    assert all(p.startswith(b"\xff\xd8\xff\xe0") and p.endswith(b"\xff\xd9") for p in photos)
    assert len(set(photos)) == len(photos)
    assert len(directory.expectations.photo_keys) == len(photos)


def test_big_group(directory: SampleDirectory) -> None:
    big = directory.group(directory.expectations.big_group_key or "")
    assert len(big.member_keys) > 1500
    assert directory.biggest_group() is big


@pytest.mark.parametrize("people", [60, 500])
def test_big_group_scales_with_small_sizes(people: int) -> None:
    small = generate(people, 20, seed=5)
    big = small.group(small.expectations.big_group_key or "")
    regular = people - len(small.expectations.service_account_keys)
    assert len(big.member_keys) == regular


def test_group_cycle_nesting_dangling_and_empty(directory: SampleDirectory) -> None:
    e = directory.expectations
    g1, g2 = e.group_cycle
    assert g2 in directory.group(g1).member_keys and g1 in directory.group(g2).member_keys
    assert directory.group_cycles() == [tuple(sorted((g1, g2)))]
    assert len(e.nested_group_keys) >= 5
    assert list(e.nested_group_keys) == sorted(directory.nested_group_keys())
    assert directory.dangling_member_group_keys() == [e.dangling_member_group_key]
    empty = directory.group(e.empty_group_key or "")
    assert not empty.member_keys and not empty.dangling_members
    group_types = Counter(g.group_type for g in directory.groups)
    assert len(group_types) >= 4


def test_planted_roles_do_not_overlap_disabled(directory: SampleDirectory) -> None:
    e = directory.expectations
    disabled = set(e.disabled_keys)
    planted = set(e.special_cn_keys.values()) | set(e.manager_cycle) | set(e.dangling_manager_keys)
    planted |= set(e.mixed_case_upn_keys) | set(e.no_proxy_address_keys) | set(e.hidden_keys)
    assert not planted & disabled
