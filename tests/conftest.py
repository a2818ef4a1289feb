"""Fixtures: an isolated home, and real HTTP services on loopback.

- ``isolated_home`` (autouse): ``HOME`` and ``CLOUD_VOLUME_DIR`` point into
  ``tmp_path``; ``CAVE_TOKEN``, ``CAVE_TOKEN_FILE``, ``NETRC`` and proxy settings
  are cleared; the lookup's per-process memory (deprecation warnings given, the
  Colab answer) starts empty and ``google.colab`` is not imported. No test reads
  or writes the real home.
- ``service``: a Flask app protected by the real ``middle_auth_client``
  decorators (tokens checked locally through ``setPermissionLookupOverride``),
  with an echo endpoint and a redirect endpoint. It listens on ``127.0.0.1``;
  ``service.url(path, host="localhost")`` reaches it under another host name,
  which requests treats as another host. ``tls_service`` is its https twin
  (a trustme certificate for localhost, 127.0.0.1 and ::1), which also serves
  the login page that middle_auth_client redirects browser-like requests to.
- ``recorder`` and ``recorder_on(host)``: a raw ``http.server`` that records every
  request (:class:`_loopback.Server`), on 127.0.0.1 or another loopback address.
- ``audit``: the files opened, names resolved and sockets connected during the test;
  ``resolved``: names other than loopback something tried to resolve (refused).
- ``umask`` (parametrized: 000 and 022) and ``browser`` (a fake ``$BROWSER`` that
  notes the URLs it is asked to open), for the tests that ask for them.

Only fixtures live here. The plain helpers the test modules share (``mode_of``,
``fingerprint``, ``run_cli``, the tokens, ...) are in ``helpers.py``, imported
explicitly: ``from helpers import ...``.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from middle_auth_client import decorators as mac

from _loopback import Server
from cave_requests_auth import lookup
from helpers import (
    LOOPBACK_NAMES,
    OTHER_TOKEN,
    PROXY_VARIABLES,
    REVOKED,
    VALID_TOKEN,
    AuditLog,
    Service,
    lookup_user,
    make_app,
    serve_app,
)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    REVOKED.clear()  # the service's tokens are all valid again
    monkeypatch.setenv("CLOUD_VOLUME_DIR", str(home / ".cloudvolume"))
    for name in (
        "CAVE_TOKEN",
        "CAVE_TOKEN_FILE",
        "NETRC",
        "NO_COLOR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setattr(lookup, "_warned_deprecated", set())
    monkeypatch.setattr(lookup, "_colab_answer", {})
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    return home


@pytest.fixture
def secrets(isolated_home: Path) -> Path:
    """The default secrets folder, ``$CLOUD_VOLUME_DIR/secrets`` (not created)."""
    return isolated_home / ".cloudvolume" / "secrets"


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
    tls_server, tls_thread = serve_app(make_app(tls), context)
    tls.port = tls_server.server_port
    server, thread = serve_app(make_app(plain))
    plain.port = server.server_port

    old_sticky = mac.STICKY_AUTH_URL
    mac.STICKY_AUTH_URL = f"localhost:{tls.port}/sticky_auth"
    mac.setPermissionLookupOverride(lookup_user)
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


@pytest.fixture(scope="session")
def _recorders() -> Iterator[dict[str, Server]]:
    made: dict[str, Server] = {}
    yield made
    for server in made.values():
        server.close()


@pytest.fixture
def recorder_on(_recorders: dict[str, Server]) -> Callable[[str], Server]:
    """A recording :class:`Server` on a loopback address of the test's choice, reset.

    One per address for the session; ``/auth`` takes ``VALID_TOKEN`` and ``OTHER_TOKEN``.
    """

    def on(host: str) -> Server:
        if host not in _recorders:
            _recorders[host] = Server(host, accepted=(VALID_TOKEN, OTHER_TOKEN))
        _recorders[host].reset()
        return _recorders[host]

    return on


@pytest.fixture
def recorder(recorder_on: Callable[[str], Server]) -> Server:
    """A recording :class:`Server` on 127.0.0.1 (another port than ``service``), reset."""
    return recorder_on("127.0.0.1")


@pytest.fixture
def audit() -> Iterator[AuditLog]:
    """What the test opens, resolves and connects to (see :class:`AuditLog`)."""
    with AuditLog() as log:
        yield log


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Host names something tried to resolve other than loopback: refused, and listed."""
    names: list[str] = []
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in LOOPBACK_NAMES:
            names.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "refused by the test: not loopback")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return names
