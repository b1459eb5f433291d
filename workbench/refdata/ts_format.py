"""The ``.ts`` text format of sktime and aeon, read without either package.

A file has ``#`` comments, ``@`` header lines (``@problemName``, ``@classLabel``...) and after
``@data`` one case per line: the dimensions separated by ``:``, each a comma-separated series,
then the class label. Only equal-length, labelled files are read (what the aeon data sets that
ship with the package are).
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["read_ts"]


def read_ts(path: str | os.PathLike) -> tuple[np.ndarray, tuple[str, ...]]:
    """Read an equal-length, multivariate ``.ts`` file with class labels.

    Returns ``X`` of shape (cases, channels, length), float64, and the labels in file order.
    Raises ValueError naming the line when cases differ in shape or a value is not a number.
    """
    X, y, in_data = [], [], False
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if line.lower().startswith("@data"):
                    in_data = True
                continue
            *dims, label = line.split(":")
            try:
                case = np.array([np.array(d.split(","), dtype=float) for d in dims])
            except ValueError as e:
                raise ValueError(f"{os.fspath(path)} line {number}: not an equal-length case "
                                 f"of numbers ({e})") from None
            if X and case.shape != X[0].shape:
                raise ValueError(f"{os.fspath(path)} line {number}: a case of shape "
                                 f"{case.shape}, the first was {X[0].shape}; only "
                                 "equal-length files are read")
            X.append(case)
            y.append(label.strip())
    return np.asarray(X, dtype=float), tuple(y)
