"""The YAML tree of a pipeline file with the line of every key (``yaml.SafeLoader`` only).

:func:`read_yaml` composes the node tree and turns it into plain Python values, recording
``lines[key path] -> line``, so every error can say ``file:line: key path: expected ...,
found ...``.
"""

from __future__ import annotations

from typing import Any

import yaml

from engage_core.errors import ConfigError


class _Missing:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED = _Missing()


# --- the YAML tree with line numbers ------------------------------------------------------

class _Phrase:
    """A ``found`` that is shown as is (not as a value)."""

    def __init__(self, text: str):
        self.text = text


class _Doc:
    """The file's values as plain Python objects plus ``lines[key path] -> line``."""

    def __init__(self, path: str):
        self.path = path
        self.lines: dict[tuple, int] = {}

    def line(self, keypath: tuple) -> int:
        while keypath and keypath not in self.lines:
            keypath = keypath[:-1]
        return self.lines.get(keypath, 1)

    def error(self, keypath: tuple, expected: str, found: Any = REQUIRED) -> ConfigError:
        where = ".".join(str(k) for k in keypath) or "(top level)"
        got = ("nothing" if found is REQUIRED else found.text if isinstance(found, _Phrase)
               else _show(found))
        return ConfigError(f"{self.path}:{self.line(keypath)}: {where}: expected {expected}, "
                           f"found {got}")


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list {value!r}" if len(repr(value)) < 60 else "a list"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"


MAP_TAG, SEQ_TAG = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


def _to_python(loader: yaml.SafeLoader, node: yaml.Node, doc: _Doc, keypath: tuple) -> Any:
    doc.lines.setdefault(keypath, node.start_mark.line + 1)
    if node.tag not in (MAP_TAG, SEQ_TAG) and not isinstance(node, yaml.ScalarNode):
        return loader.construct_object(node, deep=True)  # SafeLoader refuses unsafe tags
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int)):
                raise doc.error(keypath, "text keys", key)
            key = str(key)
            if key in out:
                doc.lines[keypath + (key,)] = key_node.start_mark.line + 1
                raise doc.error(keypath + (key,), "each key once", "a duplicate key")
            doc.lines[keypath + (key,)] = key_node.start_mark.line + 1
            out[key] = _to_python(loader, value_node, doc, keypath + (key,))
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(loader, item, doc, keypath + (i,)) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def read_yaml(path: str) -> tuple[Any, _Doc]:
    doc = _Doc(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the pipeline file: {exc.strerror or exc}") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        value = {} if node is None else _to_python(loader, node, doc, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError(f"{path}:{line}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}:1: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    return value, doc
