"""Fixtures: an isolated home, and real HTTP services on loopback.

- ``isolated_home`` (autouse): ``HOME`` and ``CLOUD_VOLUME_DIR`` point into
  ``tmp_path``; ``CAVE_TOKEN``, ``NETRC`` and proxy settings are cleared. No test
  reads or writes the real home.
- ``service``: a Flask app protected by the real ``middle_auth_client``
  decorators (tokens checked locally through ``setPermissionLookupOverride``),
  with an echo endpoint and a redirect endpoint. It listens on ``127.0.0.1``;
  ``service.url(path, host="localhost")`` reaches it under another host name,
  which requests treats as another host. ``tls_service`` is its https twin
  (a trustme certificate for localhost, 127.0.0.1 and ::1), which also serves
  the login page that middle_auth_client redirects browser-like requests to.
- ``umask`` (parametrized: 000 and 022) and ``browser`` (a fake ``$BROWSER`` that
  notes the URLs it is asked to open), for the tests that ask for them.

The plain helpers the test modules share (``mode_of``, ``fingerprint``,
``run_cli``, ...) are imported from here explicitly: ``from conftest import ...``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import ssl
import stat
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Callable

import flask
import pytest
import requests
from middle_auth_client import decorators as mac
from werkzeug.serving import make_server

from cave_requests_auth import lookup
from cave_requests_auth.cli import main

VALID_TOKEN = "0123456789abcdef0123456789abcdef"
OTHER_TOKEN = "fedcba9876543210fedcba9876543210"
TOS_TOKEN = "70570570570570570570570570570570"
PLAIN_TOKEN = "11111111111111111111111111111111"  # a user without permissions
INVALID_TOKEN = "deadbeefdeadbeefdeadbeefdeadbeef"

USERS: dict[str, dict[str, Any]] = {
    VALID_TOKEN: {
        "id": 1,
        "name": "Ada",
        "email": "ada@example.org",
        "admin": False,
        "groups": ["lab"],
        "datasets_admin": [],
        "permissions_v2": {"minnie": ["view"]},
        "permissions_v2_ignore_tos": {"minnie": ["view"]},
        "missing_tos": [],
    },
    OTHER_TOKEN: {
        "id": 2,
        "name": "Grace",
        "email": "grace@example.org",
        "admin": False,
        "groups": [],
        "datasets_admin": [],
        "permissions_v2": {"minnie": ["view"]},
        "permissions_v2_ignore_tos": {"minnie": ["view"]},
        "missing_tos": [],
    },
    TOS_TOKEN: {
        "id": 3,
        "name": "Tess",
        "email": "tess@example.org",
        "admin": False,
        "groups": [],
        "datasets_admin": [],
        "permissions_v2": {},
        "permissions_v2_ignore_tos": {"minnie": ["view"]},
        "missing_tos": [{"dataset_name": "minnie", "tos_id": 7, "tos_name": "MICrONS Terms"}],
    },
    PLAIN_TOKEN: {
        "id": 4,
        "name": "Pat",
        "email": "pat@example.org",
        "admin": False,
        "groups": [],
        "datasets_admin": [],
        "permissions_v2": {},
        "permissions_v2_ignore_tos": {},
        "missing_tos": [],
    },
}

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")

# The server file of DEFAULT_SERVER_ADDRESS, which save_token writes beside the default file.
DEFAULT_SERVER_FILE = "global.daf-apis.com-cave-secret.json"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLOUD_VOLUME_DIR", str(home / ".cloudvolume"))
    for name in ("CAVE_TOKEN", "NETRC", "NO_COLOR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setattr(lookup, "_warned_deprecated", set())
    return home


@pytest.fixture
def secrets(isolated_home: Path) -> Path:
    """The default secrets folder, ``$CLOUD_VOLUME_DIR/secrets`` (not created)."""
    return isolated_home / ".cloudvolume" / "secrets"


def write_secret(path: Path, data: Any, mode: int = 0o600) -> Path:
    """Write ``data`` as JSON (or ``str``/``bytes`` as they are) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    elif isinstance(data, str):
        path.write_text(data)
    else:
        path.write_text(json.dumps(data))
    os.chmod(path, mode)
    return path


def mode_of(path: Path) -> int:
    """The permission bits of ``path`` itself (a link is not followed)."""
    return stat.S_IMODE(os.lstat(path).st_mode)


def fingerprint(path: Path) -> tuple[int, int, bytes]:
    """(inode, mtime, content) of a file: equal before and after means untouched."""
    status = path.stat()
    return (status.st_ino, status.st_mtime_ns, path.read_bytes())


