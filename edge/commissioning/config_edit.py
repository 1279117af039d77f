"""Writing a camera's lines and zones back into its YAML file, every other byte kept.

PyYAML's node marks give where the camera's ``lines:`` and ``zones:`` values lie in the text;
only those spans are rewritten (or the keys added at the end of the camera's mapping), so the
operator's comments, order and layout elsewhere survive. Comments inside a rewritten list go
with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from edge.errors import ConfigError


def replace_geometry(
    text: str, camera: int, values: Mapping[str, Sequence[Mapping[str, Any]]]
) -> str:
    """``text`` with ``cameras[camera]``'s keys in ``values`` (``lines``, ``zones``) set to the
    given lists of mappings."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as err:
        raise ConfigError([f"the configuration file is not YAML: {err}"]) from err
    node = _value(root, "cameras")
    if not isinstance(node, yaml.SequenceNode) or not 0 <= camera < len(node.value):
        raise ConfigError([f"cameras[{camera}]: not in the configuration file"])
    mapping = node.value[camera]
    if not isinstance(mapping, yaml.MappingNode) or not mapping.value:
        raise ConfigError([f"cameras[{camera}]: not a mapping"])
    indent = mapping.value[0][0].start_mark.column
    edits: list[tuple[int, int, str]] = []
    for key, items in values.items():
        value = _value(mapping, key)
        if value is None:  # a new key after the mapping's last value
            end = _kept_end(text, mapping.value[-1][1])
            edits.append((end, end, f"{' ' * indent}{key}:{_block(items, indent + 2, True)}"))
            continue
        end = _kept_end(text, value)
        on_its_line = "\n" in text[mapping_key_end(mapping, key) : value.start_mark.index]
        if on_its_line:  # "key:" then the list below it: rewritten from its first line
            start = value.start_mark.index - value.start_mark.column
            edits.append((start, end, _block(items, value.start_mark.column, False)))
        else:  # "key: []  # comment": rewritten from the colon on, the comment kept
            colon = text.index(":", mapping_key_end(mapping, key)) + 1
            line_end = text.find("\n", end)
            line_end = len(text) if line_end < 0 else line_end + 1
            comment = text[end:line_end].strip()
            if comment.startswith("#"):
                end, comment = line_end, f"  {comment}"
            else:
                comment = ""
            block = _block(items, indent + 2, True)
            replacement = comment + block if items else f" []{comment}\n"
            edits.append((colon, end, replacement))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def mapping_key_end(mapping: yaml.MappingNode, key: str) -> int:
    """Where ``key``'s own text ends in a mapping."""
    end: int = next(k.end_mark.index for k, _ in mapping.value if k.value == key)
    return end


def _value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((v for k, v in node.value if k.value == key), None)


def _kept_end(text: str, node: yaml.Node) -> int:
    """Where ``node``'s own text ends: its span less the blank and comment lines PyYAML counts
    in it (they belong to what follows)."""
    start, end = node.start_mark.index, node.end_mark.index
    lines = text[start:end].splitlines(keepends=True)
    while len(lines) > 1 and (not lines[-1].strip() or lines[-1].lstrip().startswith("#")):
        lines.pop()
    kept = start + sum(len(line) for line in lines)
    rest = text[kept:].split("\n", 1)
    if text[kept - 1] != "\n" and len(rest) == 2 and not rest[0].strip():
        kept += len(rest[0]) + 1  # the end of its line too: a rewritten block ends in "\n"
    return kept


def _block(items: Sequence[Mapping[str, Any]], indent: int, after_key: bool) -> str:
    """A block sequence of flat mappings at ``indent``, lists in flow style (``[320, 0]``);
    ``after_key``: it follows ``key:`` on the same line. Ends with a newline."""
    if not items:
        return " []\n" if after_key else " " * indent + "[]\n"
    pad = " " * indent
    out = ["\n"] if after_key else []
    for item in items:
        for i, (name, value) in enumerate(item.items()):
            lead = f"{pad}- " if i == 0 else f"{pad}  "
            out.append(f"{lead}{name}: {json.dumps(value, ensure_ascii=False)}\n")
    return "".join(out)
