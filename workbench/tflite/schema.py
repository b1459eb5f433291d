"""The TFLite flatbuffer schema, loaded without TFLite Micro's native library.

:func:`schema` returns the generated schema module shipped with ``tflite-micro``
(``schema_py_generated.py``, pure Python); :func:`enum_names` turns one of its enum
classes into ``{value: name}``; :func:`dtype_name` names a ``TensorType`` the way
numpy does. Model reading (:mod:`.model`) and graph analysis
(:mod:`workbench.optimize.graph`) both use these, so the names agree everywhere.
"""

from __future__ import annotations

import functools
from types import ModuleType

__all__ = ["TENSOR_TYPE_TO_DTYPE", "dtype_name", "enum_names", "schema"]

_SCHEMA_REL = ("tensorflow", "lite", "micro", "python", "schema_py_generated.py")

# TensorType enum name -> numpy dtype name. Types numpy has no dtype for keep a
# descriptive lower-case name (they cannot be fed from numpy anyway).
TENSOR_TYPE_TO_DTYPE = {
    "FLOAT32": "float32",
    "FLOAT16": "float16",
    "FLOAT64": "float64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "BOOL": "bool",
    "COMPLEX64": "complex64",
    "COMPLEX128": "complex128",
    "STRING": "string",
    "RESOURCE": "resource",
    "VARIANT": "variant",
    "INT4": "int4",
    "INT2": "int2",
    "UINT4": "uint4",
    "BFLOAT16": "bfloat16",
    "FLOAT8_E4M3FN": "float8_e4m3fn",
    "FLOAT8_E5M2": "float8_e5m2",
}


@functools.cache
def schema() -> ModuleType:
    """The flatbuffer schema module shipped with tflite-micro (pure Python).

    Loaded from its file under a private name on first call (then cached), so that
    ``tflite_micro/__init__.py``, which loads the native interpreter library, does
    not run: reading a model touches no native TFLM code. Falls back to the normal
    import if the file moved.

    Raises:
        ModuleNotFoundError: ``tflite-micro`` is not installed.
    """
    import importlib.util
    import os

    spec = importlib.util.find_spec("tflite_micro")  # does not import it
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(root, *_SCHEMA_REL)
        if os.path.isfile(path):
            file_spec = importlib.util.spec_from_file_location("_workbench_tflite_schema", path)
            module = importlib.util.module_from_spec(file_spec)
            file_spec.loader.exec_module(module)
            return module
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


def enum_names(enum_cls) -> dict[int, str]:
    """``{value: name}`` of a schema enum class, e.g. ``enum_names(schema().Padding)``."""
    return {
        v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)
    }


@functools.cache
def _tensor_type_names() -> dict[int, str]:
    return enum_names(schema().TensorType)


def dtype_name(tensor_type: int) -> str:
    """The numpy-style name of a schema ``TensorType`` value (``"float32"``, ``"int8"``);
    types numpy lacks keep a lower-case name (``"int4"``), unknown values read
    ``"unknown_type_<n>"``."""
    enum_name = _tensor_type_names().get(tensor_type)
    if enum_name is None:
        return f"unknown_type_{tensor_type}"
    return TENSOR_TYPE_TO_DTYPE.get(enum_name, enum_name.lower())
