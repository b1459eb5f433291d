"""The server extension's HTTP API: what the JupyterLab "TinyML" panel reads and asks for.

Every route lives under ``<base_url>tinyml-workbench/`` (so it works behind JupyterHub and
Binder, whose ``base_url`` is ``/user/<name>/``), answers JSON and requires the Jupyter
server's authentication (a token or the login cookie; anything else gets 403). The work
(walking folders, starting a board) runs in a worker thread, never on the server's event
loop. docs/jupyterlab.md lists the routes and their JSON.
"""

from __future__ import annotations

import asyncio
import json
from functools import partial
from pathlib import Path

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from ..errors import WorkbenchError
from . import devices, listings, virtual_boards

NAMESPACE = "tinyml-workbench"
"""The URL prefix of every route, after the server's ``base_url``."""


class _Handler(APIHandler):
    """A JSON handler that runs its work off the event loop and turns the workbench's own
    errors into 404 (no such lesson or running board, named in the URL) or 400 (anything
    else it refuses: an unknown board, a board that does not start), with the message."""

    def initialize(self, root: Path) -> None:
        self.root = root

    async def _answer(self, fn, *args, status: int = 200, **kwargs) -> None:
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                None, partial(fn, *args, **kwargs))
        except (virtual_boards.NoSuchVirtualBoard, listings.LessonNotFound) as e:
            raise tornado.web.HTTPError(404, str(e)) from None
        except WorkbenchError as e:
            raise tornado.web.HTTPError(400, str(e)) from None
        self.set_status(status)
        self.finish(json.dumps(result))

    def _body(self) -> dict:
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise tornado.web.HTTPError(400, "the request body must be a JSON object, e.g. "
                                             '{"board": "nano33ble"}')
        return body


def _devices() -> dict:
    virtual_boards.reap()
    return {"devices": devices.devices()}


class DevicesHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self._answer(_devices)


class BoardsHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self._answer(lambda: {"boards": devices.catalog_boards()})


class VirtualBoardsHandler(_Handler):
    @tornado.web.authenticated
    async def post(self) -> None:
        body = self._body()
        options = {}
        for key in ("board", "scenario", "replay"):
            value = body.get(key)
            if value is not None and not isinstance(value, str):
                raise tornado.web.HTTPError(400, f"{key!r} must be a string, not {value!r}")
            if value:
                options[key] = value
        await self._answer(virtual_boards.start, status=201, **options)

    @tornado.web.authenticated
    async def delete(self, pid: str) -> None:
        await self._answer(lambda: {"stopped": virtual_boards.stop(int(pid))})


class LessonsHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self._answer(lambda: {"lessons": listings.lessons(self.root)})

    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        await self._answer(listings.open_lesson, self.root, name)


class DatasetsHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self._answer(lambda: {"datasets": listings.datasets(self.root)})


class RegistryHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self._answer(lambda: {"registries": listings.registries(self.root)})


def routes(base_url: str, root: Path) -> list[tuple]:
    """The (pattern, handler, options) tuples to add to the server's web application."""
    def at(*parts: str) -> str:
        return url_path_join(base_url, NAMESPACE, *parts)

    opts = {"root": root}
    return [
        (at("devices"), DevicesHandler, opts),
        (at("boards"), BoardsHandler, opts),
        (at("virtual-boards"), VirtualBoardsHandler, opts),
        (at("virtual-boards", r"(\d+)"), VirtualBoardsHandler, opts),
        (at("lessons"), LessonsHandler, opts),
        (at("lessons", r"([0-9][0-9]_[^/]+\.ipynb)"), LessonsHandler, opts),
        (at("datasets"), DatasetsHandler, opts),
        (at("registry"), RegistryHandler, opts),
    ]
