"""Export an analysis spec to the field's workflow engines: yadage (REANA) and recast-atlas.

:func:`export_yadage` reads an ``analysis.yml`` (through :func:`~recastkit.workflow.spec.
load_spec`, so a spec that fails validation, or holds a credential-like field, is not exported)
and writes into one directory:

- ``workflow.yml``: the yadage stages. ``catalog`` imports the spec's cross-section tables
  into a catalog; ``select_<sample>_<region>`` runs ``recastkit select`` on every sample with
  event files (MC and data) in every region; ``scale_<sample>_<region>`` runs
  ``recastkit scale`` on every MC sample; ``fit_<region>`` runs ``recastkit fit`` for every
  fitted region. Each stage names the stages it depends on (``dependencies``) and reads their
  outputs through published names (``{step: select_ZH_SR, output: histfile}``), never through
  hard-coded paths;
- ``steps.yml``: the step definitions (``process``, ``publisher``, ``environment``), one per
  kind of step, each calling one recastkit command in the ``docker-encapsulated`` image
  ``IMAGE:TAG`` (default ``recastkit/recastkit`` tagged with the recastkit version);
- ``inputs.yml``: the workflow's ``init`` parameters with the spec's values. The signal's
  dataset name and files (``signal_dataset``, ``signal_files``) and its normalization
  overrides (``signal_scale_options``) are parameters, so the same workflow re-runs on a new
  signal by changing them;
- ``inputs/``: the region selections (``selection_<region>.yml``), the cross-section tables,
  and the events of generated samples (seeded, as ``recastkit run`` generates them);
- ``reana.yaml``: a REANA specification (type yadage) with the inputs and the result files;
- ``recast.yml``: a recast-atlas catalogue entry (name, metadata, spec, example inputs,
  results).

Everything is validated and every text is built before the first file is written; each file
is written atomically.

What the step commands cannot express is refused with a message (:class:`ConfigError`): MC
backgrounds together with the mock background (``recastkit fit`` takes one or the other), a
mock background other than the tutorial's (50 000 events, 150 GeV). The mock background and
the toy data are drawn by ``recastkit fit`` from one seed, so their numbers differ from
``recastkit run``'s (which seeds them separately); the export notes it.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from recastkit import __version__
from recastkit._atomic import write_text_atomic
from recastkit.exceptions import ConfigError
from recastkit.regions import AnalysisConfig
from recastkit.workflow.spec import AnalysisSpec, SampleSpec, load_spec

log = logging.getLogger(__name__)

#: Default container image of the steps (the tag defaults to the recastkit version).
DEFAULT_IMAGE = "recastkit/recastkit"
#: The mock background ``recastkit fit --mock-background`` draws.
_FIT_MOCK_EVENTS, _FIT_MOCK_DECAY_GEV = 50_000, 150.0

_NAME = re.compile(r"[^A-Za-z0-9_]+")
_IMAGE = re.compile(
    r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_yadage` wrote.

    Attributes:
        directory: The export directory.
        files: Every file written (absolute paths), in the order written.
        parameters: The workflow's init parameters (the content of ``inputs.yml``).
        results: Result files of a run, relative to the workflow's work directory.
        stages: The stage names, in order.
        notes: Remarks to show (files outside the directory, seeds, ...).
    """

    directory: Path
    files: tuple[Path, ...]
    parameters: Mapping[str, Any]
    results: tuple[str, ...]
    stages: tuple[str, ...]
    notes: tuple[str, ...] = ()


def _ident(text: str) -> str:
    """A stage/parameter-safe identifier: letters, digits and '_'."""
    out = _NAME.sub("_", text).strip("_")
    return out if out and not out[0].isdigit() else f"s_{out}"


def _quote(value: Any) -> str:
    return shlex.quote(str(value))


def _ref(stage: str, output: str) -> dict[str, str]:
    """A reference to the published output of a single-step stage."""
    return {"step": stage, "output": output}


def _env(image: str, tag: str) -> dict[str, Any]:
    return {"environment_type": "docker-encapsulated", "image": image, "imagetag": tag}


