"""Commands have no side effects beyond their outputs (issue 7, item 5): read-only commands
create no catalog, ``scale`` with every factor given reads no catalog, outputs respect the
umask."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from recastkit.cli import main
from recastkit.metadata import Catalog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from eventfactory import make_events, write_flat

BY_HAND = ["--xsec", "44.837 fb", "--filter-eff", "1", "--k-factor", "1",
           "--lumi", "140.1 fb^-1", "--sumw", "6813.0258"]


def _one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0])


@pytest.mark.parametrize("args", [
    ["xsec", "show", "345055"],
    ["xsec", "show", "345055", "--json"],
    ["xsec", "sources"],
    ["xsec", "export", "OUT"],
])
def test_read_only_commands_on_a_mistyped_catalog_create_nothing(
        tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "typo" / "catalg.sqlite"
    args = [str(tmp_path / "export.txt") if a == "OUT" else a for a in args]
    line = _one_error_line(CliRunner().invoke(main, [*args, "--catalog", str(db)]))
    assert str(db) in line
    assert "recastkit xsec import" in line
    assert list(tmp_path.iterdir()) == []


def test_scale_with_every_factor_given_reads_no_catalog(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hist = tmp_path / "h.txt"
    hist.write_text("0 100 200 300\n1 2 3\n0.5 1 4\n")

    def no_catalog(*args: object, **kwargs: object) -> None:
        raise AssertionError("the catalog was opened")

    monkeypatch.setattr(Catalog, "__init__", no_catalog)
    result = CliRunner().invoke(main, ["scale", str(hist), "-o", str(tmp_path / "s.txt"),
                                       "--dataset", "345055", *BY_HAND,
                                       "--catalog", str(tmp_path / "c" / "cat.sqlite")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.txt", "s.txt"]


def test_scale_with_a_missing_catalog_says_how_to_import(tmp_path: Path) -> None:
    hist = tmp_path / "h.txt"
    hist.write_text("0 100 200 300\n1 2 3\n0.5 1 4\n")
    db = tmp_path / "c" / "cat.sqlite"
    result = CliRunner().invoke(main, ["scale", str(hist), "-o", str(tmp_path / "s.root"),
                                       "--dataset", "345055", "--lumi", "140.1 fb^-1",
                                       "--sumw", "6813.0258", "--catalog", str(db)])
    line = _one_error_line(result)
    assert str(db) in line
    assert "recastkit xsec import" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.txt"]


@pytest.fixture(params=[0o022, 0o027])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_outputs_respect_the_umask(tmp_path: Path, umask: int) -> None:
    expected = {0o022: 0o644, 0o027: 0o640}[umask]
    sample = write_flat(tmp_path / "in.root", make_events(300, seed=5))
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(main, ["select", str(sample), "-o", str(out / "sel.root"),
                                  "--executor", "iterative"])
    assert result.exit_code == 0, result.output
    for suffix in (".root", ".json"):
        result = runner.invoke(main, ["scale", f"{out / 'sel.root'}:h_mjj_kin", "-o",
                                      str(out / f"scaled{suffix}"), *BY_HAND])
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "scaled.json", "scaled.root", "sel.json", "sel.root"]
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == expected, path.name
