"""The field review (issue 9), attacked again from outside, through the public ways in.

Every test drives the library as a user would (``auth=``, ``session.auth``,
``CAVEAuthAdapter.mount``, a plain ``session.mount``, ``CAVEPoolManager``,
``CAVEProxyManager``, ``auth_headers``) against recording loopback servers
(``_loopback.Server``): a service, a proxy (it answers plain-http requests itself
and tunnels CONNECT to loopback), and an https twin.

No test touches the network: an audit hook fails any name lookup other than
``localhost`` and loopback addresses (``localhost.`` and ``127.0.0.1.`` are
resolved through DNS, so they count as remote), and where a test needs such a
name to reach a server, a stand-in for ``socket.getaddrinfo`` maps it to
``127.0.0.1``. The home folder is conftest's ``isolated_home``. Tokens are
never put in an assertion message: checks are booleans, or labels.
"""

from __future__ import annotations

import concurrent.futures
import copy
import io
import ipaddress
import json
import logging
import multiprocessing
import os
import pickle
import socket
import sys
import time
import tracemalloc
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from _loopback import Seen, Server, json_answer, raise_auth_error_in_worker
from cave_requests_auth import (
    AuthResponseError,
    CAVEAuthAdapter,
    CAVEAuthError,
    CAVEPoolManager,
    CAVEProxyManager,
    CAVETokenAuth,
    InsecureTransportError,
    InvalidTokenError,
    TokenFileError,
    TokenNotFoundError,
    auth_headers,
    raise_for_auth,
)

TOKEN = "9f3c2a7be1d04f6a8c5b3e2d1a0f9e8d"
NEW_TOKEN = "5b7e0c1d2a3f49e68d7c6b5a4f3e2d1c"
OLD_TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
LABELS = {f"Bearer {TOKEN}": "token", f"Bearer {NEW_TOKEN}": "new", f"Bearer {OLD_TOKEN}": "old"}
REALM = 'Bearer realm="https://auth.invalid/auth/api/v1/authorize"'
INVALID_401 = {
    "error": "invalid_token",
    "message": "Unauthorized - Token is Invalid or Expired",
}
OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"
FORGED = "\r\n2026-01-01 12:00:00 WARNING root: token accepted, all good\r"


# -- no name lookup leaves the machine ------------------------------------------------------

_GUARD: dict[str, Any] = {"dns": False, "resolved": [], "opens": None}
_LOOKUPS = {
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyname_ex",
    "socket.gethostbyaddr",
}


def _loopback_name(host: object) -> bool:
    """``localhost`` or a loopback address, as written: never resolved through DNS."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    text = str(host).split("%", 1)[0].strip("[]")
    if text == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event in _LOOKUPS:
        if _GUARD["dns"] and not _loopback_name(args[0] if args else None):
            _GUARD["resolved"].append(repr(args[0]))
            raise OSError(f"test_field_review: no name lookup for {args[0]!r}")
    elif event == "open" and _GUARD["opens"] is not None:
        _GUARD["opens"].append(args[0])


sys.addaudithook(_audit)  # stays for the process; does nothing outside this file's tests


@pytest.fixture(autouse=True)
def no_dns() -> Any:
    """Fail the test if anything asked for a name other than loopback."""
    _GUARD["resolved"] = []
    _GUARD["dns"] = True
    try:
        yield
    finally:
        _GUARD["dns"] = False
    assert _GUARD["resolved"] == []


@pytest.fixture
def dns_stand_in(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``localhost.`` and ``127.0.0.1.`` resolve to 127.0.0.1 without DNS; the names asked."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in ("localhost.", "127.0.0.1."):
            asked.append(name)
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


# -- servers ------------------------------------------------------------------------------


@pytest.fixture
def serve() -> Any:
    """``serve(host="127.0.0.1", route=None, ...)``: a recording server, closed afterwards."""
    servers: list[Server] = []

    def start(host: str = "127.0.0.1", route: Any = None, **kwargs: Any) -> Server:
        server = Server(host, route, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def server(serve: Any) -> Server:
    return serve()


@pytest.fixture
def proxy(serve: Any) -> Server:
    """A proxy that answers plain http itself (it never forwards) and tunnels CONNECT."""
    return serve(
        route=lambda seen: (200, {"Content-Type": "text/plain"}, b"from the proxy"),
        proxy=True,
    )


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, str]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, str(path)


@pytest.fixture
def tls_server(serve: Any, tls_files: tuple[trustme.CA, str]) -> Server:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_files[0].issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return serve(tls=context)


# -- helpers ------------------------------------------------------------------------------


def leaks(text: object, token: str = TOKEN) -> bool:
    """Whether 8 consecutive characters of ``token`` appear in ``text`` (str or bytes)."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    text = str(text)
    return any(token[i : i + 8] in text for i in range(len(token) - 7))