def _fit_cmd(background_params: Sequence[str], with_data: bool) -> str:
    """The ``recastkit fit`` command: one ``--background`` per MC background parameter."""
    parts = ["recastkit fit --signal {signal}:{observable}"]
    parts += [f"--background {{{p}}}:{{observable}}" for p in background_params]
    if with_data:
        parts.append("--data {data}:{observable}")
    parts.append("{options} -o {outputdir}")
    return " ".join(parts)


def _fit_regions_cmd(regions: Sequence[tuple[str, str]], backgrounds: Sequence[tuple[str, str]],
                     with_data: bool) -> str:
    """The ``recastkit fit --region ...`` command of a multi-region fit.

    Args:
        regions: ``(region name, region id)`` of the fitted regions, in order.
        backgrounds: ``(sample name, sample id)`` of the MC backgrounds.
        with_data: Data histograms (else ``--toy-data`` is among the options).
    """
    def lit(text: str) -> str:  # a literal in the interpolated command (str.format)
        return _quote(text).replace("{", "{{").replace("}", "}}")

    parts = ["recastkit fit"]
    parts += [f"--region {lit(name)}" for name, _ in regions]
    for name, rid in regions:
        obs = f"{{observable_{rid}}}"
        parts.append(f"--signal {lit(name + '=')}{{signal_{rid}}}:{obs}")
        for bname, bid in backgrounds:
            parts.append(f"--background {lit(f'{bname}@{name}=')}{{bkg_{bid}_{rid}}}:{obs}")
        if with_data:
            parts.append(f"--data {lit(name + '=')}{{data_{rid}}}:{obs}")
    parts.append("{options} -o {outputdir}")
    return " ".join(parts)


def _steps(image: str, tag: str, fit_cmd: str,
           fit_regions: tuple[str, Sequence[tuple[str, str]]] | None = None) -> dict[str, Any]:
    """The step definitions (``steps.yml``), one per kind of step (``fit_regions``: the
    multi-region fit's command and its regions)."""
    env = _env(image, tag)
    steps = _single_steps(env, fit_cmd)
    if fit_regions is not None:
        cmd, regions = fit_regions
        publish = {"limit": "{outputdir}/limit.json", "workspace": "{outputdir}/workspace.json",
                   "limit_plot": "{outputdir}/limit.png"}
        for name, rid in regions:
            publish[f"hists_plot_{rid}"] = (
                "{outputdir}/" + f"hists_{name}.png".replace("{", "{{").replace("}", "}}"))
        del steps["fit"]
        steps["fit_regions"] = {
            "process": {"process_type": "string-interpolated-cmd", "cmd": cmd},
            "publisher": {"publisher_type": "interpolated-pub", "publish": publish},
            "environment": env,
        }
    return steps


def _single_steps(env: dict[str, Any], fit_cmd: str) -> dict[str, Any]:
    return {
        "import_catalog": {
            "process": {
                "process_type": "string-interpolated-cmd",
                "cmd": "recastkit xsec import {tables} --catalog {catalog}",
            },
            "publisher": {"publisher_type": "interpolated-pub",
                          "publish": {"catalog": "{catalog}"}},
            "environment": env,
        },
        "select_mc": {
            "process": {
                "process_type": "string-interpolated-cmd",
                "cmd": ("recastkit select {input_files} --config {selection} "
                        "--dataset {dataset} -o {outputfile}"),
            },
            "publisher": {"publisher_type": "interpolated-pub",
                          "publish": {"histfile": "{outputfile}"}},
            "environment": env,
        },
        "select_data": {
            "process": {
                "process_type": "string-interpolated-cmd",
                "cmd": "recastkit select {input_files} --config {selection} -o {outputfile}",
            },
            "publisher": {"publisher_type": "interpolated-pub",
                          "publish": {"histfile": "{outputfile}"}},
            "environment": env,
        },
        "scale": {
            "process": {
                "process_type": "string-interpolated-cmd",
                "cmd": ("recastkit scale {histfile} --catalog {catalog} {options} "
                        "-o {outputfile}"),
            },
            "publisher": {"publisher_type": "interpolated-pub",
                          "publish": {"scaled": "{outputfile}"}},
            "environment": env,
        },
        "fit": {
            "process": {"process_type": "string-interpolated-cmd", "cmd": fit_cmd},
            "publisher": {"publisher_type": "interpolated-pub",
                          "publish": {"limit": "{outputdir}/limit.json",
                                      "workspace": "{outputdir}/workspace.json",
                                      "limit_plot": "{outputdir}/limit.png",
                                      "hists_plot": "{outputdir}/hists.png"}},
            "environment": env,
        },
    }


