"""YAML from files a user or a stranger wrote, read without hanging: ``lasskit.yaml`` and a
package's ``.meta.yaml``.

:func:`load` is ``yaml.safe_load`` (plain data only, no Python objects) with three limits checked
before anything is built: the text size (``max_bytes``), the number of nodes once every alias is
expanded (``max_nodes``; a 1 KB "billion laughs" file expands to 10^9 nodes and would hang
whoever walks it), and no alias that refers to its own parent (a recursive structure). The node
count is computed on the composed graph with memoisation, so checking costs time linear in the
file, however large the expansion would be.
"""

from __future__ import annotations

MAX_BYTES = 4 * 1024 * 1024
MAX_NODES = 100_000


class YamlLimitError(ValueError):
    """The text is too large, expands too much through aliases, or is recursive."""


def load(text: str | bytes, *, max_bytes: int = MAX_BYTES, max_nodes: int = MAX_NODES):
    """Parse one YAML document to plain Python data (``None`` for an empty one).

    Raises ``yaml.YAMLError`` for bad syntax, :class:`YamlLimitError` past a limit and
    ``UnicodeDecodeError`` for bytes that are not UTF-8.
    """
    import yaml

    if isinstance(text, bytes):
        if len(text) > max_bytes:
            raise YamlLimitError(f"{len(text)} bytes, more than the {max_bytes} allowed")
        text = text.decode("utf-8")
    elif len(text) > max_bytes:
        raise YamlLimitError(f"{len(text)} characters, more than the {max_bytes} allowed")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded = _expanded_size(node, max_nodes)
        if expanded > max_nodes:
            raise YamlLimitError(f"aliases expand it to more than {max_nodes} values (an alias bomb?)")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(root, limit: int) -> int:
    """Nodes in the tree once aliases are expanded (stops counting past ``limit``); raises on a cycle."""
    from yaml.nodes import MappingNode, SequenceNode

    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    # iterative depth-first walk: (node, children visited?)
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1
            for child in _children(node, MappingNode, SequenceNode):
                total += sizes[id(child)]
                if total > limit:
                    total = limit + 1
                    break
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise YamlLimitError("an alias refers to a value that contains it (a recursive structure)")
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node, MappingNode, SequenceNode):
            if id(child) in on_path:
                raise YamlLimitError("an alias refers to a value that contains it (a recursive structure)")
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _children(node, mapping, sequence):
    if isinstance(node, mapping):
        for k, v in node.value:
            yield k
            yield v
    elif isinstance(node, sequence):
        yield from node.value
