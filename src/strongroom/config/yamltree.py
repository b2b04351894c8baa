"""YAML reading that keeps line numbers and refuses what PyYAML lets pass.

The document is composed into PyYAML's node tree first: syntax errors get their line,
duplicate keys (which PyYAML would silently resolve, last one wins) become errors, alias
bombs and self-referencing aliases are refused before anything is built, and after
construction :func:`line_of` maps a location (keys and indexes) back to a line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from strongroom.config.issues import Finding
from strongroom.config.types import Location

MAX_EXPANDED_NODES: Final = 100_000
"""A configuration is small; more nodes than this after alias expansion is an alias bomb."""
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class YamlProblem:
    """A problem found while reading, with its 1-based line when known."""

    line: int | None
    finding: Finding


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """A parsed document: the data and, for YAML, the node tree its lines come from."""

    data: Any
    root: Node | None


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _key_value(node: Node) -> object:
    """The constructed value of a scalar key (so ``1`` and ``0x1`` compare equal)."""
    if not isinstance(node, ScalarNode):
        return ("<complex key>", id(node))
    try:
        return SafeConstructor().construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, OverflowError):
        return (node.tag, node.value)


def _expanded_size(root: Node) -> int | None:
    """Count nodes as if aliases were copied; None when an alias contains itself."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: Node) -> int | None:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            return None
        in_progress.add(key)
        total = 1
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        for child in children:
            child_size = size(child)
            if child_size is None:
                return None
            total = min(total + child_size, MAX_EXPANDED_NODES + 1)
        in_progress.discard(key)
        sizes[key] = total
        return total

    return size(root)


def _duplicate_keys(root: Node) -> list[YamlProblem]:
    problems: list[YamlProblem] = []
    visited: set[int] = set()
    stack: list[tuple[Node, Location]] = [(root, ())]
    while stack:
        node, location = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend((child, (*location, index)) for index, child in enumerate(node.value))
        elif isinstance(node, MappingNode):
            first_lines: dict[object, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    stack.append((value_node, location))
                    continue
                key = _key_value(key_node)
                segment = key if isinstance(key, str | int) else str(key_node.value)
                try:
                    first = first_lines.get(key)
                    if first is None:
                        first_lines[key] = _line(key_node)
                except TypeError:  # an unhashable key: the constructor reports it
                    first = None
                if first is not None:
                    problems.append(
                        YamlProblem(
                            _line(key_node),
                            Finding(
                                (*location, segment),
                                "duplicate_key",
                                f"duplicate key {segment!r} (first at line {first}); YAML "
                                "would silently keep only the last one",
                            ),
                        )
                    )
                stack.append((value_node, (*location, segment)))
    return problems


def _unreadable_scalar_line(root: Node) -> int | None:
    """Find the line of the first scalar that cannot be constructed."""
    visited: set[int] = set()
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, ScalarNode):
            try:
                SafeConstructor().construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError, OverflowError):
                return _line(node)
        elif isinstance(node, SequenceNode):
            stack.extend(reversed(node.value))
        elif isinstance(node, MappingNode):
            stack.extend(part for pair in reversed(node.value) for part in reversed(pair))
    return None


def _problem(line: int | None, code: str, message: str) -> YamlProblem:
    return YamlProblem(line, Finding((), code, message))


def parse_yaml(text: str) -> tuple[ParsedDocument | None, list[YamlProblem]]:
    """Parse one YAML (or JSON) document.

    Returns the document (None when it cannot be built at all) and the problems found:
    syntax errors with their line, duplicate keys, alias bombs, unknown tags.
    """
    root: Node | None = None
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # reads ahead: may raise a ReaderError already
        root = loader.get_single_node()
        if root is None:
            return ParsedDocument(None, None), []
        size = _expanded_size(root)
        if size is None:
            return None, [_problem(_line(root), "yaml_alias", "an alias refers to itself")]
        if size > MAX_EXPANDED_NODES:
            return None, [
                _problem(
                    _line(root),
                    "yaml_alias",
                    f"the document expands to more than {MAX_EXPANDED_NODES} values through "
                    "aliases; write it out",
                )
            ]
        problems = _duplicate_keys(root)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        text_parts = [part for part in (exc.context, exc.problem) if part]
        message = "YAML syntax error: " + (", ".join(text_parts) or "cannot parse")
        return None, [_problem(None if mark is None else mark.line + 1, "yaml_syntax", message)]
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        return None, [_problem(line, "yaml_syntax", f"YAML syntax error: {exc.reason}")]
    except yaml.YAMLError as exc:
        return None, [_problem(None, "yaml_syntax", f"YAML syntax error: {exc}")]
    except (ValueError, OverflowError) as exc:  # e.g. a timestamp with month 13
        where = _unreadable_scalar_line(root) if root is not None else None
        return None, [_problem(where, "yaml_value", f"YAML value cannot be read: {exc}")]
    except RecursionError:
        return None, [_problem(None, "yaml_depth", "the document nests too deeply")]
    finally:
        if loader is not None:
            loader.dispose()
    return ParsedDocument(data, root), problems


def parse_json(text: str) -> tuple[ParsedDocument | None, list[YamlProblem]]:
    """Parse a JSON document that YAML could not read (e.g. tab-indented); no lines kept.

    Duplicate keys are reported, as in YAML.
    """
    problems: list[YamlProblem] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                problems.append(
                    _problem(None, "duplicate_key", f"duplicate key {key!r} in a JSON object")
                )
            result[key] = value
        return result

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        return None, [_problem(exc.lineno, "json_syntax", f"JSON syntax error: {exc.msg}")]
    except RecursionError:
        return None, [_problem(None, "json_depth", "the document nests too deeply")]
    return ParsedDocument(data, None), problems


def line_of(root: Node | None, location: Location) -> int | None:
    """Return the 1-based line of ``location``, or of the deepest part of it that exists.

    A location ending at a mapping key gives the key's line (where an unknown or wrong key
    is written); a missing key gives the line of the mapping it should be in.
    """
    if root is None:
        return None
    node: Node = root
    line = _line(root)
    for segment in location:
        if isinstance(node, MappingNode):
            found = None
            for key_node, value_node in node.value:  # the last of equal keys wins, as in YAML
                if _key_value(key_node) == segment and type(segment) is type(_key_value(key_node)):
                    found = (key_node, value_node)
            if found is None:
                break
            line, node = _line(found[0]), found[1]
        elif isinstance(node, SequenceNode) and isinstance(segment, int):
            if not 0 <= segment < len(node.value):
                break
            node = node.value[segment]
            line = _line(node)
        else:
            break
    return line