def _stage(name: str, deps: Sequence[str], parameters: Mapping[str, Any], step: str
           ) -> dict[str, Any]:
    return {
        "name": name,
        "dependencies": list(deps),
        "scheduler": {"scheduler_type": "singlestep-stage", "parameters": dict(parameters),
                      "step": {"$ref": f"steps.yml#/{step}"}},
    }


def _scale_options(spec: AnalysisSpec, sample: SampleSpec) -> str:
    """The ``recastkit scale`` options of a sample: luminosity and its overrides."""
    opts: list[str] = []
    norm = spec.normalization
    over = spec.overrides_for(sample.name)
    lumi = over.lumi or norm.lumi
    if lumi is not None:
        opts += ["--lumi", _quote(lumi)]
    if norm.lumi_rel_unc is not None:
        opts += ["--lumi-unc", _quote(norm.lumi_rel_unc)]
    if over.xsec is not None:
        opts += ["--xsec", _quote(over.xsec)]
    if over.filter_eff is not None:
        opts += ["--filter-eff", _quote(over.filter_eff)]
    if over.k_factor is not None:
        opts += ["--k-factor", _quote(over.k_factor)]
    if over.sumw is not None:
        opts += ["--sumw", _quote(repr(float(over.sumw)))]
    if over.etag is not None:
        opts += ["--etag", _quote(over.etag)]
    if over.xsec_source is not None:
        opts += ["--xsec-source", _quote(over.xsec_source)]
    return " ".join(opts)


def _fit_options(spec: AnalysisSpec, mock: SampleSpec | None, notes: list[str]) -> str:
    it = spec.interpretation
    opts = ["--test-stat", _quote(it.test_stat), "--n-points", str(it.n_points),
            "--rebin", str(it.rebin), "--backend", _quote(it.backend)]
    if it.mu_max is not None:
        opts += ["--mu-max", _quote(repr(float(it.mu_max)))]
    if abs(it.cl - 0.95) > 1e-12:
        opts += ["--cl", _quote(repr(float(it.cl)))]
    if it.xsec_unc is not None:
        opts += ["--xsec-unc", _quote(it.xsec_unc)]
    if it.lumi_unc is not None:
        opts += ["--lumi-unc", _quote(it.lumi_unc)]
    if it.significance:
        opts.append("--significance")
    if it.multi_region:
        for name in it.free_backgrounds:
            opts += ["--free-background", _quote(name)]
        if it.theory is not None:
            for g in it.theory.groups:
                opts += ["--theory", _quote(f"{g.name}={g.rule}:{','.join(g.members)}")]
            opts += ["--theory-normalize", _quote(it.theory.normalize)]
            if it.theory.split:
                opts.append("--theory-split")
    data = spec.samples.data
    seeds = []
    if mock is not None:
        assert mock.mock is not None
        opts.append("--mock-background")
        if it.multi_region:
            opts += ["--mock-name", _quote(mock.name)]
        seeds.append(mock.mock.seed)
    if data.kind == "toy":
        opts.append("--toy-data")
        assert data.toy_seed is not None
        seeds.append(data.toy_seed)
    if seeds:
        opts += ["--seed", str(seeds[0])]
        notes.append(
            f"the mock background and/or toy data are drawn by 'recastkit fit' from seed "
            f"{seeds[0]} (one generator for both), so their numbers differ from "
            "'recastkit run', which seeds them separately")
    return " ".join(opts)


