"""YAML documents read with libyaml's parser wherever PyYAML was built with it.

Why: every command reads the experiment file, the feature spec and the points policy
(the shipped Jinxiang policy alone is ~10 kB), and PyYAML's pure-Python parser spends
~10x libyaml's time on them (~0.05-0.2 CPU s a command; issue 26's `train` on German
credit). ``CSafeLoader`` is PyYAML's own safe loader with a C parser: the same
``SafeConstructor`` and resolver, so the same documents; only the wording of a syntax
error differs. Without libyaml, PyYAML's ``SafeLoader`` is used.
"""

from __future__ import annotations

from typing import IO, Any

import yaml

SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader, or PyYAML's pure-Python one where libyaml is missing."""


def safe_load(stream: str | bytes | IO[Any]) -> Any:
    """``yaml.safe_load(stream)``, parsed by libyaml when available.

    >>> safe_load("a: 1\\nb: [x, 2020-01-02]")
    {'a': 1, 'b': ['x', datetime.date(2020, 1, 2)]}
    """
    return yaml.load(stream, Loader=SAFE_LOADER)
