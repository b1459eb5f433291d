"""TensorFlow, imported lazily and in the mode quantization-aware training needs.

tfmot's QAT works only with legacy Keras 2 (the ``tf_keras`` package), selected by
``TF_USE_LEGACY_KERAS=1`` *before* TensorFlow is first imported. Every module of
``workbench.train`` gets TensorFlow and Keras from here, inside functions, so that
``import workbench`` (and ``import workbench.train``) never pays for TensorFlow.

TensorFlow's native code writes notices straight to file descriptor 2 (a CUDA probe on a
machine without a GPU, oneDNN notices, tf.data's while a model trains, the converter's
settings), which a notebook shows in red after every cell. :func:`native_stderr_kept` holds
them back while TensorFlow is imported, while a model trains (``fit.train``, pruning,
clustering) and while it is converted: they are kept in :data:`native_log`, and written out
only when that step fails. TensorFlow's Python logger is set to show warnings and errors only
("Assets written to ..." is INFO).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator

native_log: list[str] = []
"""What TensorFlow's native code wrote to fd 2 during the last steps held back (newest last,
at most 20 entries)."""


@contextlib.contextmanager
def native_stderr_kept(what: str) -> Iterator[None]:
    """Hold back what native code writes to file descriptor 2 while the block runs; keep it
    in :data:`native_log`, and write it to fd 2 if the block raises. Side effect: fd 2 points
    to a temporary file meanwhile (other threads' fd-2 output is held back too)."""
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (a service without stderr): nothing to hold back
        yield
        return
    failed = False
    with tempfile.TemporaryFile() as tmp:
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError, OSError):
            pass
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            if text.strip():
                native_log.append(f"--- {what}\n{text}")
                del native_log[:-20]
                if failed:
                    os.write(2, text.encode())


def tf():
    """The ``tensorflow`` module, with legacy Keras selected."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    elif os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        raise RuntimeError(
            "TensorFlow was imported before workbench.train with Keras 3; quantization-aware "
            "training needs legacy Keras. Restart the kernel and import workbench.train first, "
            "or set TF_USE_LEGACY_KERAS=1 before importing TensorFlow.")
    if "tensorflow" in sys.modules:
        import tensorflow

        return tensorflow
    with native_stderr_kept("import tensorflow"):
        import tensorflow

        # the devices are probed here, once (a machine without a GPU reports a failed cuInit)
        tensorflow.config.list_physical_devices()
    tensorflow.get_logger().setLevel("WARNING")
    return tensorflow


def keras():
    """Legacy Keras 2 (``tf_keras``), the one tfmot can quantize."""
    tf()
    import tf_keras

    return tf_keras


def tfmot():
    """TensorFlow Model Optimization (quantization, pruning, clustering)."""
    tf()
    import tensorflow_model_optimization

    return tensorflow_model_optimization
