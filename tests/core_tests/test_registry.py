from __future__ import annotations

import pytest

from snnsearch.registry import Registry


def test_register_get_names() -> None:
    reg: Registry[int] = Registry("thing")
    reg.register("b")(2)
    reg.register("a")(1)
    assert reg.get("a") == 1 and reg.names() == ["a", "b"] and "b" in reg


def test_duplicate_and_unknown_raise_one_line() -> None:
    reg: Registry[int] = Registry("thing")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(2)
    with pytest.raises(ValueError, match=r"unknown thing 'z'; choose one of: a"):
        reg.get("z")
