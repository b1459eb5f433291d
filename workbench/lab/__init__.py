"""The workbench inside Jupyter: the server extension behind the JupyterLab "TinyML" panel
and the user's own lesson workspace (``workbench lab``).

A top layer beside :mod:`workbench.ui`; only :mod:`workbench.cli` sits above it.
"""


def _jupyter_server_extension_points() -> list[dict]:
    """Tells ``jupyter server`` that this module is a server extension (enabled by the
    ``jupyter_server_config.d/tinyml-workbench.json`` the package installs)."""
    return [{"module": "workbench.lab"}]


def _load_jupyter_server_extension(server_app) -> None:
    """Add the TinyML panel's routes (:mod:`workbench.lab.handlers`) under the server's
    ``base_url``; the listings are relative to the server's root folder. Imports the
    Jupyter server machinery only now, so ``import workbench.lab`` stays light."""
    from pathlib import Path

    from .handlers import NAMESPACE, routes

    web_app = server_app.web_app
    root = Path(server_app.root_dir).expanduser().resolve()
    web_app.add_handlers(".*$", routes(web_app.settings["base_url"], root))
    server_app.log.info("tinyml-workbench: the TinyML panel's API at %s%s/ (root %s)",
                        web_app.settings["base_url"], NAMESPACE, root)
