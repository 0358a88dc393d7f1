"""The worked examples quoted in docs/energy.md are the code's numbers (recomputed here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from snnsearch.reporting.energy_examples import csnn_example, depth_example, markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "energy.md"


@pytest.mark.slow
@pytest.mark.parametrize("build", [csnn_example, depth_example], ids=["csnn", "depth"])
def test_docs_quote_the_computed_tables(build) -> None:
    table = markdown(build())
    text = DOC.read_text()
    for line in table.splitlines():
        assert line in text, f"docs/energy.md is out of date (bench/energy_models.py):\n{line}"


def test_csnn_first_layer_figure_in_docs() -> None:
    assert "28·28·128·9 = 903 168` MACs = 4.15 µJ" in DOC.read_text()
    assert 28 * 28 * 128 * 9 == 903_168 and 903_168 * 4.6e-6 == pytest.approx(4.15, abs=5e-3)
