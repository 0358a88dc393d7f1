"""The report of one sweep: ``report.html`` (self-contained) and ``report.md`` in the sweep
directory, written when the sweep ends and by ``python -m snnsearch.report <dir>``.

It answers "which of T, D, tau, depth, pretraining, neuron and lr matter, and what does accuracy
cost in energy?": best trials (selected on the validation metric; the test metric is measured
once, at the end of a completed trial) and counts by status; hyperparameter importance per
objective (:mod:`snnsearch.reporting.importance`); the accuracy/abs_rel–energy front against ANN
baselines and the hypervolume over trial-epochs; parallel coordinates; every objective against
every parameter; learning curves of the top trials; per-layer firing rates and energy of the best
trials; errored trials grouped by message; and, after ``--repeats``, mean ± std over seeds.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snnsearch.reporting import figures as F
from snnsearch.reporting import front as P
from snnsearch.reporting.export_links import export_links
from snnsearch.reporting.importance import Importance, importances, objective_column
from snnsearch.reporting.page import Section, Table, cell, to_html, to_markdown
from snnsearch.reporting.params import ParamInfo, label, load_params, shown
from snnsearch.storage import sweepdir as _storage

if TYPE_CHECKING:
    import pandas as pd

HTML_FILE, MD_FILE, PLOTS_DIR = "report.html", "report.md", "plots"
ENERGY = "energy_mj"
LAYER_TABLE = "energy/layers.csv"  # written into each checkpoint by the trainables
SENSITIVITY_FILE = "energy_sensitivity.csv"  # written beside trials.parquet by the sweep
MAX_PARAM_COLUMNS = 7


@dataclasses.dataclass(frozen=True)
class SweepReport:
    """What :func:`write_report` produced.

    Args:
        html_path: ``report.html``; md_path: ``report.md``; markdown: its text.
        importances: per objective; front: the spiking trials on the metric–energy front.
    """

    html_path: str
    md_path: str
    markdown: str
    importances: list[Importance]
    front: pd.DataFrame


def report_objectives(settings: dict[str, Any], table: pd.DataFrame) -> list[tuple[str, str]]:
    """The sweep's objectives, else its metric plus ``energy_mj:min`` when trials report energy."""
    objs = [tuple(o) for o in settings.get("objectives") or []]
    if not objs:
        objs = [(settings["metric"], settings["mode"])]
        if f"last/{ENERGY}" in table and table[f"last/{ENERGY}"].notna().any():
            objs.append((ENERGY, "min"))
    return [(str(m), str(d)) for m, d in objs]


def _param_label(row: pd.Series, params: Sequence[ParamInfo], limit: int = 4) -> str:
    parts = [f"{p.name}={cell(shown(p, row.get(p.column)))}" for p in params[:limit]
             if label(row.get(p.column)) != "n/a"]
    return ", ".join(parts)


