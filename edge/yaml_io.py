"""One safe way to read the YAML files an operator or a DPO writes: config, policy, manifests.

``yaml.safe_load`` alone is not enough for a file that decides what a camera publishes: it takes
any size, nesting deep enough to end in ``RecursionError``, anchors and aliases that expand
exponentially ("billion laughs"), and a repeated key silently replaces the first. ``read_yaml``
reads at most ``MAX_BYTES`` of strict UTF-8 (no byte order mark, no UTF-16) and refuses, while
it composes: explicit tags (``!!binary``, ``!!set``, or ``!!int`` on a word, on which PyYAML's
constructors fail with any exception), merge keys, nesting deeper than ``MAX_DEPTH`` and
duplicate keys; then, before anything is built, a document whose anchors and aliases would
expand to more than ``MAX_VALUES`` values, or refer to themselves. Aliases within that budget
are fine: PyYAML writes them for any object a generated file repeats. Every failure is one
``ConfigError`` line naming the file and, where known, the line and column.

``number_problems`` then refuses what YAML parses but a number field must not take: NaN and
infinities anywhere, and ``true``/``false`` where a model field expects a number (pydantic's lax
mode would read them as 1 and 0). Values from environment variables arrive as strings and are
not concerned.
"""

from __future__ import annotations

import math
import types
from collections.abc import Hashable
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from yaml.nodes import MappingNode, Node, SequenceNode

from edge.errors import ConfigError

MAX_BYTES: Final = 256 << 10  # 100 cameras is ~15 KiB; 1 MiB (10,000) took 48 s to validate
MAX_DEPTH: Final = 32  # the deepest real file nests 6 levels
MAX_VALUES: Final = 100_000  # values once aliases are expanded: more than 256 KiB can spell out

_BOMS: Final = (
    (b"\xef\xbb\xbf", "a UTF-8 byte order mark"),
    (b"\xff\xfe", "a UTF-16 byte order mark"),
    (b"\xfe\xff", "a UTF-16 byte order mark"),
)