def _check_expressible(spec: AnalysisSpec) -> SampleSpec | None:
    """The mock background, if any; refuse what ``recastkit fit`` cannot express."""
    mocks = [b for b in spec.samples.backgrounds if b.kind == "mock"]
    mc = [b for b in spec.samples.backgrounds if b.kind != "mock"]
    src = str(spec.path)
    it = spec.interpretation
    if len(mocks) > 1:
        raise ConfigError(f"{src}: $.samples.backgrounds: the yadage export supports one mock "
                          f"background, the spec has {len(mocks)}")
    if mocks and mc and not it.multi_region:
        msg = (f"{src}: $.samples.backgrounds: 'recastkit fit' takes either MC backgrounds or "
               f"the mock background, the spec has both (MC: {', '.join(b.name for b in mc)};"
               f" mock: {mocks[0].name}); the yadage export cannot express it")
        raise ConfigError(msg)
    if mocks:
        m = mocks[0].mock
        assert m is not None
        if m.events != _FIT_MOCK_EVENTS or abs(m.decay_gev - _FIT_MOCK_DECAY_GEV) > 1e-9:
            msg = (f"{src}: {mocks[0].where}.mock: 'recastkit fit --mock-background' draws "
                   f"{_FIT_MOCK_EVENTS} events with decay {_FIT_MOCK_DECAY_GEV:g} GeV, the spec "
                   f"asks for {m.events} events with {m.decay_gev:g} GeV")
            raise ConfigError(msg)
    return mocks[0] if mocks else None


def _hist_name(spec: AnalysisSpec, region: str) -> str:
    """The fitted histogram's name in the output of ``recastkit select`` for ``region``: the
    observable, under ``<region>/`` for a region written in the expression vocabulary."""
    obs = spec.interpretation.observable
    return f"{region}/{obs}" if isinstance(spec.region(region).selection, AnalysisConfig) else obs


def _relative(path: Path, directory: Path) -> str:
    """``path`` relative to the export directory if inside it, else absolute."""
    try:
        return path.resolve().relative_to(directory.resolve()).as_posix()
    except ValueError:
        return str(path)


def _dump(doc: Any, header: str) -> str:
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True,
                          width=100)
    return "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines()) + body


