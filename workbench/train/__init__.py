"""Training small models for microcontrollers: model zoo, training, QAT, distillation,
pruning and clustering. TensorFlow loads on first use, never at import.

Importing this package selects legacy Keras (``TF_USE_LEGACY_KERAS=1``) for any
TensorFlow imported later, because quantization-aware training needs it; see
:mod:`workbench.train.tf_runtime`.
"""

import os as _os

_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
