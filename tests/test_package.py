"""The package as users get it: its public names, its imports, its pages."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cave_requests_auth
from cave_requests_auth import (
    DEFAULT_SERVER_ADDRESS,
    AuthResponseError,
    CAVEAuthError,
    InsecureTransportError,
    InvalidTokenError,
    TokenFileError,
    TokenNotFoundError,
    get_new_token,
    new_token_url,
    token_page_url,
)

SPEC_NAMES = [
    "CAVETokenAuth",
    "CAVEAuthAdapter",
    "CAVEPoolManager",
    "auth_headers",
    "find_token",
    "load_token",
    "save_token",
    "delete_token",
    "token_file_paths",
    "new_token_url",
    "token_page_url",
    "get_new_token",
    "whoami",
    "raise_for_auth",
    "CAVEAuthError",
    "TokenNotFoundError",
    "InvalidTokenError",
    "TokenFileError",
    "InsecureTransportError",
    "AuthResponseError",
    "DEFAULT_SERVER_ADDRESS",
]


def test_every_name_of_the_spec_is_exported() -> None:
    for name in SPEC_NAMES:
        assert name in cave_requests_auth.__all__
        assert getattr(cave_requests_auth, name) is not None
    assert set(cave_requests_auth.__all__) <= set(dir(cave_requests_auth))


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (TokenNotFoundError, LookupError),
        (InvalidTokenError, ValueError),
        (TokenFileError, OSError),
        (InsecureTransportError, ValueError),
        (AuthResponseError, __import__("requests").HTTPError),
    ],
)
def test_error_tree(error: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(error, CAVEAuthError)
    assert issubclass(error, builtin)


def test_token_file_error_reads_as_one_sentence() -> None:
    error = TokenFileError("/x/cave-secret.json is empty; delete it.", "/x/cave-secret.json")
    assert str(error) == "/x/cave-secret.json is empty; delete it."
    assert error.path == "/x/cave-secret.json"


def test_typed() -> None:
    assert (Path(cave_requests_auth.__file__).parent / "py.typed").is_file()


def test_imports_nothing_beyond_requests_and_the_standard_library() -> None:
    """Each module is listed with its file, so the check also runs where Python
    has no ``sys.stdlib_module_names`` (3.9)."""
    code = (
        "import sys, {0}\n"
        "for name, module in sorted(sys.modules.items()):\n"
        "    print(name, getattr(module, '__file__', None) or '', sep='\\t')"
    )
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    standard = tuple(
        os.path.realpath(sysconfig.get_paths()[key]) + os.sep for key in ("stdlib", "platstdlib")
    )

    def modules(name: str) -> dict[str, str]:
        result = subprocess.run(
            [sys.executable, "-c", code.format(name)],
            capture_output=True,
            text=True,
            check=True,
            env=environment,
        )
        return dict(line.split("\t") for line in result.stdout.splitlines())

    before = modules("requests")
    extra = {
        name: file for name, file in modules("cave_requests_auth").items() if name not in before
    }
    foreign = {
        name
        for name, file in extra.items()
        if file  # a module without a file is built in
        and not os.path.realpath(file).startswith(standard)
        and not name.startswith(("cave_requests_auth", "__editable__"))
    }
    assert foreign == set()
    assert "cave_requests_auth.cli" not in extra  # the command's imports stay in the command


class TestPages:
    def test_default_server(self) -> None:
        assert DEFAULT_SERVER_ADDRESS == "https://global.daf-apis.com"
        assert new_token_url() == "https://global.daf-apis.com/auth/api/v1/create_token"
        assert token_page_url() == "https://global.daf-apis.com/sticky_auth/settings/tokens"

    @pytest.mark.parametrize(
        "server", ["minnie.example.org", "https://minnie.example.org/", " minnie.example.org\n"]
    )
    def test_server_without_scheme_or_with_a_slash(self, server: str) -> None:
        assert new_token_url(server) == "https://minnie.example.org/auth/api/v1/create_token"

    @pytest.mark.parametrize("server", ["ftp://minnie.example.org", "https://", ""])
    def test_bad_server(self, server: str) -> None:
        with pytest.raises(ValueError, match="server_address"):
            new_token_url(server)

    def test_get_new_token_prints_the_steps(self, capsys: pytest.CaptureFixture[str]) -> None:
        url = get_new_token("minnie.example.org")
        out = capsys.readouterr().out
        assert url == "https://minnie.example.org/auth/api/v1/create_token"
        assert f"1. Go to {url}" in out
        assert "may invalidate your previous one" in out
        assert "https://minnie.example.org/sticky_auth/settings/tokens" in out
        assert "save_token(" in out

    def test_get_new_token_opens_the_browser_when_asked(
        self, browser: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        opened = browser  # the file the fake browser notes each URL in
        url = get_new_token(open=True)  # BROWSER's command runs to its end
        capsys.readouterr()
        assert opened.read_text().strip() == url


class TestImportGraph:
    """The layers, read from the import statements: a core that decides, bindings that translate.

    A binding is a module of ``transport/`` (with the optional-dependency front
    doors ``httpx.py`` and ``aiohttp.py``). Nothing below the bindings imports
    one, and no binding imports another: what they share is below them
    (``exchange``, ``wire``). So using urllib3 or httpx alone never imports the
    requests binding, nor ``requests.auth`` / ``requests.adapters``.
    """

    PACKAGE = Path(cave_requests_auth.__file__).parent
    BINDINGS = frozenset(
        f"transport.{name}" for name in ("requests", "urllib3", "httpx", "aiohttp")
    )
    ABOVE = frozenset(("httpx", "aiohttp", "neuroglancer", "__init__", "__main__"))  # and cli.*

    @classmethod
    def graph(cls) -> dict[str, set[str]]:
        """Each module (``core``, ``transport.httpx``, ``cli.status``) and what it imports:
        package modules by the same names, other modules by their full name."""
        import ast

        graph: dict[str, set[str]] = {}
        for path in sorted(cls.PACKAGE.rglob("*.py")):
            parts = list(path.relative_to(cls.PACKAGE).with_suffix("").parts)
            name = ".".join(parts)
            package = parts[:-1]
            imported: set[str] = set()
            for node in cls.runtime_nodes(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    imported.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    imported.update(f"{node.module}.{alias.name}" for alias in node.names)
                    imported.add(str(node.module))
                elif isinstance(node, ast.ImportFrom):
                    base = package[: len(package) - node.level + 1]
                    module = ".".join([*base, *(node.module or "").split(".")]).strip(".")
                    for alias in node.names:  # `from . import x` names a module
                        full = f"{module}.{alias.name}".strip(".")
                        found = (cls.PACKAGE / Path(*full.split("."))).with_suffix(".py")
                        imported.add(full if found.exists() else module)
            graph[name] = {i.removeprefix("cave_requests_auth.") for i in imported}
        return graph

    @staticmethod
    def runtime_nodes(tree: Any) -> Iterator[Any]:
        """The nodes of ``tree`` but those under ``if TYPE_CHECKING:`` (no import at run time)."""
        import ast

        todo = [tree]
        while todo:
            node = todo.pop()
            yield node
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                todo.extend(node.orelse)
                continue
            todo.extend(ast.iter_child_nodes(node))

    def closure(self, graph: dict[str, set[str]], start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for imported in graph.get(todo.pop(), ()):
                if imported not in seen:
                    seen.add(imported)
                    todo.append(imported)
        return seen

    def test_the_graph_sees_the_bindings_and_their_libraries(self) -> None:
        graph = self.graph()
        assert set(graph) >= self.BINDINGS
        assert "requests.auth.AuthBase" in graph["transport.requests"]
        assert "core" in graph["transport.urllib3"]  # relative imports are resolved

    def test_nothing_below_the_bindings_imports_one(self) -> None:
        graph = self.graph()
        below = {name for name in graph if name not in self.BINDINGS | self.ABOVE}
        below = {name for name in below if not name.startswith("cli")}
        for name in below:
            assert not self.closure(graph, name) & self.BINDINGS, name

    def test_no_binding_imports_another(self) -> None:
        graph = self.graph()
        for binding in self.BINDINGS:
            assert not self.closure(graph, binding) & (self.BINDINGS - {binding}), binding

    @pytest.mark.parametrize(
        "binding", ["transport.urllib3", "transport.httpx", "transport.aiohttp"]
    )
    def test_urllib3_or_httpx_alone_never_imports_requests_auth(self, binding: str) -> None:
        reached = self.closure(self.graph(), binding)
        assert not {
            name for name in reached if name.startswith(("requests.auth", "requests.adapters"))
        }
        assert not {name for name in reached if name in ("requests", "requests.sessions")}