def ranked(table: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """Trials with a value, best first on the (validation) metric."""
    col = objective_column(table, metric)
    if col is None:
        return table.iloc[:0]
    return table[table[col].notna()].sort_values(col, ascending=mode == "min", kind="stable")


def write_report(
    sweep_dir: str,
    table: pd.DataFrame,
    history: pd.DataFrame,
    settings: dict[str, Any],
    *,
    params: Sequence[ParamInfo] | None = None,
    repeats: pd.DataFrame | None = None,
    top: int = 5,
) -> SweepReport:
    """Builds and writes ``report.html`` and ``report.md`` into ``sweep_dir``.

    Args:
        sweep_dir: the sweep directory (local path or pyarrow-fs URI).
        table: trial table (:func:`snnsearch.reporting.results.load_table`).
        history: per-epoch rows (:func:`snnsearch.reporting.history.load_history`).
        settings: ``sweep.json`` content (``metric``, ``mode``, ``objectives``, ``pareto_ref``,
            ``name``).
        params: searched parameters (default: :func:`load_params`).
        repeats: rows of the ``--repeats`` confirmation runs, if any.
        top: number of best trials in the tables and learning curves.
    """
    metric, mode = settings["metric"], settings["mode"]
    params = list(params) if params is not None else load_params(sweep_dir, table)
    objectives = report_objectives(settings, table)
    found = importances(table, params, objectives, seed=int(settings.get("seed") or 0))
    order = _by_importance(params, found)
    best = ranked(table, metric, mode).head(top)
    labels = {r["trial_id"]: f"#{i + 1} {r['trial_id']}: {_param_label(r, order)}"
              for i, (_, r) in enumerate(best.iterrows())}
    sections = [
        _best_section(table, best, metric, mode, order),
        _importance_section(found),
    ]
    from snnsearch.reporting.compare import report_section

    compared = report_section(table, settings)  # report grids: the report's numbers beside ours
    if compared is not None:
        sections.insert(0, compared)
    front_sec, front = _front_section(table, history, metric, mode, objectives, settings,
                                      sweep_dir)
    sections.append(front_sec)
    if repeats is not None and not repeats.empty:
        from snnsearch.reporting.repeats import repeats_section

        sections.insert(1, repeats_section(repeats, metric, mode, order))
    obj_cols = [(c, m, d) for m, d in objectives if (c := objective_column(table, m))]
    sections.append(Section("parallel", "Parallel coordinates").figure(
        "parallel_coordinates", F.parallel_coordinates(table, order, obj_cols)).text(
        "<span class=note>One line per trial with a value; parameters ordered by importance; "
        "n/a: the parameter did not exist for that trial (a conditional one).</span>"))
    per_param = Section("params", "Objectives against each hyperparameter")
    for col, name, d in obj_cols:
        per_param.figure(f"{name}_vs_params",
                         F.objective_vs_params(table, order, col, f"{name} ({F.ARROW[d]})"))
    sections.append(per_param)
    sections.append(Section("curves", f"Learning curves of the top {len(best)} trials").figure(
        "learning_curves", P.learning_curves(history, list(best["trial_id"]), objectives, labels)))
    spiking = ranked(table[~P.ann_mask(table)], metric, mode).head(3)  # ANNs have no spikes
    labels |= {r["trial_id"]: f"{r['trial_id']}: {_param_label(r, order)}"
               for _, r in spiking.iterrows() if r["trial_id"] not in labels}
    sections.append(_layers_section(table, spiking, labels, sweep_dir))
    sections.append(_errors_section(table))
    title = f"Sweep report: {settings.get('name') or Path(str(sweep_dir)).name}"
    counts = table["status"].value_counts().to_dict() if "status" in table else {}
    lead = (f"{len(table)} trials of <code>{html.escape(str(settings.get('task', '')))}</code>"
            f" · objective <b>{html.escape(metric)}</b> ({mode}) · " + " ".join(
                f"<span class=pill>{html.escape(str(k))}: {v}</span>" for k, v in counts.items())
            + f" · <code>{html.escape(str(sweep_dir))}</code>")
    page = to_html(title, lead, sections)
    markdown = to_markdown(title, lead, sections)
    html_path = _storage.join(sweep_dir, HTML_FILE)
    md_path = _storage.join(sweep_dir, MD_FILE)
    _storage.write_text(html_path, page)
    _storage.write_text(md_path, markdown)
    if not _storage.is_uri(str(sweep_dir)):
        write_plots(sections, Path(str(sweep_dir)) / PLOTS_DIR)
    return SweepReport(html_path, md_path, markdown, found, front)


def write_plots(sections: Sequence[Section], folder: Path) -> list[Path]:
    """The report's figures as PNG files too (``plots/<name>.png``), for slides and diffs."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for sec in sections:
        for block in sec.blocks:
            if isinstance(block, tuple):
                path = folder / f"{block[0]}.png"
                _storage.write_bytes(str(path), block[1])  # atomic
                written.append(path)
    return written


def _by_importance(params: Sequence[ParamInfo], found: Sequence[Importance]) -> list[ParamInfo]:
    score = {p.name: 0.0 for p in params}
    for imp in found:
        for name, value in imp.values.items():
            score[name] = max(score.get(name, 0.0), value)
    return sorted(params, key=lambda p: -score.get(p.name, 0.0))


def _best_section(table: pd.DataFrame, best: pd.DataFrame, metric: str, mode: str,
                  params: Sequence[ParamInfo]) -> Section:
    counts = table["status"].value_counts() if "status" in table else {}
    sec = Section("best", "Best trials and counts by status")
    sec.table(Table(["status", "trials"], [[k, int(v)] for k, v in dict(counts).items()]))
    tests = [c for c in table.columns if c.startswith("last/test_")]
    params = params[:MAX_PARAM_COLUMNS]  # the most important ones; the page must stay readable
    cols = ["rank", "trial", "status", "epochs", f"{metric} (val, best epoch)",
            *[c.removeprefix("last/") + " (once)" for c in tests], "energy_mj", "time_s",
            *[p.name for p in params]]
    vcol = objective_column(table, metric)
    ann = set(table[P.ann_mask(table)]["trial_id"])
    rows = []
    for i, (_, r) in enumerate(best.iterrows()):
        trial = f"{r['trial_id']} (ANN)" if r["trial_id"] in ann else r["trial_id"]
        rows.append([i + 1, trial, r.get("status"), r.get("epochs_run"), r.get(vcol),
                     *[r.get(c) for c in tests], r.get(f"last/{ENERGY}"), r.get("time_total_s"),
                     *[shown(p, r.get(p.column)) for p in params]])
    sec.text(f"Selected on <b>{html.escape(metric)}</b> ({mode}) of the validation split at the "
             "trial's best epoch; test metrics are measured once, at the end of a trial that "
             "ran its full budget (blank: stopped before).")
    return sec.table(Table(cols, rows))


def _importance_section(found: Sequence[Importance]) -> Section:
    sec = Section("importance", "Which hyperparameters matter")
    sec.figure("importance", F.importance_bars(found))
    for imp in found:
        if not imp.values:
            sec.text(f"{html.escape(imp.objective)}: no importance ({html.escape(imp.note)}).")
            continue
        top = ", ".join(f"<b>{html.escape(k)}</b> {v:.2f}" for k, v in
                        list(imp.values.items())[:3])
        sec.text(f"{html.escape(imp.objective)} ({imp.mode}): {top} — {imp.evaluator} on "
                 f"{imp.trials} {html.escape(imp.basis)}; importances sum to 1.")
    names = list(dict.fromkeys(n for imp in found for n in imp.values))
    sec.table(Table(["parameter", *[i.objective for i in found if i.values]],
                    [[n, *[i.values.get(n) for i in found if i.values]] for n in names]))
    return sec.text("<span class=note>A conditional parameter (tau, D, depth knobs) is rated on "
                    "the trials where it exists; whether it exists is credited to its parent "
                    "(neuron, model).</span>")


def _front_section(table: pd.DataFrame, history: pd.DataFrame, metric: str, mode: str,
                   objectives: Sequence[tuple[str, str]], settings: dict[str, Any],
                   sweep_dir: str = "") -> tuple[Section, pd.DataFrame]:
    sec = Section("front", f"{metric} against energy, with ANN baselines")
    cols = P.front_columns(table, metric)
    front = P.snn_front(table, cols[0], mode, cols[1]) if cols else table.iloc[:0]
    sec.figure(f"{metric}_vs_energy_mj", P.front_figure(table, metric, mode))
    if cols:
        rows = [[r["trial_id"], r[cols[0]], r[cols[1]], *[label(r.get(f"config/{k}")) for k in
                                                            ("model", "neuron", "T", "D")]]
                for _, r in front.iterrows()]
        rows += [[f"{r['trial_id']} (ANN baseline)", r.get(cols[0]), r.get(cols[1]),
                  label(r.get("config/model", r.get("config/encoder"))), "relu", 1, ""]
                 for _, r in P.ann_baselines(table, cols[0], mode).iterrows()]
        sec.table(Table(["trial", metric, "energy_mj", "model", "neuron", "T", "D"], rows))
        links = export_links(sweep_dir, front["trial_id"].astype(str)) if len(front) else None
        if links:
            sec.text(links)
    hv_objs = list(objectives) if len(objectives) >= 2 else []
    if hv_objs:
        bad = table[(table["status"] == "errored").to_numpy() | P.ann_mask(table)]["trial_id"]
        ref = settings.get("pareto_ref")
        curve = P.hypervolume_curve(history, hv_objs, ref, exclude=list(bad))
        if curve is not None:
            sec.figure("hypervolume", P.hypervolume_figure(curve, hv_objs))
            which = "given --pareto-ref" if ref else "worst value seen per objective"
            sec.text(f"Hypervolume after {len(curve[0])} trial-epochs: {curve[1][-1]:.4g} "
                     f"(reference {tuple(round(r, 4) for r in curve[2])}, the {which}; spiking "
                     "trials only).")
    return sec, front


def _layers_section(table: pd.DataFrame, best: pd.DataFrame, labels: dict[str, str],
                    sweep_dir: str) -> Section:
    sec = Section("layers", "Per-layer firing rates and energy of the best spiking trials")
    ids = list(best["trial_id"])[:3]
    sec.figure("layer_firing_rates", P.layer_rates_figure(table, ids, labels))
    for _, row in best.head(1).iterrows():
        layers = _layer_table(row.get("path"))
        if layers is not None:
            sec.text(f"Energy per layer of the best trial {html.escape(str(row['trial_id']))} "
                     "(last checkpoint, mJ per image):")
            sec.table(Table(list(layers.columns), layers.values.tolist()))
    sensitivity = _csv(_storage.join(sweep_dir, SENSITIVITY_FILE))
    if sensitivity is not None and not sensitivity.empty:
        sec.text("The best trials under every energy model (mJ per image; ratio to the ANN twin; "
                 f"break-even synaptic rate), from <code>{SENSITIVITY_FILE}</code>:")
        sec.table(Table(list(sensitivity.columns), sensitivity.values.tolist()))
    if not sec.blocks:
        sec.text("No per-layer figures: the best trials report no spike metrics (ANN) or none "
                 "has a value.")
    return sec


def _csv(path: str) -> pd.DataFrame | None:
    import io

    import pandas as pd

    text = _storage.read_text(path)
    return pd.read_csv(io.StringIO(text)) if text else None


def _layer_table(path: Any) -> pd.DataFrame | None:
    import pandas as pd

    if not path or _storage.is_uri(str(path)):
        return None
    found = sorted(Path(str(path)).glob(f"checkpoint_*/{LAYER_TABLE}"))
    if not found or found[-1].stat().st_size == 0:
        return None
    return pd.read_csv(found[-1])


def _errors_section(table: pd.DataFrame) -> Section:
    sec = Section("errors", "Errored trials, grouped by message")
    errored = table[table["status"] == "errored"] if "status" in table else table.iloc[:0]
    if errored.empty:
        return sec.text("No trial errored.")
    groups = errored.groupby(errored["error"].fillna("(no message)"), sort=False)["trial_id"]
    rows = sorted(([msg, len(ids), ", ".join(map(str, ids[:8])) + (" …" if len(ids) > 8 else "")]
                   for msg, ids in ((m, list(v)) for m, v in groups)), key=lambda r: -r[1])
    return sec.table(Table(["error", "trials", "trial ids"], rows))


def read_settings(sweep_dir: str) -> dict[str, Any]:
    """``sweep.json`` of a sweep directory ({} if absent)."""
    return json.loads(_storage.read_text(_storage.join(sweep_dir, "sweep.json")) or "{}")


def report_sweep_dir(sweep_dir: str, settings: dict[str, Any], table: pd.DataFrame, *,
                     top: int = 5) -> SweepReport:
    """Loads the history (and repeats) of a sweep directory and writes its report."""
    from snnsearch.reporting.history import load_history
    from snnsearch.reporting.repeats import load_repeats

    return write_report(sweep_dir, table, load_history(sweep_dir, table), settings,
                        repeats=load_repeats(sweep_dir), top=top)