def assert_not_chained(error: BaseException) -> None:
    """Nothing chained is shown with the error: raised ``from None``, or from no other."""
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None


HOSTS = ["127.0.0.1", "localhost"]  # two names of the service: to requests, two hosts
BEARER = f"Bearer {VALID_TOKEN}"
TOKEN = (True, False)  # what ``carried`` gives by default: Authorization: Bearer, no cookie
TOKEN_AND_COOKIE = (True, True)  # with cookie=True
NOTHING = (False, False)


def carried(hit: dict[str, Any]) -> tuple[bool, bool]:
    """Whether a request the service saw carried the token: (as header, as cookie)."""
    header = "Bearer" in hit["headers"].get("Authorization", "")
    cookie = "middle_auth_token" in hit["cookies"]
    return header, cookie


def assert_retried_with_the_new_token(
    response: requests.Response, seen: list[dict[str, Any]]
) -> None:
    """``response`` came after a 401 to ``INVALID_TOKEN`` and one retry with ``VALID_TOKEN``.

    ``seen`` holds the requests the service answered for it: those two.
    """
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert [hit["headers"]["Authorization"] for hit in seen] == [
        f"Bearer {INVALID_TOKEN}",
        f"Bearer {VALID_TOKEN}",
    ]


def prepared(url: str, **kwargs: Any) -> requests.PreparedRequest:
    """A prepared GET of ``url``, to hand to an auth object directly."""
    return requests.Request("GET", url, **kwargs).prepare()


def run_cli(
    capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None
) -> tuple[int, str, str]:
    """``cave-auth *argv`` through ``main``: its exit code, standard output and error.

    With ``stdin``, the command reads that text as its standard input.
    """
    previous = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        code = main(list(argv))
    finally:
        sys.stdin = previous
    out, err = capsys.readouterr()
    return code, out, err


def in_threads(
    work: Callable[[Any], None], arguments: Iterable[Any], timeout: float | None = None
) -> None:
    """Run ``work(argument)`` for every argument, each in a thread, all at once; wait for them."""
    threads = [threading.Thread(target=work, args=(argument,)) for argument in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)


