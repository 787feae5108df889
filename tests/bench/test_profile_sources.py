"""Issue 16, item 5: every value of the ``paper`` profile carries its source (a section/table of a
paper) or "choice: <reason>"; README's protocol table is the rendered one; departures reach the
run record without touching the run id."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench.profiles as C
from bench.config import make_config
from bench.profiles import PROFILE_DEPARTURES, PROFILE_SOURCES, PROFILES, is_sourced

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- protocol-table -->", "<!-- /protocol-table -->"


def test_every_paper_profile_field_has_a_source_or_a_choice():
    sources = PROFILE_SOURCES["paper"]
    missing = sorted(set(PROFILES["paper"]) - set(sources))
    assert not missing, f"paper profile fields without a source: {missing}"
    bad = sorted(k for k, v in sources.items() if not is_sourced(v))
    assert not bad, f"neither a paper section nor 'choice: <reason>': {bad}"


def test_a_field_with_neither_fails(monkeypatch):
    monkeypatch.setitem(PROFILE_SOURCES["paper"], "lr", "the usual value")
    with pytest.raises(AssertionError, match="lr"):
        test_every_paper_profile_field_has_a_source_or_a_choice()
    monkeypatch.setitem(PROFILE_SOURCES["paper"], "lr", "choice: ")
    with pytest.raises(AssertionError, match="lr"):
        test_every_paper_profile_field_has_a_source_or_a_choice()
    monkeypatch.delitem(PROFILE_SOURCES["paper"], "lr")
    with pytest.raises(AssertionError, match="lr"):
        test_every_paper_profile_field_has_a_source_or_a_choice()


def test_the_settings_the_issue_names_are_recorded():
    sources = PROFILE_SOURCES["paper"]
    for key in (
        "weight_decay",
        "random_erasing_mode",
        "interpolation_and_crop",
        "warmup_backbone_batchnorm",
        "warmup_momentum",
    ):
        assert key in sources and is_sourced(sources[key]), key
    assert "2e-5" in sources["weight_decay"] and "pixel" in sources["random_erasing_mode"]


def test_protocol_table_lists_every_value():
    table = C.protocol_table("paper")
    lines = table.strip().splitlines()
    assert lines[0] == "| setting | value | source |"
    assert len(lines) == 2 + len(PROFILE_SOURCES["paper"])
    assert "| `lr` | `0.0001` | XBN paper sec. 5.1" in table


def test_departures_go_to_the_record_not_the_run_id():
    cfg = make_config("sop", "xbn", 0, "paper")
    assert cfg.deviations == ()  # the id of every paper run is unchanged
    assert any("pixel" in d for d in PROFILE_DEPARTURES["paper"])
    assert PROFILE_DEPARTURES.get("cpu", ()) == ()


def test_readme_protocol_table_is_the_rendered_one():
    text = README.read_text()
    if START not in text and END not in text:
        pytest.skip(f"README.md has no {START} section yet")
    assert START in text and END in text, "README.md has only one of the protocol-table markers"
    section = text.split(START, 1)[1].split(END, 1)[0]
    assert section.strip() == C.protocol_table("paper").strip(), (
        "README's protocol table differs from bench.profiles.protocol_table('paper'): "
        "paste the rendered table between the markers"
    )
