"""tinyml-workbench: the whole TinyML lifecycle in a notebook.

``import workbench`` is light: it imports no TensorFlow, no serial port and no
Jupyter machinery. Heavy parts load where they are used.
"""

__version__ = "0.1.0"
