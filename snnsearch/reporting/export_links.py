"""The report's links from front points to their exported files (``python -m snnsearch.export``
or ``--log-models``): ``<sweep dir>/export/index.json`` lists trial → ``.nir`` and card, written by
``snnsearch.export.sweep_export`` (read here as plain JSON, so reporting imports no exporter).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

from snnsearch.storage import sweepdir as _storage

EXPORT_DIR = "export"
INDEX_FILE = "index.json"


def _read_json(path: str) -> dict[str, Any]:
    try:
        return json.loads(_storage.read_text(path) or "{}")
    except (OSError, ValueError):
        return {}


def export_links(sweep_dir: str, trial_ids: Iterable[str]) -> str | None:
    """One HTML paragraph: per exported front trial, links to its ``.nir`` and card with the
    card's test-set agreement and event counts; None if nothing was exported."""
    index = _read_json(_storage.join(sweep_dir, EXPORT_DIR, INDEX_FILE))
    items = []
    for trial in trial_ids:
        files = index.get(str(trial))
        if not files:
            continue
        card = _read_json(_storage.join(sweep_dir, EXPORT_DIR, files["card"]))
        nir_href = html.escape(f"{EXPORT_DIR}/{files['nir']}")
        card_href = html.escape(f"{EXPORT_DIR}/{files['card']}")
        line = (f'<b>{html.escape(str(trial))}</b>: <a href="{nir_href}">'
                f'{html.escape(files["nir"])}</a> · <a href="{card_href}">card</a>')
        check = card.get("verification", {}).get("spikingjelly", {})
        events = card.get("events_per_inference", {})
        if check:
            line += (f" · the file agrees with the trained net on "
                     f"{100 * check['prediction_agreement']:.2f}% of {check['images']} test "
                     "images")
        if events:
            line += (f" · {events['graph']['synaptic_events']:.4g} synaptic events per "
                     f"inference on the target (estimate "
                     f"{events['estimate']['synaptic_events']:.4g})")
        items.append(line)
    if not items:
        return None
    return "Exported to NIR (docs/export.md):<br>" + "<br>".join(items)