@pytest.fixture(params=[0o000, 0o022], ids=["umask-000", "umask-022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The process umask during the test: each test runs under 000 and under 022."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$BROWSER`` is a script that appends each URL it opens to the file returned.

    webbrowser's registry is emptied, so the module reads ``$BROWSER`` afresh.
    """
    import webbrowser

    opened = tmp_path / "opened"
    script = tmp_path / "browser"
    script.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    script.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(script))
    monkeypatch.setattr(webbrowser, "_tryorder", None)  # read BROWSER afresh
    monkeypatch.setattr(webbrowser, "_browsers", {})
    return opened


class Service:
    """A running loopback HTTP service; ``seen`` holds every request it answered."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.scheme = "http"
        self.ca_file = ""
        self.seen: list[dict[str, Any]] = []

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    @property
    def login_url(self) -> str:
        """Where middle_auth_client sends a request without a token (https twin)."""
        return f"https://{mac.STICKY_AUTH_URL}/api/v1/authorize"

    @property
    def create_token_url(self) -> str:
        """The create-token page of the auth server the realm names."""
        return f"https://{mac.STICKY_AUTH_URL.split('/')[0]}/auth/api/v1/create_token"

    def redirect(self, to: str, status: int = 302, host: str = "127.0.0.1") -> str:
        """A URL on this service that answers ``status`` with ``Location: to``."""
        from urllib.parse import quote

        return self.url(f"/redirect/{status}?to={quote(to, safe='')}", host)


def _lookup_user(token: str) -> dict[str, Any] | None:
    return USERS.get(token)


def make_app(service: Service) -> flask.Flask:
    app = flask.Flask("cave-test-service")

    @app.before_request
    def record() -> None:
        request = flask.request
        service.seen.append(
            {
                "host": request.host,
                "path": request.path,
                "headers": dict(request.headers),
                "cookies": dict(request.cookies),
            }
        )

    @app.route("/echo", methods=["GET", "POST", "PUT"])
    def echo() -> Any:
        request = flask.request
        return {
            "method": request.method,
            "host": request.host,
            "headers": dict(request.headers),
            "cookies": dict(request.cookies),
            "body": request.get_data().decode("latin-1"),
        }

    @app.route("/redirect/<int:status>", methods=["GET", "POST", "PUT"])
    def redirect(status: int) -> Any:
        return flask.redirect(flask.request.args["to"], code=status)

    @app.route("/api/data", methods=["GET", "POST", "PUT"])
    @mac.auth_required
    def data() -> Any:
        return {
            "user": flask.g.auth_user["name"],
            "body": flask.request.get_data().decode("latin-1"),
        }

    @app.route("/auth/api/v1/user/cache")
    @mac.auth_required
    def user_cache() -> Any:
        return flask.g.auth_user

    @app.route("/api/minnie/view")
    @mac.auth_requires_permission("view", dataset="minnie")
    def minnie_view() -> Any:
        return {"ok": True}

    @app.route("/api/minnie/edit")
    @mac.auth_requires_permission("edit", dataset="minnie")
    def minnie_edit() -> Any:
        return {"ok": True}

    @app.route("/api/minnie/admin")
    @mac.auth_requires_dataset_admin(dataset="minnie")
    def minnie_admin() -> Any:
        return {"ok": True}

    @app.route("/api/superadmin")
    @mac.auth_requires_admin
    def superadmin() -> Any:
        return {"ok": True}

    @app.route("/sticky_auth/api/v1/authorize")
    def login_page() -> Any:
        return "<html><body>Log in with Google</body></html>"

    @app.route("/always401", methods=["GET", "POST", "PUT"])
    def always_401() -> Any:
        flask.request.get_data()
        response = flask.jsonify(
            {"error": "invalid_token", "message": "Unauthorized - Token is Invalid or Expired"}
        )
        response.status_code = 401
        return response

    @app.route("/always403")
    def always_403() -> Any:
        return flask.Response("Requires membership of group: lab", 403)

    return app


def _serve(app: flask.Flask, ssl_context: Any = None) -> tuple[Any, threading.Thread]:
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=ssl_context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture(scope="session")
def _services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Service]]:
    """The http service and its https twin, which also serves the login page.

    middle_auth_client redirects browser-like requests to
    ``https://localhost:<tls port>/sticky_auth/api/v1/authorize``, so a
    followed login redirect stays on loopback.
    """
    import trustme

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    authority = trustme.CA()
    certificate = authority.issue_cert("localhost", "127.0.0.1", "::1")
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.configure_cert(context)

    plain, tls = Service(0), Service(0)
    tls.scheme = "https"
    tls.ca_file = str(ca_file)
    tls_server, tls_thread = _serve(make_app(tls), context)
    tls.port = tls_server.server_port
    server, thread = _serve(make_app(plain))
    plain.port = server.server_port

    old_sticky = mac.STICKY_AUTH_URL
    mac.STICKY_AUTH_URL = f"localhost:{tls.port}/sticky_auth"
    mac.setPermissionLookupOverride(_lookup_user)
    try:
        yield plain, tls
    finally:
        for running, running_thread in ((server, thread), (tls_server, tls_thread)):
            running.shutdown()
            running_thread.join(5)
        mac.STICKY_AUTH_URL = old_sticky
        mac.setPermissionLookupOverride(None)


@pytest.fixture
def service(_services: tuple[Service, Service]) -> Service:
    """The middle_auth_client service over plain http on loopback."""
    return _services[0]


@pytest.fixture
def tls_service(_services: tuple[Service, Service]) -> Service:
    """The same service over https; pass ``verify=tls_service.ca_file``."""
    return _services[1]


@pytest.fixture
def seen(service: Service) -> list[dict[str, Any]]:
    """The requests the service answers during this test."""
    service.seen.clear()
    return service.seen


@pytest.fixture
def read_only() -> Iterator[Any]:
    """Make a folder read-only for this test, even when the tests run as root.

    Root ignores permission bits, so for root the folder is made immutable
    (``chattr +i``); where that is not possible the test is skipped.
    """
    import subprocess

    made: list[tuple[Path, int]] = []

    def make(folder: Path) -> Path:
        made.append((folder, folder.stat().st_mode & 0o777))
        if os.geteuid() != 0:
            folder.chmod(0o555)
            return folder
        result = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
        if result.returncode != 0:
            pytest.skip(
                "running as root, and chattr +i is not available to make a folder read-only"
            )
        return folder

    yield make
    for folder, mode in reversed(made):
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True, check=False)
        folder.chmod(mode)


def json_of(response: Any) -> Any:
    """The JSON body of a urllib3 response (``.json()`` exists only from urllib3 2)."""
    return json.loads(response.data)


URLLIB3_2 = int(__import__("urllib3").__version__.split(".")[0]) >= 2
"""urllib3 2 or newer; 1.26 is supported too, and lacks a few of its conveniences."""