def has_controls(text: str) -> bool:
    return any(unicodedata.category(character) == "Cc" for character in text)


def label(seen: Seen | requests.PreparedRequest) -> str | None:
    authorization = seen.headers.get("Authorization")
    return None if authorization is None else LABELS.get(authorization, "other")


def cookie_carries_token(seen: Seen) -> bool:
    return any("middle_auth_token" in value for value in seen.headers.get_all("Cookie", []))


def saw_credentials(server: Server) -> bool:
    """Whether any request the server received carried a token, a Bearer or the cookie."""
    return any(
        seen.headers.get("Authorization") is not None
        or cookie_carries_token(seen)
        or any(seen.carries(t) for t in (TOKEN, NEW_TOKEN, OLD_TOKEN))
        for seen in server.seen
    )


def prefix_of(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}/"


REQUESTS_WAYS = ("auth=", "session.auth", "CAVEAuthAdapter.mount", "session.mount")


def send(
    way: str, method: str, url: str, auth: CAVETokenAuth, *, prefix: str | None = None, **kw: Any
) -> Any:
    """``method url`` through one way in; a requests or urllib3 response."""
    if way == "CAVEPoolManager":
        body = kw.pop("data", None)
        return CAVEPoolManager(auth=auth).request(method, url, body=body, **kw)
    kw.setdefault("timeout", 10)
    if way == "auth=":
        return requests.request(method, url, auth=auth, **kw)
    session = requests.Session()
    if way == "session.auth":
        session.auth = auth
    elif way == "CAVEAuthAdapter.mount":
        CAVEAuthAdapter.mount(session, prefix or prefix_of(url), auth=auth)
    elif way == "session.mount":
        session.mount(prefix or prefix_of(url), CAVEAuthAdapter(auth))
    else:
        raise AssertionError(way)
    with session:
        return session.request(method, url, **kw)


def secrets_with(folder: Path, token: str, name: str = "cave-secret.json") -> Path:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    path = folder / name
    temporary = folder / f".{name}.writer"
    temporary.write_text(json.dumps({"token": token}))
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path


def library_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("cave_requests_auth")]


# == 1. a proxy never sees the token ========================================================


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
@pytest.mark.parametrize("way", ["auth=", "session.auth", "auth_headers"])
def test_plain_http_to_loopback_through_an_environment_proxy_is_refused_before_sending(
    way: str,
    host: str,
    variable: str,
    server: Server,
    proxy: Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, proxy.url("/"))
    url = server.url("/echo", host=host)
    auth = CAVETokenAuth(token=TOKEN, cookie=True)

    def attempt() -> Any:
        if way == "auth_headers":
            return auth_headers(url, token=TOKEN, cookie=True)
        return send(way, "GET", url, auth)

    with pytest.raises(InsecureTransportError):
        attempt()
    assert proxy.seen == []
    assert server.seen == []


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
@pytest.mark.parametrize("way", ["auth=", "session.auth", "CAVEAuthAdapter.mount", "auth_headers"])
def test_no_proxy_for_loopback_sends_the_token_directly_to_the_server(
    way: str, host: str, server: Server, proxy: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url("/"))
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    url = server.url("/echo", host=host)
    if way == "auth_headers":
        response = requests.get(url, headers=auth_headers(url, token=TOKEN), timeout=10)
    else:
        response = send(way, "GET", url, CAVETokenAuth(token=TOKEN))
    assert response.status_code == 200
    assert proxy.seen == []
    assert [label(seen) for seen in server.seen] == ["token"]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
