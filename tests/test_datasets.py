"""Dataset names, AMI tags and MC campaigns."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recastkit.datasets import (
    CAMPAIGNS,
    AmiTags,
    Campaign,
    campaign_from_rtag,
    campaign_from_run_number,
    campaign_from_tags,
    get_campaign,
    is_dataset_name,
    parse_ami_tags,
    parse_dataset_name,
)
from recastkit.exceptions import CampaignError, DatasetNameError, RecastkitError

ZH = (
    "mc16_13TeV.345055.PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT.deriv."
    "DAOD_EXOT27.e5706_e5984_s3126_r10201_r10210_p3712"
)
PATTERN = "<project>.<DSID>.<physics_short>.<prod_step>.<data_type>.<tags>"

# ---------------------------------------------------------------------------- strategies

tag_st = st.builds(
    lambda letter, number: f"{letter}{number}",
    st.sampled_from("esarfmptdc"),
    st.integers(min_value=0, max_value=10**6),
)
tags_st = st.lists(tag_st, min_size=1, max_size=8)
alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
project_st = st.one_of(
    st.sampled_from(["mc16_13TeV", "mc20_13TeV", "mc21_13p6TeV", "mc23_13p6TeV", "mc15_13TeV",
                     "valid1", "mc16_5TeV"]),
    st.builds(lambda a, b: f"mc{a}_{b}", st.integers(10, 99), st.text(alnum, min_size=1,
                                                                        max_size=6)),
)
short_st = st.builds(
    lambda head, tail: head + tail,
    st.text(alnum, min_size=1, max_size=1),
    st.text(alnum + "_-", max_size=40),
)
step_st = st.sampled_from(["evgen", "simul", "merge", "recon", "deriv", "digit"])
dtype_st = st.sampled_from(["EVNT", "HITS", "AOD", "DAOD_PHYS", "DAOD_PHYSLITE", "DAOD_EXOT27",
                            "NTUP_PILEUP"])


@st.composite
def dataset_parts(draw: st.DrawFn) -> dict[str, object]:
    return {
        "scope": draw(st.none() | st.just("scope")),
        "project": draw(project_st),
        "dsid": draw(st.integers(min_value=0, max_value=999_999)),
        "short": draw(short_st),
        "step": draw(step_st),
        "dtype": draw(dtype_st),
        "tags": draw(tags_st),
        "tid": draw(st.none() | st.integers(0, 10**8)),
        "slash": draw(st.booleans()),
    }


def build(parts: dict[str, object]) -> tuple[str, str]:
    tags = "_".join(parts["tags"])  # type: ignore[arg-type]
    canonical = (
        f"{parts['project']}.{parts['dsid']:06d}.{parts['short']}.{parts['step']}."
        f"{parts['dtype']}.{tags}"
    )
    text = canonical
    if parts["scope"] is not None:
        text = f"{parts['project']}:{text}"
    if parts["tid"] is not None:
        text += f"_tid{parts['tid']:08d}_00"
    if parts["slash"]:
        text += "/"
    return text, canonical


# ---------------------------------------------------------------------------- AMI tags


def test_ami_tags_properties() -> None:
    tags = parse_ami_tags("e5706_e5984_s3126_r10201_r10210_p3712")
    assert tags.tags == ("e5706", "e5984", "s3126", "r10201", "r10210", "p3712")
    assert tags.etag == "e5706"
    assert tags.etags == ("e5706", "e5984")
    assert tags.stags == ("s3126",)
    assert tags.rtags == ("r10201", "r10210")
    assert tags.rtag == "r10201"
    assert tags.ptags == ("p3712",)
    assert tags.ptag == "p3712"
    assert tags.atags == ()
    assert str(tags) == "e5706_e5984_s3126_r10201_r10210_p3712"
    assert len(tags) == 6
    assert "s3126" in tags


def test_ami_tags_evgen_only_has_no_rtag() -> None:
    tags = parse_ami_tags("e8514")
    assert tags.rtag is None
    assert tags.etag == "e8514"


def test_ami_tags_other_letters_and_repeats() -> None:
    tags = parse_ami_tags("f1089_m2176_t0123_d1500_a875_r10724_r10724")
    assert tags.of_letter("f") == ("f1089",)
    assert tags.of_letter("m") == ("m2176",)
    assert tags.atags == ("a875",)
    assert tags.rtags == ("r10724", "r10724")


@pytest.mark.parametrize(
    "bad", ["", "  ", "e", "5706", "E5706", "e5706__s3126", "e5706_", "_e5706", "e57x6", "ee12"]
)
def test_ami_tags_malformed(bad: str) -> None:
    with pytest.raises(DatasetNameError, match="expected <letter><number>"):
        parse_ami_tags(bad)


def test_ami_tags_constructor_validates() -> None:
    with pytest.raises(DatasetNameError):
        AmiTags(())
    with pytest.raises(DatasetNameError, match="'x1y'"):
        AmiTags(("e1", "x1y"))


@given(tags_st)
def test_ami_tags_round_trip(tags: list[str]) -> None:
    text = "_".join(tags)
    parsed = parse_ami_tags(text)
    assert str(parsed) == text
    assert parsed.tags == tuple(tags)
    assert parsed.rtags == tuple(t for t in tags if t[0] == "r")
    assert parsed.rtag == next((t for t in tags if t[0] == "r"), None)
    assert parsed.etag == next((t for t in tags if t[0] == "e"), None)


# ---------------------------------------------------------------------------- dataset names


def test_parse_reference_name() -> None:
    ds = parse_dataset_name(ZH)
    assert ds.scope is None
    assert ds.project == "mc16_13TeV"
    assert ds.energy_tev == 13.0
    assert ds.dsid == 345055
    assert ds.physics_short == "PowhegPythia8EvtGen_NNPDF3_AZNLO_ZH125J_MINLO_llbb_VpT"
    assert ds.prod_step == "deriv"
    assert ds.data_type == "DAOD_EXOT27"
    assert ds.tags.etag == "e5706"
    assert ds.tags.rtag == "r10201"
    assert ds.campaign is CAMPAIGNS["mc16d"]
    assert str(ds) == ZH
    assert not ds.is_data


def test_parse_scope_tid_slash() -> None:
    ds = parse_dataset_name(f"  mc16_13TeV:{ZH}_tid12345678_00/ ")
    assert ds.scope == "mc16_13TeV"
    assert str(ds) == ZH


def test_parse_13p6_energy_and_mc23c() -> None:
    name = (
        "mc23_13p6TeV.601229.PhPy8EG_A14_ttbar_hdamp258p75_SingleLep.recon.AOD."
        "e8514_s4159_s4114_r14799"
    )
    ds = parse_dataset_name(name)
    assert ds.energy_tev == pytest.approx(13.6, rel=1e-12)
    assert ds.campaign is not None
    assert ds.campaign.name == "mc23c"
    assert ds.campaign.years == (2023,)


def test_parse_repeated_tags_physlite_file() -> None:
    # amiTag of the shared DAOD_PHYSLITE_21.2.108.0 file (mc16e, run 310000)
    name = (
        "mc16_13TeV.410470.PhPy8EG_A14_ttbar_hdamp258p75_nonallhad.deriv.DAOD_PHYSLITE."
        "r10724_r10724_r10724_r10724_r10724_r10726"
    )
    ds = parse_dataset_name(name)
    assert ds.tags.rtags == ("r10724",) * 5 + ("r10726",)
    assert ds.campaign is not None
    assert ds.campaign.name == "mc16e"
    assert str(ds) == name


def test_evgen_has_no_campaign_and_no_energy() -> None:
    ds = parse_dataset_name("valid1.123456.Test.evgen.EVNT.e1234")
    assert ds.campaign is None
    assert ds.energy_tev is None


def test_data_name_keeps_eight_digit_run() -> None:
    name = "data18_13TeV.00348885.physics_Main.deriv.DAOD_PHYS.r11969_r11784_p4072"
    ds = parse_dataset_name(name)
    assert ds.is_data
    assert ds.dsid == 348885
    assert ds.campaign is None
    assert str(ds) == name


@settings(max_examples=200, deadline=None)
@given(dataset_parts())
def test_dataset_name_round_trip(parts: dict[str, object]) -> None:
    text, canonical = build(parts)
    assert is_dataset_name(text)
    ds = parse_dataset_name(text)
    assert str(ds) == canonical
    assert ds.scope == (None if parts["scope"] is None else parts["project"])
    assert ds.project == parts["project"]
    assert ds.dsid == parts["dsid"]
    assert ds.physics_short == parts["short"]
    assert ds.prod_step == parts["step"]
    assert ds.data_type == parts["dtype"]
    assert ds.tags.tags == tuple(parts["tags"])  # type: ignore[arg-type]
    # parsing the canonical form again is a fixed point
    assert parse_dataset_name(str(ds)) == dataclasses.replace(ds, scope=None)


@settings(max_examples=200, deadline=None)
@given(dataset_parts(), st.sampled_from(["drop", "dot", "dsid", "tags", "space", "empty"]))
def test_malformed_dataset_names_raise(parts: dict[str, object], how: str) -> None:
    _, canonical = build(parts)
    fields = canonical.split(".")
    if how == "drop":
        bad = ".".join(fields[:-1])
    elif how == "dot":
        bad = canonical + ".extra"
    elif how == "dsid":
        bad = ".".join([fields[0], "12x45", *fields[2:]])
    elif how == "tags":
        bad = canonical + "_"
    elif how == "space":
        bad = canonical.replace(".", ". ", 1)
    else:
        bad = ""
    assert not is_dataset_name(bad)
    with pytest.raises(DatasetNameError) as info:
        parse_dataset_name(bad)
    assert PATTERN in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, RecastkitError)


def test_malformed_message_names_bad_field() -> None:
    with pytest.raises(DatasetNameError, match=r"bad DSID field '34505'"):
        parse_dataset_name("mc16_13TeV.34505.X.deriv.DAOD.e12")
    with pytest.raises(DatasetNameError, match="found 1 dot-separated fields, expected 6"):
        parse_dataset_name("hello")


def test_is_dataset_name_never_raises() -> None:
    assert is_dataset_name(ZH)
    assert not is_dataset_name("mc16e")
    assert not is_dataset_name(123)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- campaigns

EXPECTED = {
    # name: (run, years, main r-tag, random run number)
    "mc16a": ("Run 2", (2015, 2016), "r9364", 284500),
    "mc16d": ("Run 2", (2017,), "r10201", 300000),
    "mc16e": ("Run 2", (2018,), "r10724", 310000),
    "mc20a": ("Run 2", (2015, 2016), "r13167", 284500),
    "mc20d": ("Run 2", (2017,), "r13144", 300000),
    "mc20e": ("Run 2", (2018,), "r13145", 310000),
    "mc21a": ("Run 3", (2022,), "r13829", 330000),
    "mc23a": ("Run 3", (2022,), "r14622", 410000),
    "mc23c": ("Run 3", (2023,), "r14799", 450000),
    "mc23d": ("Run 3", (2023,), "r15224", 450000),
    "mc23e": ("Run 3", (2024,), "r16083", 470000),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_campaign_table(name: str) -> None:
    run, years, rtag, run_number = EXPECTED[name]
    camp = get_campaign(name.upper())
    assert isinstance(camp, Campaign)
    assert camp.name == name
    assert camp.run == run
    assert camp.years == years
    assert camp.rtags[0] == rtag
    assert run_number in camp.random_run_numbers
    assert campaign_from_rtag(rtag) is camp
    assert campaign_from_tags(f"e1234_s3126_{rtag}_p5000") is camp


def test_campaigns_mapping_is_read_only() -> None:
    assert set(CAMPAIGNS) == set(EXPECTED)
    with pytest.raises(TypeError):
        CAMPAIGNS["mc99"] = CAMPAIGNS["mc16a"]  # type: ignore[index]


def test_get_campaign_unknown_lists_valid() -> None:
    with pytest.raises(CampaignError, match="mc16a, mc16d, mc16e") as info:
        get_campaign("mc17z")
    assert "'mc17z'" in str(info.value)


def test_campaign_from_rtag_unknown_lists_known() -> None:
    with pytest.raises(CampaignError, match=r"r10724 \(mc16e\)"):
        campaign_from_rtag("r99999")


def test_campaign_from_tags_first_known_rtag_wins() -> None:
    # r10726 (merge tag) unknown, r10724 known -> mc16e; a known tag later does not override
    assert campaign_from_tags("r10726_r10724_r14622").name == "mc16e"
    assert campaign_from_tags(parse_ami_tags("a875_r10201_r10210_p4512")).name == "mc16d"
    with pytest.raises(CampaignError, match="r-tags: none"):
        campaign_from_tags("e5706_s3126")
    with pytest.raises(CampaignError, match="r-tags: r1"):
        campaign_from_tags("e5706_r1")


def test_campaign_from_run_number_shared_numbers() -> None:
    # mc16x and mc20x share run numbers: the first listed (mc16x) is returned, same years.
    assert campaign_from_run_number(284500).name == "mc16a"
    assert campaign_from_run_number(300000).name == "mc16d"
    assert campaign_from_run_number(310000).name == "mc16e"
    assert campaign_from_run_number(450000).name == "mc23c"
    assert campaign_from_run_number(410000).name == "mc23a"
    assert campaign_from_run_number(470000).name == "mc23e"
    assert campaign_from_run_number(284500).years == get_campaign("mc20a").years
    with pytest.raises(CampaignError, match="284500 \\(mc16a\\)"):
        campaign_from_run_number(123)


def test_shared_physlite_file_is_mc16e(shared_file: Callable[[str], Path]) -> None:
    import uproot

    path = shared_file("root/DAOD_PHYSLITE_21.2.108.0.art.pool.root")
    with uproot.open(path) as f:
        run = f["CollectionTree"]["EventInfoAux./EventInfoAux.runNumber"].array(
            library="np", entry_stop=1
        )
    assert int(run[0]) == 310000
    assert campaign_from_run_number(int(run[0])).name == "mc16e"
    assert campaign_from_tags("r10724_r10724_r10724_r10724_r10724_r10726").name == "mc16e"


def test_shared_rntuple_file_is_mc23c(shared_file: Callable[[str], Path]) -> None:
    import uproot

    path = shared_file("root/uproot-physlite-rntuple_v1-0-0-0.root")
    with uproot.open(path) as f:
        run = f["EventData"].arrays(["EventInfoAuxDyn:runNumber"], entry_stop=1)
    assert int(run["EventInfoAuxDyn:runNumber"][0]) == 450000
    assert campaign_from_run_number(450000).name == "mc23c"
    assert campaign_from_tags("e8514_s4159_s4114_r14799").name == "mc23c"
