"""Every stack output says what it is, in the region it belongs to."""

from __future__ import annotations

from typing import Any


def test_every_output_carries_a_description_naming_its_region(synthesized: dict[str, Any]) -> None:
    for region, stack in synthesized["stacks"].items():
        outputs = stack["output"]
        assert len(outputs) >= 12
        for name, output in outputs.items():
            assert output.get("description", "").endswith(f"({region})"), (region, name)
            assert len(output["description"]) > len(region) + 10
