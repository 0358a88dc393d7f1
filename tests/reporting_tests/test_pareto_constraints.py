"""Hard constraints in the Pareto report: the front holds feasible trials only, the infeasible
ones are counted and drawn greyed out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from snnsearch.reporting.pareto_report import feasible_rows, pareto_front, write_pareto_report
from snnsearch.reporting.results import to_arrow

OBJ = "val_acc:max,energy_mj:min"


def _table() -> pd.DataFrame:
    rows = [
        {"trial_id": t, "status": "completed", "epochs_run": 4, "config/T": 4, "config/D": None,
         "last/val_acc": acc, "last/energy_mj": mj}
        for t, acc, mj in [("a", 0.98, 4.0), ("b", 0.96, 1.0), ("c", 0.90, 0.5),
                           ("d", 0.95, 2.0), ("e", 0.97, 4.5)]
    ]
    return to_arrow(rows).to_pandas()


def test_constraints_shape_the_front(tmp_path: Path) -> None:
    table = _table()
    free, _ = pareto_front(table, OBJ)
    assert free["trial_id"].tolist() == ["a", "b", "c"]
    front, n_cand = pareto_front(table, OBJ, constraints=["energy_mj<=1.5"])
    assert n_cand == 5 and front["trial_id"].tolist() == ["b", "c"]
    both, _ = pareto_front(table, OBJ, constraints=["energy_mj<=1.5", "val_acc>=0.95"])
    assert both["trial_id"].tolist() == ["b"]
    assert feasible_rows(table, ["energy_mj<=1.5"]).tolist() == [False, True, True, False, False]
    report = write_pareto_report(table, OBJ, str(tmp_path), reference=(0.0, 5.0),
                                 constraints=["energy_mj<=1.5"])
    assert report.constraints == ("energy_mj<=1.5",) and report.infeasible == 3
    assert report.front["trial_id"].tolist() == ["b", "c"]
    assert (tmp_path / "pareto.png").stat().st_size > 1000
    # The front's hypervolume counts feasible points only: 0.96*(5-1) + 0.90*(1-0.5).
    assert abs(report.hypervolume - (0.96 * 4 + 0.90 * 0.5)) < 1e-9
