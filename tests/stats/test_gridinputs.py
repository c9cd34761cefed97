"""Grid inputs: patch folders, pyhf PatchSets, HEPData tarballs (streamed), patterns."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from recastkit.exceptions import StatsError
from recastkit.stats.gridinputs import (
    digest,
    load_grid_source,
    make_pattern,
    parse_parameters,
    split_region,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gridfactory import synthetic_grid_workspace


def _tarball(path: Path, regions: dict[str, tuple[dict[str, object], dict[str, object]]]
             ) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for region, (bkg, patches) in regions.items():
            files = {"BkgOnly.json": bkg, **{f"patch.{k}.json": v for k, v in patches.items()}}
            for name, doc in files.items():
                data = json.dumps(doc).encode()
                info = tarfile.TarInfo(f"{region}/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def test_folder_patchset_and_files_give_the_same_points(synthetic_grid: Path,
                                                        tmp_path: Path) -> None:
    src = load_grid_source([str(synthetic_grid)])
    assert len(src.points) == 12
    assert src.points[0].name == "sig_300_0"
    bkg, patches = synthetic_grid_workspace()
    assert src.background_digest == digest(bkg)
    # explicit background + folder, + patch files
    same = load_grid_source([str(synthetic_grid / "BkgOnly.json"), str(synthetic_grid)])
    assert [p.digest for p in same.points] == [p.digest for p in src.points]
    files = load_grid_source([str(synthetic_grid / "BkgOnly.json"),
                              str(synthetic_grid / "patch.sig_400_100.json")])
    assert [p.name for p in files.points] == ["sig_400_100"]
    # a pyhf PatchSet: names and values (parameters) from its metadata
    patchset = {"metadata": {"description": "t", "digests": {"sha256": digest(bkg)},
                             "labels": ["m1", "m2"], "references": {}},
                "patches": [{"metadata": {"name": n, "values": [int(n.split("_")[1]),
                                                                int(n.split("_")[2])]},
                             "patch": p} for n, p in patches.items()],
                "version": "1.0.0"}
    ps = tmp_path / "patchset.json"
    ps.write_text(json.dumps(patchset))
    from_ps = load_grid_source([str(synthetic_grid / "BkgOnly.json"), str(ps)])
    assert [p.digest for p in from_ps.points] == [p.digest for p in src.points]
    assert from_ps.points[4].parameters == {"m1": 400.0, "m2": 100.0}
    with pytest.raises(StatsError, match="carries no background-only workspace"):
        load_grid_source([str(ps)])


def test_tarball_regions_are_streamed(tmp_path: Path) -> None:
    bkg, patches = synthetic_grid_workspace([(300, 0), (400, 0)])
    archive = _tarball(tmp_path / "likelihoods.tar.gz",
                       {"RegionA": (bkg, patches), "RegionB": (bkg, {"sig_1_2": [
                           {"op": "add", "path": "/x", "value": 1}]})})
    before = sorted(p.name for p in tmp_path.iterdir())
    src = load_grid_source([f"{archive}:RegionA"])
    assert [p.name for p in src.points] == ["sig_300_0", "sig_400_0"]
    assert src.label.endswith(":RegionA")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing unpacked
    with pytest.raises(StatsError, match=r"several likelihoods.*regions: RegionA, RegionB"):
        load_grid_source([str(archive)])
    with pytest.raises(StatsError, match=r"no region 'RegionZ'.*regions: RegionA, RegionB"):
        load_grid_source([f"{archive}:RegionZ"])
    assert split_region(f"{archive}:RegionB") == (archive, "RegionB")
    # a background given before the archive replaces the archive's
    bkg_file = tmp_path / "bkg.json"
    bkg_file.write_text(json.dumps(bkg))
    assert load_grid_source([str(bkg_file), f"{archive}:RegionB"]).points[0].name == "sig_1_2"


def test_published_tarball_region_a(shared_file: Callable[[str], Path]) -> None:
    archive = shared_file("likelihoods/pyhf-ins1748602-probability-models.tar.gz")
    src = load_grid_source([f"{archive}:RegionA"]).selected(["sbottom_1[34]00_*_60"])
    assert {p.name for p in src.points} >= {"sbottom_1300_205_60", "sbottom_1400_950_60"}
    assert all(p.name.startswith(("sbottom_13", "sbottom_14")) for p in src.points)
    # the archive's BkgOnly.json and patch are the files pyhf's regression tests use
    folder = archive.parent / "sbottom_ins1748602" / "RegionA"
    one = load_grid_source([str(folder / "BkgOnly.json"),
                            str(folder / "patch.sbottom_1300_205_60.json")])
    assert one.background_digest == src.background_digest
    assert one.points[0].digest == next(p.digest for p in src.points
                                        if p.name == "sbottom_1300_205_60")


def test_bad_inputs_name_the_file(tmp_path: Path, synthetic_grid: Path) -> None:
    with pytest.raises(StatsError, match="no such file or folder"):
        load_grid_source([str(tmp_path / "missing")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StatsError, match=r"expected a BkgOnly\.json"):
        load_grid_source([str(empty)])
    bad = tmp_path / "patch.bad.json"
    bad.write_text("{oops")
    with pytest.raises(StatsError, match=r"patch\.bad\.json: patch is not valid JSON"):
        load_grid_source([str(synthetic_grid / "BkgOnly.json"), str(bad)])
    with pytest.raises(StatsError, match="--select nothing_\\*: no point"):
        load_grid_source([str(synthetic_grid)]).selected(["nothing_*"])


def test_pattern() -> None:
    assert parse_parameters("sbottom_1300_205_60", "sbottom_{m1}_{m2}_{m3}") == {
        "m1": 1300.0, "m2": 205.0, "m3": 60.0}
    assert parse_parameters("GG_2jet_1200_x", "GG_{decay}_{m}_x") == {"decay": "2jet",
                                                                     "m": 1200.0}
    regex, fields = make_pattern("a_{x}.{y}")
    assert fields == ("x", "y")
    assert regex.match("a_1.5.2") is not None
    with pytest.raises(StatsError, match="does not match --pattern"):
        parse_parameters("stop_1_2", "sbottom_{m1}_{m2}")
    with pytest.raises(StatsError, match="needs at least one"):
        make_pattern("sbottom")
