"""YAML for search-space files with size, nesting and alias-expansion limits.

``yaml.safe_load`` runs no code, but it is recursive (a file of 10 000 ``[`` ends in a
``RecursionError`` traceback) and expands aliases by reference, so a few lines of nested aliases
(the "billion laughs" file) become a structure that every later walk (validation, JSON for
MLflow) expands exponentially. The file is therefore first read as a stream of parser events,
which is iterative: depth and the node count with aliases expanded are checked there, and only
a file within the limits is composed by ``safe_load``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 1 << 20  # a space file is a few hundred bytes; 1 MiB is far beyond any real one
MAX_DEPTH = 32
MAX_NODES = 100_000  # counted with every alias expanded


class YamlLimitError(ValueError):
    """A YAML file beyond the limits (one line naming the file, the limit and the fix)."""


def load_limited(path: Path) -> Any:
    """``yaml.safe_load`` of ``path`` after checking size, nesting depth and expanded size.

    Raises:
        YamlLimitError: a limit is exceeded.
        yaml.YAMLError: not valid YAML.
    """
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise YamlLimitError(
            f"{path}: {size} bytes, over the {MAX_BYTES} byte limit for a space file; "
            "is this the right file?"
        )
    text = path.read_text()
    _check_events(text, path)
    return yaml.safe_load(text)


def _check_events(text: str, path: Path) -> None:
    depth = nodes = 0
    anchors: dict[str, int] = {}  # anchor -> expanded node count of its subtree
    open_anchors: list[tuple[str | None, int]] = []  # per collection: (anchor, nodes at start)
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            nodes += 1
            if depth > MAX_DEPTH:
                raise YamlLimitError(
                    f"{path}: nested deeper than {MAX_DEPTH} levels (line "
                    f"{event.start_mark.line + 1}); a space file needs 4, flatten it"
                )
            open_anchors.append((event.anchor, nodes - 1))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            anchor, start = open_anchors.pop()
            if anchor:
                anchors[anchor] = nodes - start
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor:
                anchors[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            nodes += anchors.get(event.anchor, 1)
        if nodes > MAX_NODES:
            raise YamlLimitError(
                f"{path}: expands to more than {MAX_NODES} values (aliases counted as copies, "
                f"line {event.start_mark.line + 1}); remove the nested aliases"
            )
