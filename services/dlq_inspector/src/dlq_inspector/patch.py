"""JSON Merge Patch (RFC 7386): how an operator fixes a dead-lettered event before replay.

Eight lines of a fully specified algorithm; a dependency would add more than it saves.
``null`` in the patch removes a field; objects merge recursively; anything else replaces.
"""

from __future__ import annotations

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result