@pytest.mark.parametrize(
    "given", ["proxies=", "session.proxies", "proxies={'all': …}", "HTTP_PROXY"]
)
@pytest.mark.parametrize("way", ["CAVEAuthAdapter.mount", "session.mount"])
def test_plain_http_to_loopback_through_the_adapters_proxy_gets_no_token(
    way: str,
    given: str,
    host: str,
    server: Server,
    proxy: Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = server.url("/echo", host=host)
    auth = CAVETokenAuth(token=TOKEN, cookie=True)
    session = requests.Session()
    if way == "CAVEAuthAdapter.mount":
        CAVEAuthAdapter.mount(session, prefix_of(url), auth=auth)
    else:
        session.mount(prefix_of(url), CAVEAuthAdapter(auth))
    kwargs: dict[str, Any] = {}
    if given == "proxies=":
        kwargs["proxies"] = {"http": proxy.url("/")}
    elif given == "proxies={'all': …}":
        kwargs["proxies"] = {"all": proxy.url("/")}
    elif given == "session.proxies":
        session.proxies = {"http": proxy.url("/")}
    else:
        monkeypatch.setenv("HTTP_PROXY", proxy.url("/"))
    with session, pytest.raises(InsecureTransportError):
        session.get(url, timeout=10, **kwargs)
    assert not saw_credentials(proxy)
    assert proxy.seen == []  # refused before sending
    assert server.seen == []


def test_cave_pool_manager_given_a_proxy_url_says_to_use_cave_proxy_manager(
    proxy: Server,
) -> None:
    with pytest.raises(TypeError, match="CAVEProxyManager"):
        CAVEPoolManager(auth=CAVETokenAuth(token=TOKEN), proxy_url=proxy.url("/"))


@pytest.mark.parametrize("forwarded", [False, True], ids=["http", "https forwarded"])
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_cave_proxy_manager_refuses_what_the_proxy_would_see_in_the_clear(
    host: str, forwarded: bool, server: Server, proxy: Server
) -> None:
    auth = CAVETokenAuth(token=TOKEN, cookie=True)
    if forwarded:  # https, but sent to the proxy as a plain request (no CONNECT)
        http = CAVEProxyManager(proxy.url("/"), auth=auth, use_forwarding_for_https=True)
        url = server.url("/echo", host=host).replace("http:", "https:")
    else:
        http = CAVEProxyManager(proxy.url("/"), auth=auth)
        url = server.url("/echo", host=host)
    with pytest.raises(InsecureTransportError):
        http.request("GET", url)
    assert proxy.seen == []
    assert server.seen == []


@pytest.mark.parametrize(
    "way", ["CAVEProxyManager", "auth= with HTTPS_PROXY", "CAVEAuthAdapter.mount with proxies="]
)
def test_https_through_a_proxy_tunnel_carries_the_token_to_the_service_only(
    way: str,
    tls_server: Server,
    proxy: Server,
    tls_files: tuple[trustme.CA, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca_path = tls_files[1]
    url = tls_server.url("/echo", host="localhost")
    auth = CAVETokenAuth(token=TOKEN, cookie=True)
    if way == "CAVEProxyManager":
        http = CAVEProxyManager(proxy.url("/"), auth=auth, ca_certs=ca_path)
        status = http.request("GET", url).status
    elif way == "auth= with HTTPS_PROXY":
        monkeypatch.setenv("HTTPS_PROXY", proxy.url("/"))
        status = requests.get(url, auth=auth, verify=ca_path, timeout=10).status_code
    else:
        with requests.Session() as session:
            CAVEAuthAdapter.mount(session, prefix_of(url), auth=auth)
            status = session.get(
                url, proxies={"https": proxy.url("/")}, verify=ca_path, timeout=10
            ).status_code
    assert status == 200
    assert [seen.method for seen in proxy.seen] == ["CONNECT"]
    assert not saw_credentials(proxy)
    assert [label(seen) for seen in tls_server.seen] == ["token"]
    assert [cookie_carries_token(seen) for seen in tls_server.seen] == [True]


# == 2. names resolved through DNS are not loopback =========================================


@pytest.mark.parametrize("host", ["localhost.", "127.0.0.1."])
@pytest.mark.parametrize(
    "way", [*REQUESTS_WAYS, "CAVEPoolManager", "auth_headers"], ids=lambda w: w.replace("=", "")
)
def test_a_trailing_dot_loopback_name_is_refused_without_being_resolved(
    way: str, host: str, server: Server, dns_stand_in: list[str]
) -> None:
    url = server.url("/echo", host=host)

    def attempt() -> Any:
        if way == "auth_headers":
            return auth_headers(url, token=TOKEN)
        return send(way, "GET", url, CAVETokenAuth(token=TOKEN))

    with pytest.raises(InsecureTransportError):
        attempt()
    assert dns_stand_in == []  # refused before any name was looked up
    assert server.seen == []


@pytest.mark.parametrize("way", ["CAVEPoolManager", "auth=", "CAVEAuthAdapter.mount"])
def test_a_redirect_from_localhost_to_localhost_dot_carries_no_token(
    way: str, serve: Any, dns_stand_in: list[str]
) -> None:
    def route(seen: Seen) -> Any:
        if seen.path == "/start":
            return 302, {"Location": server.url("/landed", host="localhost.")}, b""
        return None  # the built-in routes answer

    server = serve(route=route)
    response = send(way, "GET", server.url("/start", host="localhost"), CAVETokenAuth(token=TOKEN))
    assert response.status == 200 if way == "CAVEPoolManager" else response.status_code == 200
    assert dns_stand_in == ["localhost."]  # the hop did go to the DNS name
    assert [(seen.path, label(seen)) for seen in server.seen] == [
        ("/start", "token"),
        ("/landed", None),
    ]


# == 3. an echoed token is masked before the text is cut =====================================


def _echo_answer(kind: str, before: int) -> Any:
    """A refusal quoting the token after ``before`` characters of text."""
    text = "The service refused " + "x" * (before - 20)
    if kind == "plain text":
        return 403, {"Content-Type": "text/plain"}, (text + TOKEN + " was refused").encode()
    if kind == "a truncated echo":  # the first 24 characters only
        return 403, {"Content-Type": "text/plain"}, (text + TOKEN[:24] + "…").encode()
    if kind == "JSON message":
        return json_answer(403, {"error": "forbidden", "message": text + TOKEN})
    if kind == "required_permission":
        data = {"required_permission": text + TOKEN, "auth_dataset": text + TOKEN}
        return json_answer(403, {"error": "missing_permission", "data": data})
    if kind == "tos_name and tos_form_url":
        data = {
            "tos_id": 7,
            "tos_name": text + TOKEN,
            "tos_form_url": "https://auth.invalid/api/v1/tos/7/accept?x=" + text + TOKEN,
        }
        return json_answer(403, {"error": "missing_tos", "data": data})
    raise AssertionError(kind)


ECHOES = ["plain text", "JSON message", "required_permission", "tos_name and tos_form_url"]
BEFORE = [20, 70, 180, 300, 480]  # straddling each cut (80, 200, 500 characters) and beyond


@pytest.mark.parametrize("answer", [*ECHOES, "a truncated echo"])
@pytest.mark.parametrize("way", ["auth=", "CAVEAuthAdapter.mount", "CAVEPoolManager"])
def test_a_token_echoed_at_the_end_of_a_long_refusal_is_masked_everywhere(
    way: str, answer: str, serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(route=lambda seen: _echo_answer(answer, int(seen.target.split("=")[1])))
    caplog.set_level(logging.DEBUG)
    leaked: list[tuple[int, str]] = []
    for before in BEFORE:
        url = server.url(f"/data?before={before}")
        caplog.clear()
        texts: dict[str, str] = {}
        if way != "CAVEPoolManager":  # raise_on_auth_error applies to requests only
            with pytest.raises(AuthResponseError) as raised:
                send(way, "GET", url, CAVETokenAuth(token=TOKEN, raise_on_auth_error=True))
            texts["raised"] = f"{raised.value} {raised.value!r} {raised.value.args!r}"
            texts["raised, pickled"] = pickle.dumps(raised.value).decode("latin-1")
        response = send(way, "GET", url, CAVETokenAuth(token=TOKEN))
        with pytest.raises(AuthResponseError) as raised:
            raise_for_auth(response)
        texts["raise_for_auth"] = f"{raised.value} {raised.value!r} {raised.value.args!r}"
        texts["raise_for_auth, pickled"] = pickle.dumps(raised.value).decode("latin-1")
        records = library_records(caplog)
        texts["log"] = "\n".join(r.getMessage() for r in records)
        if way != "CAVEPoolManager":
            assert any(r.levelno == logging.WARNING for r in records)
        leaked += [(before, where) for where, text in texts.items() if leaks(text)]
    assert leaked == []


# == 4. a hop that comes into the origin from elsewhere gets no token =====================


@pytest.mark.parametrize(
    "way", ["CAVEAuthAdapter.mount", "session.auth with hosts=", "CAVEPoolManager with hosts="]
)
def test_a_307_from_a_foreign_origin_into_the_mounted_origin_carries_no_token(
    way: str, serve: Any
) -> None:
    mounted = serve()
    target = mounted.url("/api/v1/table/important/delete")
    foreign = serve(route=lambda seen: (307, {"Location": target}, b""))
    start = foreign.url("/start", host="localhost")
    if way == "CAVEAuthAdapter.mount":
        response = send(
            way, "POST", start, CAVETokenAuth(token=TOKEN, cookie=True), prefix=mounted.url("/"),
            data=b"user's body",
        )  # fmt: skip
    else:
        auth = CAVETokenAuth(token=TOKEN, cookie=True, hosts=["127.0.0.1"])
        response = send(way.split()[0], "POST", start, auth, data=b"user's body")
    assert getattr(response, "status_code", getattr(response, "status", None)) == 200
    assert [(seen.method, seen.path, seen.body) for seen in mounted.seen] == [
        ("POST", "/api/v1/table/important/delete", b"user's body")
    ]
    assert not saw_credentials(mounted)
    assert not saw_credentials(foreign)


@pytest.mark.parametrize("way", [*REQUESTS_WAYS, "CAVEPoolManager"])
def test_a_chain_that_left_the_origin_carries_no_token_when_it_comes_back(
    way: str, serve: Any
) -> None:
    def origin_route(seen: Seen) -> Any:
        if seen.path == "/start":
            return 307, {"Location": foreign.url("/bounce", host="localhost")}, b""
        return None  # the built-in routes answer

    origin = serve(route=origin_route)
    back = origin.url("/api/v1/table/important/delete")
    foreign = serve(route=lambda seen: (307, {"Location": back}, b""))
    response = send(
        way, "POST", origin.url("/start"), CAVETokenAuth(token=TOKEN, cookie=True),
        data=b"user's body",
    )  # fmt: skip
    assert getattr(response, "status_code", getattr(response, "status", None)) == 200
    assert [(seen.path, label(seen), cookie_carries_token(seen)) for seen in origin.seen] == [
        ("/start", "token", True),
        ("/api/v1/table/important/delete", None, False),
    ]
    assert origin.seen[-1].body == b"user's body"
    assert not saw_credentials(foreign)


# == 5. a body from a pipe =================================================================


def test_pool_manager_sends_a_body_read_from_a_pipe(server: Server) -> None:
    data = b"rows from another process\n" * 100
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as body:
        response = CAVEPoolManager(auth=CAVETokenAuth(token=TOKEN)).request(
            "POST", server.url("/upload"), body=body
        )
    assert response.status == 200
    assert [(seen.path, seen.body == data, label(seen)) for seen in server.seen] == [
        ("/upload", True, "token")
    ]


# == 6. errors pickle, copy, and hold no token ==============================================


def _error(kind: str, tmp_path: Path, url: str) -> CAVEAuthError:
    secrets = tmp_path / "secrets"
    try:
        if kind == "AuthResponseError":
            requests.get(url, auth=CAVETokenAuth(token=TOKEN, raise_on_auth_error=True), timeout=10)
        elif kind == "AuthResponseError from a file":
            secrets_with(secrets, TOKEN)
            auth = CAVETokenAuth(secrets_dir=secrets, raise_on_auth_error=True)
            requests.get(url, auth=auth, timeout=10)
        elif kind == "TokenNotFoundError":
            auth = CAVETokenAuth(secrets_dir=tmp_path / "empty")
            auth(requests.Request("GET", "https://service.invalid/").prepare())
        elif kind == "InvalidTokenError":
            secrets_with(secrets, TOKEN[:16] + " " + TOKEN[16:])
            auth = CAVETokenAuth(secrets_dir=secrets)
            auth(requests.Request("GET", "https://service.invalid/").prepare())
        elif kind == "TokenFileError":
            path = secrets_with(secrets, TOKEN)
            path.write_text(f'{{"token": "{TOKEN}", "other": ')  # cut mid-write
            auth = CAVETokenAuth(secrets_dir=secrets)
            auth(requests.Request("GET", "https://service.invalid/").prepare())
        elif kind == "InsecureTransportError":
            auth = CAVETokenAuth(token=TOKEN)
            auth(requests.Request("GET", "http://service.invalid/").prepare())
    except CAVEAuthError as error:
        return error
    raise AssertionError(f"{kind} was not raised")


ERROR_KINDS = {
    "AuthResponseError": AuthResponseError,
    "AuthResponseError from a file": AuthResponseError,
    "TokenNotFoundError": TokenNotFoundError,
    "InvalidTokenError": InvalidTokenError,
    "TokenFileError": TokenFileError,
    "InsecureTransportError": InsecureTransportError,
}


def _refuse_401(seen: Seen) -> Any:
    return json_answer(401, INVALID_401, **{"WWW-Authenticate": REALM})


@pytest.mark.parametrize("kind", list(ERROR_KINDS))
def test_every_error_pickles_copies_and_holds_no_token(
    kind: str, tmp_path: Path, serve: Any
) -> None:
    server = serve(route=_refuse_401)
    error = _error(kind, tmp_path, server.url("/data"))
    assert type(error) is ERROR_KINDS[kind]
    for protocol in (0, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL):
        data = pickle.dumps(error, protocol=protocol)
        assert not leaks(data)
        again = pickle.loads(data)
        assert type(again) is type(error)
        assert str(again) == str(error)
    copied = copy.copy(error)
    assert type(copied) is type(error)
    assert str(copied) == str(error)
    assert not leaks(pickle.dumps(copied))
    assert not leaks(pickle.dumps(copy.deepcopy(error)))
    if isinstance(error, AuthResponseError):
        assert error.response is not None  # raised for a real response...
        assert pickle.loads(pickle.dumps(error)).code == error.code == "invalid_token"
        assert copied.code == error.code
    assert not leaks(str(error))


def test_an_auth_response_error_raised_in_a_spawned_worker_reaches_the_parent(
    serve: Any,
) -> None:
    server = serve(route=_refuse_401)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(raise_auth_error_in_worker, server.url("/data"), TOKEN)
        with pytest.raises(AuthResponseError) as raised:
            future.result(timeout=60)
    assert raised.value.code == "invalid_token"
    assert not leaks(str(raised.value))
    assert [label(seen) for seen in server.seen] == ["token"]


# == 7. after a reload-and-retry, hops carry the new token ==================================


@pytest.mark.parametrize("way", ["auth=", "session.auth", "CAVEAuthAdapter.mount"])
def test_after_a_retry_with_a_reloaded_token_a_same_host_redirect_carries_the_new_token(
    way: str, tmp_path: Path, serve: Any
) -> None:
    secrets = tmp_path / "secrets"
    secrets_with(secrets, OLD_TOKEN)

    def route(seen: Seen) -> Any:
        if seen.path == "/start" and label(seen) == "old":
            secrets_with(secrets, NEW_TOKEN)  # `cave-auth login` in another process
            return json_answer(401, INVALID_401, **{"WWW-Authenticate": REALM})
        if seen.path == "/start" and label(seen) == "new":
            return 302, {"Location": "/landed"}, b""
        if seen.path == "/landed" and label(seen) == "new":
            return None  # the built-in routes answer
        return json_answer(401, INVALID_401, **{"WWW-Authenticate": REALM})

    server = serve(route=route)
    auth = CAVETokenAuth(secrets_dir=secrets)
    response = send(way, "POST", server.url("/start"), auth, data=b"body")
    assert response.status_code == 200
    assert [(seen.path, label(seen)) for seen in server.seen] == [
        ("/start", "old"),
        ("/start", "new"),
        ("/landed", "new"),
    ]
    assert server.seen[1].body == b"body"
    # the next request starts with the new token straight away
    send(way, "GET", server.url("/start"), auth)
    assert [label(seen) for seen in server.seen[3:]] == ["new", "new"]


# == 8. a foreign host's 401 is not the CAVE token's fault ==================================


@pytest.mark.parametrize(
    "way", ["auth=", "session.auth", "CAVEAuthAdapter.mount", "CAVEPoolManager"]
)
def test_a_foreign_hosts_invalid_token_answer_after_a_redirect_is_not_blamed_on_the_token(
    way: str, serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    foreign = serve(route=_refuse_401)
    start = serve(route=lambda seen: (302, {"Location": foreign.url("/x", "localhost")}, b""))
    caplog.set_level(logging.DEBUG)
    responses = [
        send(way, "GET", start.url("/start"), CAVETokenAuth(token=TOKEN, raise_on_auth_error=True)),
        send(way, "GET", start.url("/start"), CAVETokenAuth(token=TOKEN)),
    ]
    for response in responses:
        assert getattr(response, "status_code", getattr(response, "status", None)) == 401
    assert [blames_the_token(response) for response in responses] == [False, False]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert [m for m in warnings if "create_token" in m or "new token" in m.lower()] == []
    assert [label(seen) for seen in start.seen] == ["token", "token"]
    assert not saw_credentials(foreign)


def blames_the_token(response: Any) -> bool:
    """Whether ``raise_for_auth`` blames the CAVE token (a 401 may still be reported)."""
    try:
        raise_for_auth(response)
    except AuthResponseError as error:
        text = str(error)
        return error.code == "invalid_token" or "create_token" in text or "expired" in text
    return False


# == 9. control characters from a server are never printed =================================


def _control_answers() -> dict[str, Any]:
    nasty = "bad" + OSC52 + FORGED + "\x07end"
    return {
        "plain-text 403": (403, {"Content-Type": "text/plain"}, nasty.encode()),
        "JSON message": json_answer(403, {"error": "group_check", "message": nasty}),
        "required_permission": json_answer(
            403,
            {
                "error": "missing_permission",
                "message": "Missing permission",
                "data": {"required_permission": nasty, "auth_dataset": "minnie" + OSC52},
            },
        ),
        "tos_name": json_answer(
            403,
            {
                "error": "missing_tos",
                "message": "Need to accept Terms of Service to access resource.",
                "data": {
                    "tos_id": 7,
                    "tos_name": nasty,
                    "tos_form_url": "https://auth.invalid/api/v1/tos/7/accept" + OSC52 + FORGED,
                },
            },
        ),
        "WWW-Authenticate realm": json_answer(
            401,
            INVALID_401,
            **{"WWW-Authenticate": 'Bearer realm="https://auth.invalid/' + OSC52 + '"'},
        ),
    }


@pytest.mark.parametrize("answer", list(_control_answers()))
@pytest.mark.parametrize("way", ["auth=", "CAVEAuthAdapter.mount", "CAVEPoolManager"])
def test_server_text_with_control_characters_is_quoted_without_them(
    way: str, answer: str, serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(route=lambda seen: _control_answers()[answer])
    url = server.url("/data")
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    if way != "CAVEPoolManager":
        with pytest.raises(AuthResponseError) as raised:
            send(way, "GET", url, CAVETokenAuth(token=TOKEN, raise_on_auth_error=True))
        texts.append(str(raised.value))
    response = send(way, "GET", url, CAVETokenAuth(token=TOKEN))
    with pytest.raises(AuthResponseError) as raised:
        raise_for_auth(response)
    texts.append(str(raised.value))
    records = library_records(caplog)
    if way != "CAVEPoolManager":
        assert any(r.levelno == logging.WARNING for r in records)
    texts += [r.getMessage() for r in records]
    assert [repr(t) for t in texts if has_controls(t)] == []


# == 13. hosts= entries match what requests sends, or are refused ===========================


@pytest.mark.parametrize(
    ("entry", "url"),
    [
        ("bücher.example", "https://xn--bcher-kva.example/"),
        ("bücher.example", "https://bücher.example/"),
        ("BÜCHER.example", "https://xn--bcher-kva.example/"),
        ("xn--bcher-kva.example", "https://bücher.example/"),
        ("*.bücher.example", "https://www.xn--bcher-kva.example/"),
        ("::1", "https://[0:0::1]/"),
        ("0:0::1", "https://[::1]:8443/"),
    ],
)
def test_a_hosts_entry_matches_the_host_requests_sends_to(entry: str, url: str) -> None:
    auth = CAVETokenAuth(token=TOKEN, hosts=[entry])
    prepared = auth(requests.Request("GET", url).prepare())
    assert label(prepared) == "token"
    other = auth(requests.Request("GET", "https://elsewhere.example/").prepare())
    assert "Authorization" not in other.headers


def test_hosts_double_colon_one_matches_a_request_to_zero_zero_double_colon_one(
    serve: Any,
) -> None:
    server = serve("::1")
    url = server.url("/echo", host="[0:0::1]")
    response = requests.get(url, auth=CAVETokenAuth(token=TOKEN, hosts=["::1"]), timeout=10)
    assert response.status_code == 200
    assert [label(seen) for seen in server.seen] == ["token"]


@pytest.mark.parametrize(
    "entry", [".example.net", "https://example.net", "example.net/", "example.net:443", "", "*."]
)
def test_a_hosts_entry_that_can_match_nothing_is_refused_at_construction(entry: str) -> None:
    with pytest.raises(ValueError, match="hosts"):
        CAVETokenAuth(token=TOKEN, hosts=[entry])


# == 14. many origins: no file reopened, warnings bounded ===================================


@pytest.mark.parametrize("origins", [300, 1500])
def test_cycling_over_many_origins_opens_no_secret_file_once_warm(
    origins: int, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets_with(secrets, TOKEN)
    # A file written in the last few seconds is read again on purpose (a rewrite
    # within one tick of a coarse clock could keep its size and times); a token
    # file in use is older than that.
    for path in secrets.iterdir():
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    auth = CAVETokenAuth(secrets_dir=secrets)
    requests_ = [
        requests.Request("GET", f"https://host{n}.example/data").prepare() for n in range(origins)
    ]
    for prepared in requests_:  # first pass: files read (once)
        auth(prepared.copy())
    again = [prepared.copy() for prepared in requests_]
    _GUARD["opens"] = opened = []
    try:
        for prepared in again:
            auth(prepared)
    finally:
        _GUARD["opens"] = None
    assert opened == []
    assert all(label(p) == "token" for p in again)


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def test_refusal_warnings_are_logged_once_per_origin_and_code_in_bounded_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """7 000 failing origins, not 100 000, to stay within the suite's time budget.

    The refusals are real ``requests.Response`` objects handed to the hook the
    auth put on each prepared request, as requests itself would; nothing is sent.
    Memory is compared between two points after every bounded cache has been
    refilled under tracemalloc: an unbounded warning set grows ~200 bytes an origin.
    """
    logger = logging.getLogger("cave_requests_auth")
    monkeypatch.setattr(logger, "propagate", False)  # caplog would keep every record
    counter = _Counter()
    logger.addHandler(counter)
    auth = CAVETokenAuth(token=TOKEN)
    body = json.dumps(
        {
            "error": "missing_permission",
            "data": {"required_permission": "edit", "auth_dataset": "minnie"},
        }
    ).encode()

    def refuse(n: int) -> None:
        prepared = auth(requests.Request("GET", f"https://host{n}.example/data").prepare())
        response = requests.Response()
        response.status_code = 403
        response.headers["Content-Type"] = "application/json"
        response.raw = io.BytesIO(body)
        response.url = str(prepared.url)
        response.request = prepared
        requests.hooks.dispatch_hook("response", prepared.hooks, response)

    try:
        for n in (0, 0, 1, 1, 0):  # once per origin and code
            refuse(n)
        assert counter.count == 2
        for n in range(2, 2000):
            refuse(n)
        tracemalloc.start()
        try:
            for n in range(2000, 4000):
                refuse(n)
            before = tracemalloc.get_traced_memory()[0]
            for n in range(4000, 7000):
                refuse(n)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    finally:
        logger.removeHandler(counter)
    assert counter.count == 7000  # each new origin still warned about, once
    assert grown < 200_000  # bytes, over 3 000 new origins


# == 15. the cookie: off by default, merged when asked ======================================


@pytest.mark.parametrize("cookie", [False, True])
@pytest.mark.parametrize(
    "way", ["auth=", "session.auth", "CAVEAuthAdapter.mount", "CAVEPoolManager"]
)
def test_the_cookie_is_off_by_default_and_merged_with_the_requests_own_cookies_when_asked(
    way: str, cookie: bool, server: Server
) -> None:
    url = server.url("/echo")
    auth = CAVETokenAuth(token=TOKEN, cookie=cookie)
    own = "own=2; middle_auth_token=stale" if cookie else "own=2"
    if way == "CAVEPoolManager":
        CAVEPoolManager(auth=auth).request("GET", url, headers={"Cookie": own})
        expected_own = ["own=2"]
    elif way == "auth=":
        requests.get(url, auth=auth, headers={"Cookie": own}, timeout=10)
        expected_own = ["own=2"]
    else:
        session = requests.Session()
        session.cookies.set("jar", "1")
        if way == "session.auth":
            session.auth = auth
        else:
            CAVEAuthAdapter.mount(session, prefix_of(url), auth=auth)
        cookies = {"own": "2", "middle_auth_token": "stale"} if cookie else {"own": "2"}
        with session:
            session.get(url, cookies=cookies, timeout=10)
        assert [c.name for c in session.cookies] == ["jar"]  # never into the jar
        expected_own = ["jar=1", "own=2"]
    [seen] = server.seen
    assert label(seen) == "token"
    assert len(seen.headers.get_all("Cookie", [])) == 1
    parts = sorted(part.strip() for part in seen.headers.get_all("Cookie", [])[0].split(";"))
    ours = [part == f"middle_auth_token={TOKEN}" for part in parts]
    assert [p for p in parts if not p.startswith("middle_auth_token=")] == expected_own
    assert ours.count(True) == (1 if cookie else 0)
    assert "middle_auth_token=stale" not in parts
    assert len(parts) == len(expected_own) + ours.count(True)