def export_yadage(spec_path: str | os.PathLike[str], directory: str | os.PathLike[str], *,
                  image: str = DEFAULT_IMAGE, tag: str | None = None,
                  copy_inputs: bool = False) -> ExportResult:
    """Write the yadage workflow, its inputs, ``reana.yaml`` and ``recast.yml`` of a spec.

    Args:
        spec_path: The analysis spec (``analysis.yml``).
        directory: Output directory (created; files of a previous export are replaced).
        image: Container image of the steps.
        tag: Image tag (default: the recastkit version).
        copy_inputs: Copy the samples' event files into ``DIR/inputs/<sample>/`` so that the
            directory is self-contained (as REANA needs); default: refer to them where they
            are (absolute paths outside the directory).

    Returns:
        What was written.

    Raises:
        ConfigError: An invalid spec (as :func:`load_spec` reports it), a credential-like
            field, a bad image name, or a spec the step commands cannot express.
    """
    spec = load_spec(spec_path)
    out = Path(directory)
    tag = tag or __version__
    if not _IMAGE.match(image):
        raise ConfigError(f"--image: {image!r} is not a container image name "
                          "(e.g. recastkit/recastkit or registry.cern.ch/group/recastkit)")
    if not _TAG.match(tag):
        raise ConfigError(f"--tag: {tag!r} is not a container image tag (e.g. 0.1.0)")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory")
    mock = _check_expressible(spec)
    notes: list[str] = []

    # ---- names: every stage and parameter name must be distinct after sanitizing
    samples = spec.samples
    sig = samples.signal
    event_samples = [s for s in samples.all() if s.kind in ("mc", "data")]
    sample_id = {s.name: ("signal" if s is sig else _ident(s.name)) for s in event_samples}
    region_id = {r.name: _ident(r.name) for r in spec.regions}
    for what, ids in (("sample", sample_id), ("region", region_id)):
        values = list(ids.values())
        clash = sorted({k for k, v in ids.items() if values.count(v) > 1})
        if clash:
            raise ConfigError(f"{spec.path}: {what} names {', '.join(clash)} map to the same "
                              "yadage stage name; rename one")

    rids = set(region_id.values())
    clash = sorted(r for r in rids if r.endswith("_data") and r[:-5] in rids)
    if clash:
        raise ConfigError(f"{spec.path}: $.regions: region {clash[0]!r} clashes with the data "
                          f"selection of region {clash[0][:-5]!r} in the yadage parameters; "
                          "rename it")

    # ---- parameters and files to place in DIR/inputs
    params: dict[str, Any] = {}
    copies: list[tuple[Path, Path]] = []   # (source, destination)
    generated: list[tuple[SampleSpec, Path]] = []
    texts: dict[Path, str] = {}
    inputs_dir = out / "inputs"

    def sample_files(s: SampleSpec) -> list[str]:
        if s.generate is not None and not s.files:
            dest = inputs_dir / f"{sample_id[s.name]}.root"
            generated.append((s, dest))
            return [_relative(dest, out)]
        files: list[str] = []
        for pattern in s.files:
            matches = sorted(Path(p) for p in _glob(pattern))
            if copy_inputs:
                if not matches:
                    raise ConfigError(f"{spec.path}: {s.where}.files: {pattern!r} matches no "
                                      "file (needed by --copy-inputs)")
                for m in matches:
                    dest = inputs_dir / sample_id[s.name] / m.name
                    copies.append((m, dest))
                    files.append(_relative(dest, out))
            else:
                files.append(_relative(Path(pattern), out))
        return files

    for s in event_samples:
        prefix = "signal" if s is sig else (
            "data" if s.role == "data" else f"bkg_{sample_id[s.name]}")
        if s is sig:
            params["signal_dataset"] = s.dataset
            params["signal_files"] = sample_files(s)
            params["signal_scale_options"] = _scale_options(spec, s)
        else:
            if s.dataset is not None:
                params[f"{prefix}_dataset"] = s.dataset
            params[f"{prefix}_files"] = sample_files(s)
    outside = sorted({f for k, v in params.items() if k.endswith("_files") for f in v
                      if Path(f).is_absolute()})
    if outside:
        notes.append(f"{len(outside)} event file(s) lie outside {out} and are referred to by "
                     "absolute path: REANA cannot upload them (use --copy-inputs, or give "
                     "paths its workers can read, e.g. root:// URLs, in inputs.yml)")

    has_data_files = samples.data.kind == "data"
    for r in spec.regions:
        rid = region_id[r.name]
        dest = inputs_dir / f"selection_{rid}.yml"
        # a region in the expression vocabulary: the one-region analysis configuration
        # (objects, observables, ..., regions: {NAME: {cuts}}) that 'recastkit select' takes
        sel_doc = (r.selection.to_mapping() if isinstance(r.selection, AnalysisConfig)
                   else dict(r.document))
        texts[dest] = _dump(sel_doc, f"Selection of region {r.name} "
                            f"(analysis {spec.name}), the --config of 'recastkit select'.")
        params[f"selection_{rid}"] = _relative(dest, out)
        if has_data_files:
            # data: the same selection with unit weights (as recastkit run selects data)
            doc = dict(sel_doc)
            doc["input"] = {**dict(doc.get("input") or {}), "unweighted": True}
            dest = inputs_dir / f"selection_{rid}_data.yml"
            texts[dest] = _dump(doc, f"Selection of region {r.name} for data (unit weights).")
            params[f"selection_{rid}_data"] = _relative(dest, out)
    tables: list[str] = []
    used_names: set[str] = set()
    for table in spec.normalization.catalogs:
        if not table.is_file():
            raise ConfigError(f"{spec.path}: $.normalization.catalogs: no file {table}")
        name = table.name
        n = 2
        while name in used_names:
            name, n = f"{table.stem}_{n}{table.suffix}", n + 1
        used_names.add(name)
        dest = inputs_dir / "xsec" / name
        copies.append((table, dest))
        tables.append(_relative(dest, out))
    if tables:
        params["xsec_tables"] = tables

    # ---- stages
    stages: list[dict[str, Any]] = []
    if tables:
        stages.append(_stage("catalog", ["init"], {
            "tables": _ref("init", "xsec_tables"),
            "catalog": "{workdir}/catalog.sqlite"}, "import_catalog"))
    selects: dict[tuple[str, str], str] = {}
    scales: dict[tuple[str, str], str] = {}
    for s in event_samples:
        sid = sample_id[s.name]
        prefix = "signal" if s is sig else ("data" if s.role == "data" else f"bkg_{sid}")
        for r in spec.regions:
            rid = region_id[r.name]
            name = f"select_{sid}_{rid}"
            p: dict[str, Any] = {"input_files": _ref("init", f"{prefix}_files"),
                                 "selection": _ref("init", f"selection_{rid}_data"
                                                   if s.role == "data" else f"selection_{rid}"),
                                 "outputfile": "{workdir}/selected.root"}
            if s.role != "data":
                p["dataset"] = _ref("init", f"{prefix}_dataset")
            stages.append(_stage(name, ["init"], p,
                                 "select_data" if s.role == "data" else "select_mc"))
            selects[(s.name, r.name)] = name
            if s.role == "data":
                continue
            sname = f"scale_{sid}_{rid}"
            deps = [name, "catalog"] if tables else [name]
            stages.append(_stage(sname, deps, {
                "histfile": _ref(name, "histfile"),
                "catalog": _ref("catalog", "catalog") if tables else "{workdir}/catalog.sqlite",
                "options": (_ref("init", "signal_scale_options") if s is sig
                            else _scale_options(spec, s)),
                "outputfile": "{workdir}/scaled.root"}, "scale"))
            scales[(s.name, r.name)] = sname
    fit_options = _fit_options(spec, mock, notes)
    results: list[str] = []
    mc_bkgs = [b for b in samples.backgrounds if b.kind == "mc"]
    it = spec.interpretation
    fit_regions: tuple[str, Sequence[tuple[str, str]]] | None = None
    if it.multi_region:
        fitted = [(r, region_id[r]) for r in it.regions]
        fit_deps: list[str] = []
        fit_params: dict[str, Any] = {}
        for rname, rid in fitted:
            fit_deps.append(scales[(sig.name, rname)])
            fit_params[f"signal_{rid}"] = _ref(scales[(sig.name, rname)], "scaled")
            for b in mc_bkgs:
                st = scales[(b.name, rname)]
                fit_deps.append(st)
                fit_params[f"bkg_{sample_id[b.name]}_{rid}"] = _ref(st, "scaled")
            data_stage = selects.get((samples.data.name, rname))
            if data_stage is not None:
                fit_deps.append(data_stage)
                fit_params[f"data_{rid}"] = _ref(data_stage, "histfile")
        fit_params.update({f"observable_{rid}": _hist_name(spec, rname)
                           for rname, rid in fitted})
        fit_params.update({"options": fit_options, "outputdir": "{workdir}"})
        stages.append(_stage("fit", fit_deps, fit_params, "fit_regions"))
        results += ["fit/limit.json", "fit/limit.png",
                    *(f"fit/hists_{r}.png" for r, _ in fitted), "fit/workspace.json"]
        fit_regions = (_fit_regions_cmd(fitted, [(b.name, sample_id[b.name]) for b in mc_bkgs],
                                        samples.data.kind == "data"), fitted)
    for rname in () if it.multi_region else it.regions:
        rid = region_id[rname]
        name = f"fit_{rid}"
        bkg_stages = [scales[(b.name, rname)] for b in mc_bkgs]
        deps = [scales[(sig.name, rname)], *bkg_stages]
        data_stage = selects.get((samples.data.name, rname))
        if data_stage is not None:
            deps.append(data_stage)
        fit_params = {"signal": _ref(scales[(sig.name, rname)], "scaled")}
        for b, st in zip(mc_bkgs, bkg_stages, strict=True):
            fit_params[f"bkg_{sample_id[b.name]}"] = _ref(st, "scaled")
        if data_stage is not None:
            fit_params["data"] = _ref(data_stage, "histfile")
        fit_params.update({"observable": _hist_name(spec, rname),
                           "options": fit_options, "outputdir": "{workdir}"})
        stages.append(_stage(name, deps, fit_params, "fit"))
        results += [f"{name}/limit.json", f"{name}/limit.png", f"{name}/hists.png",
                    f"{name}/workspace.json"]

    workflow = {"stages": stages}
    fit_cmd = _fit_cmd([f"bkg_{sample_id[b.name]}" for b in mc_bkgs],
                       samples.data.kind == "data")
    steps = _steps(image, tag, fit_cmd, fit_regions)
    stage_names = tuple(st["name"] for st in stages)

    # ---- reana.yaml and recast.yml
    input_files = sorted({
        *(_relative(d, out) for d in texts), *(_relative(d, out) for _, d in copies),
        *(_relative(d, out) for _, d in generated)})
    reana = {
        "version": "0.9.0",
        "inputs": {"files": ["workflow.yml", "steps.yml", *input_files],
                   "parameters": params},
        "workflow": {"type": "yadage", "file": "workflow.yml"},
        "outputs": {"files": results},
    }
    fit_region = spec.interpretation.regions[0]
    if it.multi_region:
        result_name = (f"{100 * it.cl:.0f}% CL upper limits on mu and sigma x BR (regions "
                       f"{', '.join(it.regions)} fitted together)")
        result_path = "fit/limit.json"
    else:
        result_name = (f"{100 * it.cl:.0f}% CL upper limits on mu and sigma x BR (region "
                       f"{fit_region})")
        result_path = f"fit_{region_id[fit_region]}/limit.json"
    recast = {
        "name": f"recastkit/{spec.name}",
        "metadata": {
            "author": "recastkit export yadage",
            "short_description": (spec.description or f"The analysis {spec.name}")[:200],
            "input requirements": ("signal_dataset: the signal's dataset name (DSID + e-tag, "
                                   "for its cross section); signal_files: its event files"),
        },
        # recast-atlas uses toplevel as given (relative to where it runs): DIR, absolute
        "spec": {"toplevel": str(out.resolve()), "workflow": "workflow.yml"},
        "example_inputs": {"default": {"dataopts": {"initdir": str(out.resolve())},
                                       "initdata": params}},
        "results": [{"name": result_name, "relpath": result_path, "load_yaml": True}],
    }
    header = (f"Written by recastkit {__version__} (recastkit export yadage) from "
              f"{spec.path} (sha256 {spec.sha256[:12]}).")
    texts[out / "workflow.yml"] = _dump(workflow, header + "\nThe stages; the steps are in "
                                        "steps.yml, the default parameters in inputs.yml.")
    texts[out / "steps.yml"] = _dump(steps, header + "\nOne step per recastkit command, in "
                                     f"the image {image}:{tag}.")
    texts[out / "inputs.yml"] = _dump(params, header + "\nThe workflow's init parameters. "
                                      "To re-run on a new signal, change signal_dataset,\n"
                                      "signal_files and signal_scale_options.")
    texts[out / "reana.yaml"] = _dump(reana, header + "\nreana-client run -w NAME (from "
                                      "this directory).")
    texts[out / "recast.yml"] = _dump(recast, header + "\nA recast-atlas catalogue entry.")

    # ---- write: generated events, copies, then the texts
    written: list[Path] = []
    if generated:
        from recastkit.io.synthetic import write_signal_sample

        for s, dest in generated:
            g = s.generate
            assert g is not None
            write_signal_sample(dest, g.events, g.seed, resonance_gev=g.resonance_gev,
                                sum_of_weights=g.sum_of_weights, objects=g.objects)
            written.append(dest.resolve())
    for src, dest in copies:
        from recastkit._atomic import atomic_path

        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
        written.append(dest.resolve())
    for path, text in texts.items():
        write_text_atomic(path, text)
        written.append(path.resolve())
    log.info("wrote the yadage export of %s to %s", spec.name, out)
    return ExportResult(directory=out, files=tuple(written), parameters=params,
                        results=tuple(results), stages=stage_names, notes=tuple(notes))


def _glob(pattern: str) -> list[str]:
    import glob

    if any(c in pattern for c in "*?["):
        return glob.glob(pattern)
    return [pattern] if Path(pattern).exists() else []
