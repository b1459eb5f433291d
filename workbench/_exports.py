"""How a subpackage of the workbench exposes its public names.

Every subpackage's ``__init__`` states its surface in ``__all__`` and says in its docstring in
which order the names are called. A light package (standard library, NumPy, PyYAML) imports
them eagerly. A heavy one (TensorFlow, anywidget, an interpreter) lists them in a table,
public name -> defining submodule, and installs the module ``__getattr__``/``__dir__`` that
:func:`lazy` makes, so each name's module loads on first use::

    __all__ = sorted(_LAZY)
    __getattr__, __dir__ = lazy(__name__, _LAZY)

One rule keeps a name meaning one thing: no submodule is named like a public name of its
package. Importing a submodule sets the package attribute of that name to the module, so a
module ``measure.py`` beside a function ``measure`` made ``from workbench.optimize import
measure`` return the module once anything had imported it (tests/test_public_api.py checks
every package).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy"]


def lazy(package: str, names: Mapping[str, str]) -> tuple[Callable[[str], Any],
                                                           Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose public names live in submodules.

    ``names`` maps each public name to the submodule that defines it, relative to
    ``package`` (``{"measure": ".measuring"}``). The first access of a name imports its
    submodule and stores the value in the package, so later look-ups skip ``__getattr__``.
    An unknown name raises :class:`AttributeError` as for any module.
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
