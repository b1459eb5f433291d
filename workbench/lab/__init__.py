"""The workbench inside Jupyter: the server extension behind the JupyterLab "TinyML" panel
and the user's own lesson workspace (``workbench lab``).

A top layer beside :mod:`workbench.ui`; only :mod:`workbench.cli` sits above it.
"""
