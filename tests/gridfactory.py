"""A small synthetic HEPData-style likelihood grid for the grid tests."""

from __future__ import annotations


def synthetic_grid_workspace(masses: list[tuple[int, int]] | None = None
                             ) -> tuple[dict[str, object], dict[str, list[dict[str, object]]]]:
    """A small HEPData-style grid: a background-only workspace and one JSON Patch per point.

    Two channels (SR 3 bins, CR 2 bins); backgrounds with normsys, histosys, staterror, lumi
    and a free normalization; the signal of point ``sig_{m1}_{m2}`` (mu, lumi, staterror,
    normsys, histosys) falls with m1 and rises with m1 − m2, so CLs crosses 0.05 inside the
    grid. The POI sits on a dummy sample the patch removes, as in the published files.
    """
    masses = masses or [(m1, m2) for m1 in (300, 400, 500, 600) for m2 in (0, 100, 200)]
    def bkg_sample(name: str, data: list[float], extra: list[dict[str, object]]
                   ) -> dict[str, object]:
        return {"name": name, "data": data, "modifiers": [
            {"name": "lumi", "type": "lumi", "data": None}, *extra]}
    sr_b = [20.0, 10.0, 4.0]
    cr_b = [200.0, 120.0]
    channels = [
        {"name": "SR", "samples": [
            bkg_sample("ttbar", sr_b, [
                {"name": "mu_ttbar", "type": "normfactor", "data": None},
                {"name": "staterror_SR", "type": "staterror", "data": [1.5, 1.0, 0.6]},
                {"name": "JES", "type": "histosys", "data": {
                    "hi_data": [21.0, 10.8, 4.5], "lo_data": [19.2, 9.5, 3.7]}},
                {"name": "theory", "type": "normsys", "data": {"hi": 1.1, "lo": 0.92}}]),
            bkg_sample("other", [3.0, 2.0, 1.0], [
                {"name": "xsec_other", "type": "normsys", "data": {"hi": 1.2, "lo": 0.8}},
                {"name": "staterror_SR", "type": "staterror", "data": [0.5, 0.4, 0.3]}]),
            {"name": "dummy", "data": [0.0, 0.0, 0.0], "modifiers": [
                {"name": "mu_SIG", "type": "normfactor", "data": None}]}]},
        {"name": "CR", "samples": [
            bkg_sample("ttbar", cr_b, [
                {"name": "mu_ttbar", "type": "normfactor", "data": None},
                {"name": "staterror_CR", "type": "staterror", "data": [4.0, 3.0]},
                {"name": "JES", "type": "histosys", "data": {
                    "hi_data": [206.0, 121.0], "lo_data": [195.0, 118.5]}}])]},
    ]
    bkg = {
        "channels": channels,
        "observations": [{"name": "SR", "data": [26.0, 13.0, 6.0]},
                         {"name": "CR", "data": [205.0, 117.0]}],
        "measurements": [{"name": "meas", "config": {"poi": "mu_SIG", "parameters": [
            {"name": "lumi", "auxdata": [1.0], "sigmas": [0.017], "bounds": [[0.9, 1.1]],
             "inits": [1.0]}]}}],
        "version": "1.0.0",
    }
    patches = {}
    for m1, m2 in masses:
        scale = 30.0 * (300.0 / m1) ** 3 * (1.0 + (m1 - m2) / 600.0)
        sig = [0.2 * scale, 0.5 * scale, 0.3 * scale]
        patches[f"sig_{m1}_{m2}"] = [
            {"op": "remove", "path": "/channels/0/samples/2"},
            {"op": "add", "path": "/channels/0/samples/-", "value": {
                "name": f"sig_{m1}_{m2}", "data": sig, "modifiers": [
                    {"name": "mu_SIG", "type": "normfactor", "data": None},
                    {"name": "lumi", "type": "lumi", "data": None},
                    {"name": "staterror_SR", "type": "staterror",
                     "data": [0.1 * x for x in sig]},
                    {"name": "sig_theory", "type": "normsys", "data": {"hi": 1.15, "lo": 0.87}},
                    {"name": "JES", "type": "histosys", "data": {
                        "hi_data": [1.05 * x for x in sig], "lo_data": [0.96 * x for x in sig]}},
                ]}},
        ]
    return bkg, patches


def without_histosys(doc: object) -> object:
    """``doc`` (a workspace or a patch) without its histosys modifiers.

    The result is a model of the kind ``recastkit fit`` builds, which the fast limit engine
    (``stats.engine``) evaluates in vectorized chunks.
    """
    if isinstance(doc, dict):
        if doc.get("type") == "histosys":
            return None
        return {k: without_histosys(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [x for x in (without_histosys(v) for v in doc) if x is not None]
    return doc