class _Refused(yaml.YAMLError):
    """A structure this reader refuses, at a place in the file."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class _LimitedLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses tags, deep nesting and repeated keys while it composes, so
    none of them costs more than reading up to that point."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):  # the node composed already; counted below
            node: Node | None = super().compose_node(parent, index)
            return node
        tag = getattr(event, "tag", None)
        if tag is not None:  # !!binary, !!set, !!python/..., and !!int on text that is none
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            raise _Refused(f"tag '{shown}' refused (tags are not allowed here)", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
            composed: Node | None = super().compose_node(parent, index)
            return composed
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Refused("merge key '<<' refused", key_node.start_mark)
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _Refused(
                        f"duplicate key '{key}' (first at line {seen[key]})", key_node.start_mark
                    )
                seen[key] = line
            except TypeError:
                raise _Refused("a key must be a plain value", key_node.start_mark) from None
        mapping: dict[Hashable, Any] = super().construct_mapping(node, deep)
        return mapping


def read_yaml(path: Path, what: str = "file") -> Any:
    """The YAML document in ``path``; ``ConfigError`` names the file, the line where known,
    and what was expected. ``what`` says which file it is in the message (e.g. "policy")."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as err:
        raise ConfigError([f"{path}: cannot read the {what} ({err.strerror or err})"]) from err
    if len(raw) > MAX_BYTES:
        raise ConfigError([f"{path}: the {what} is larger than {MAX_BYTES // 1024} KiB"])
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raise ConfigError([f"{path}: the {what} starts with {name}; expected UTF-8 without"])
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        raise ConfigError(
            [f"{path}: line {line}: NUL byte in the {what} (UTF-16 or binary?); expected UTF-8"]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(
            [f"{path}: line {line}: byte {raw[err.start]:#04x} is not UTF-8; expected UTF-8 text"]
        ) from err
    try:
        return _load(text)
    except yaml.reader.ReaderError as err:  # a control character, before any parsing
        line = text[: err.position].count("\n") + 1
        code = err.character if isinstance(err.character, int) else ord(err.character)
        raise ConfigError(
            [f"{path}: line {line}: control character U+{code:04X} is not allowed in YAML"]
        ) from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(err, "problem", None) or (str(err).splitlines() or ["?"])[0]
        if not isinstance(err, _Refused):
            problem = f"invalid YAML in the {what} ({problem})"
        raise ConfigError([f"{path}:{where} {problem}"]) from err
    except (ValueError, OverflowError) as err:  # e.g. a date 2026-13-01, a 5,000-digit integer
        reason = str(err).split(";")[0]
        raise ConfigError([f"{path}: invalid value in the {what} ({reason})"]) from err


def _load(text: str) -> Any:
    loader = _LimitedLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _expanded(node, {}, set())
        return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded(node: Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many values ``node`` stands for once every alias is spelt out, each shared node
    counted once per use but computed once ("billion laughs" costs nothing to measure)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise _Refused("an alias refers to the node that holds it", node.start_mark)
    open_nodes.add(key)
    if isinstance(node, MappingNode):
        children = [child for pair in node.value for child in pair]
    elif isinstance(node, SequenceNode):
        children = list(node.value)
    else:
        children = []
    size = 1 + sum(_expanded(child, sizes, open_nodes) for child in children)
    open_nodes.discard(key)
    if size > MAX_VALUES:
        raise _Refused(
            f"anchors and aliases expand to more than {MAX_VALUES:,} values", node.start_mark
        )
    sizes[key] = size
    return size


def number_problems(model: type[BaseModel], data: Any, prefix: str = "") -> list[str]:
    """One line per NaN or infinity anywhere in ``data`` and per boolean where ``model``
    expects a number, named by its path (``cameras[0].lines[1].start[0]``)."""
    problems: list[str] = []
    _walk(model, data, prefix, problems)
    return problems


def _walk(annotation: Any, value: Any, where: str, problems: list[str]) -> None:
    leaves = _leaves(annotation)
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{where or '(root)'}: {value} is not a number allowed here")
    elif isinstance(value, bool):
        numeric = any(t in (int, float) for t in leaves)
        boolean = bool in leaves or any(isinstance(t, bool) for t in leaves)
        if numeric and not boolean:
            problems.append(f"{where or '(root)'}: expected a number, got {str(value).lower()}")
    elif isinstance(value, dict):
        models = [t for t in leaves if isinstance(t, type) and issubclass(t, BaseModel)]
        for key, item in value.items():
            fields = [m.model_fields[key] for m in models if isinstance(key, str)
                      and key in m.model_fields]  # fmt: skip
            inner = fields[0].annotation if fields else _mapping_value(leaves)
            _walk(inner, item, f"{where}.{key}" if where else str(key), problems)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _walk(_item(leaves, i), item, f"{where}[{i}]", problems)


def _leaves(annotation: Any) -> list[Any]:
    """The types and literal values an annotation allows, containers kept whole."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _leaves(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [leaf for arg in get_args(annotation) for leaf in _leaves(arg)]
    if origin is Literal:
        return list(get_args(annotation))
    return [annotation]


def _item(leaves: list[Any], index: int) -> Any:
    """The annotation of item ``index`` of a list or tuple field (Any when unknown)."""
    for leaf in leaves:
        origin, args = get_origin(leaf), get_args(leaf)
        if origin in (list, set, frozenset) and args:
            return args[0]
        if origin is tuple and args:
            return args[0] if args[-1] is Ellipsis else args[min(index, len(args) - 1)]
    return Any


def _mapping_value(leaves: list[Any]) -> Any:
    for leaf in leaves:
        if get_origin(leaf) is dict and len(get_args(leaf)) == 2:
            return get_args(leaf)[1]
    return Any
