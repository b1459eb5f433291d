"""Capture: device streams into the dataset store, losses counted.

Call order: open a device (``workbench.open_device``), open a dataset
(``workbench.data.Dataset``), then ``capture(dev, ds, "accel", seconds=5,
label="wave")`` or a :class:`CaptureSession` you start and stop yourself;
:class:`Recorder` is the take-by-take state machine the capture widget drives.
Light to import, so the names load eagerly.
"""

from .recorder import Recorder, RecorderStatus
from .session import CaptureSession, CaptureStats, capture

__all__ = ["CaptureSession", "CaptureStats", "capture", "Recorder", "RecorderStatus"]
