"""What the tests share that is not a fixture: tokens, small checks, and the servers.

Imported explicitly (``from helpers import VALID_TOKEN, write_secret``); the
fixtures built on these live in ``conftest.py``.

- Tokens and the users the loopback service knows them by (``VALID_TOKEN``, ...).
- Files: :func:`write_secret`, :func:`mode_of`, :func:`fingerprint`.
- What a request carried: :func:`carried` gives ``TOKEN``, ``TOKEN_AND_COOKIE``
  or ``NOTHING`` for a request the service saw.
- :class:`Service`: the Flask app protected by the real ``middle_auth_client``
  decorators that the ``service`` and ``tls_service`` fixtures run.
- :class:`AuditLog`: what ``sys.addaudithook`` sees while it listens: files
  opened, sockets connected, names resolved. An audit hook cannot be removed,
  so one hook is installed once and does nothing while no log listens.
- Every way in: :data:`WAYS`, and :func:`fetch` and :class:`Client`, which send
  through any of them and give back requests', urllib3's or httpx's response, or
  an aiohttp response read whole (:class:`AiohttpAnswer`, shaped like requests').
- :func:`run_cli`, :func:`in_threads`, and the writer and reader functions of the
  multiprocessing tests (importable, for the ``spawn`` start method).
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import os
import ssl
import stat
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote

import flask
import pytest
import requests
from middle_auth_client import decorators as mac
from requests.structures import CaseInsensitiveDict
from werkzeug.serving import make_server

from cave_requests_auth import CAVEAuthAdapter, CAVEPoolManager, CAVETokenAuth, TokenFileError
from cave_requests_auth.cli import main
from cave_requests_auth.core import Credentials

if TYPE_CHECKING:
    import aiohttp
    import httpx

# -- tokens and users ----------------------------------------------------------------------

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


# -- files ---------------------------------------------------------------------------------


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


def assert_clean(error: TokenFileError, path: Path | str, *saying: str) -> None:
    """Names ``path``, says each of ``saying``, quotes no token, chains nothing."""
    message = str(error)
    assert error.path == str(path)
    assert str(path) in message
    for words in saying:
        assert words in message
    shown = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    for token in (VALID_TOKEN, OTHER_TOKEN):
        assert token not in shown
    assert_not_chained(error)


# -- what a request carried ----------------------------------------------------------------

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


def json_of(response: Any) -> Any:
    """The JSON body of a urllib3 response (``.json()`` exists only from urllib3 2)."""
    return json.loads(response.data)


URLLIB3_2 = int(__import__("urllib3").__version__.split(".")[0]) >= 2
"""urllib3 2 or newer; 1.26 is supported too, and lacks a few of its conveniences."""


# -- every way in --------------------------------------------------------------------------

TIMEOUT = 10
REDIRECTS = [301, 302, 303, 307, 308]
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")

WAYS = ["auth=", "session.auth", "adapter", "mount", "pool", "httpx", "aiohttp"]
"""Every way a user sends a request with a CAVE token, as :class:`Client` names them.

- ``auth=``: ``session.request(..., auth=CAVETokenAuth(...))``;
- ``session.auth``: ``session.auth = CAVETokenAuth(...)``;
- ``adapter``: ``session.mount(prefix, CAVEAuthAdapter(auth))``;
- ``mount``: ``CAVEAuthAdapter.mount(session, prefix, auth=auth)``;
- ``pool``: ``CAVEPoolManager(auth).request(...)``;
- ``httpx``: ``httpx.Client(auth=CAVEHttpxAuth(...), follow_redirects=True)``;
- ``aiohttp``: ``aiohttp.ClientSession(middlewares=(CAVEAuthMiddleware(...),))``,
  run in an event loop of the :class:`Client`'s own.

A rule every way in must keep is one test parametrized over this list (test_rules.py).
The httpx and aiohttp ways are built from the :class:`CAVETokenAuth` a test
passes, with its arguments (:func:`rebuilt`); without the library, they skip.
"""
SESSION_WAYS = ["auth=", "session.auth", "adapter", "mount"]
"""The ways through a ``requests.Session``: a cookie jar, and ``response.history``."""
HISTORY_WAYS = [*SESSION_WAYS, "httpx", "aiohttp"]
"""The ways whose response keeps the redirect answers before it (``response.history``)."""
RESEND_HISTORY_WAYS = [*SESSION_WAYS, "httpx"]
"""The ways whose ``response.history`` also keeps the 401 answered before a re-send.

aiohttp's does not: the middleware re-sends inside one handler call.
"""
JAR_WAYS = [*SESSION_WAYS, "httpx", "aiohttp"]
"""The ways through a client with a cookie jar of its own (:meth:`Client.jar`)."""
AUTH_ARGUMENTS = (
    "token",
    "server_address",
    "token_file",
    "token_key",
    "secrets_dir",
    "hosts",
    "cookie",
    "allow_insecure_http",
    "required",
    "raise_on_auth_error",
)
"""What a :class:`CAVETokenAuth` is made of: the keywords every binding takes."""


def rebuilt(binding: type[Credentials], auth: Credentials) -> Any:
    """A ``binding`` (``CAVEHttpxAuth``, ``CAVEAuthMiddleware``) with ``auth``'s arguments."""
    assert set(inspect.signature(Credentials).parameters) == set(AUTH_ARGUMENTS)
    return binding(**{name: getattr(auth, name) for name in AUTH_ARGUMENTS})


def origin_prefix(url: str) -> str:
    """``scheme://netloc/`` of ``url``: the prefix to mount an adapter on for its origin."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}/"


def raw_request(url: str) -> requests.PreparedRequest:
    """A PreparedRequest for any URL: ``prepare()`` itself refuses many."""
    request = requests.PreparedRequest()
    request.method = "GET"
    request.url = url
    request.headers = CaseInsensitiveDict()
    request.hooks = {"response": []}
    return request


def bearer(request: requests.PreparedRequest) -> str | None:
    """The token of a request's ``Authorization: Bearer`` header, or None."""
    value = request.headers.get("Authorization")
    return None if value is None else value.removeprefix("Bearer ")


def has_token(hit: dict[str, Any]) -> bool:
    """Whether a request seen by ``service`` carried any token, as header or cookie."""
    return "Authorization" in hit["headers"] or "middle_auth_token" in hit["cookies"]


def status_of(response: Any) -> int:
    """The status of any way's response (requests, urllib3, httpx, :class:`AiohttpAnswer`)."""
    if hasattr(response, "status_code"):
        return int(response.status_code)
    return int(response.status)


def json_body(response: Any) -> Any:
    """The JSON body of any way's response (a urllib3 one has ``.data``, the others ``.json()``)."""
    if hasattr(response, "status_code"):
        return response.json()
    return json_of(response)


class AiohttpAnswer:
    """An aiohttp response, read whole before its session is left: requests' shape.

    ``status_code`` (and ``status``), ``headers``, ``url``, ``content``,
    ``json()``, and ``history``: the redirect answers before it, each an
    :class:`AiohttpAnswer` without a body.
    """

    def __init__(
        self, response: aiohttp.ClientResponse, content: bytes = b"", *, hops: bool = True
    ) -> None:
        self.status_code = self.status = response.status
        self.headers = dict(response.headers)
        self.url = str(response.url)
        self.content = content
        self.history = [AiohttpAnswer(hop, hops=False) for hop in response.history] if hops else []

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode()

    def __repr__(self) -> str:
        return f"<AiohttpAnswer [{self.status_code}] {self.url}>"


async def _chunks_of(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _ssl_context(verify: str | None) -> ssl.SSLContext | None:
    return None if not verify else ssl.create_default_context(cafile=verify)


class Client:
    """One way in (one of :data:`WAYS`), open for several requests, as a user holds it.

    ``adapter`` and ``mount`` mount on ``prefix`` when given, else on the origin of
    each URL sent (not of the hops a redirect leads to), one adapter for all
    (``mount``: one per origin, as each call makes its own). ``verify`` is the CA
    file (the pool manager's ``ca_certs``); ``pool_kwargs`` go to CAVEPoolManager.
    ``session`` is the requests session (None for the other ways); ``httpx`` the
    ``httpx.Client`` and ``aiohttp`` the ``aiohttp.ClientSession``, each with a
    binding built from ``auth``'s arguments and following redirects itself.
    """

    def __init__(
        self,
        way: str,
        auth: CAVETokenAuth,
        *,
        prefix: str | None = None,
        verify: str | None = None,
        **pool_kwargs: Any,
    ) -> None:
        if way not in WAYS:
            raise AssertionError(way)
        self.way = way
        self.auth = auth
        self.verify = verify
        self.session: requests.Session | None = None
        self.pool: CAVEPoolManager | None = None
        self.httpx: httpx.Client | None = None
        self.aiohttp: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._mounted: set[str] = set()
        self._adapter: CAVEAuthAdapter | None = None
        self._fixed_prefix = prefix is not None
        if pool_kwargs and way != "pool":
            raise TypeError(f"{way} takes no pool manager arguments: {sorted(pool_kwargs)}")
        if way == "pool":
            if verify:
                pool_kwargs["ca_certs"] = verify
            self.pool = CAVEPoolManager(auth, **pool_kwargs)
            return
        if way == "httpx":
            self._open_httpx()
            return
        if way == "aiohttp":
            self._open_aiohttp()
            return
        self.session = requests.Session()
        if way == "session.auth":
            self.session.auth = auth
        if prefix is not None and way in ("adapter", "mount"):
            self._mount(prefix)

    def _open_httpx(self) -> None:
        httpx = pytest.importorskip("httpx")
        from cave_requests_auth.httpx import CAVEHttpxAuth

        self.httpx = httpx.Client(
            auth=rebuilt(CAVEHttpxAuth, self.auth),
            verify=_ssl_context(self.verify) or True,
            follow_redirects=True,
            timeout=TIMEOUT,
        )

    def _open_aiohttp(self) -> None:
        pytest.importorskip("aiohttp", minversion="3.12")
        import aiohttp

        from cave_requests_auth.aiohttp import CAVEAuthMiddleware

        middleware = rebuilt(CAVEAuthMiddleware, self.auth)
        context = _ssl_context(self.verify)

        async def open_session() -> aiohttp.ClientSession:
            return aiohttp.ClientSession(
                middlewares=(middleware,),
                connector=aiohttp.TCPConnector(ssl=context if context is not None else True),
                timeout=aiohttp.ClientTimeout(total=TIMEOUT),
            )

        self._loop = asyncio.new_event_loop()
        self.aiohttp = self._loop.run_until_complete(open_session())

    def _mount(self, prefix: str) -> None:
        assert self.session is not None
        if prefix in self._mounted:
            return
        self._mounted.add(prefix)
        if self.way == "adapter":
            if self._adapter is None:
                self._adapter = CAVEAuthAdapter(self.auth)
            self.session.mount(prefix, self._adapter)
        else:
            CAVEAuthAdapter.mount(self.session, prefix, auth=self.auth)

    def send(self, url: str, method: str = "GET", *, data: Any = None, **kwargs: Any) -> Any:
        """``method url`` (with the body ``data``); the way's response (see :func:`status_of`)."""
        if self.pool is not None:
            if data is not None:
                kwargs["body"] = data
            return self.pool.request(method, url, timeout=TIMEOUT, **kwargs)
        if self.httpx is not None:
            return self.httpx.request(method, url, content=data, **kwargs)
        if self.aiohttp is not None:
            assert self._loop is not None
            if isinstance(data, Iterator) and not isinstance(data, io.IOBase):
                data = _chunks_of(data)  # aiohttp streams an async iterator, not a sync one
            return self._loop.run_until_complete(self._send_aiohttp(method, url, data, kwargs))
        assert self.session is not None
        if self.way in ("adapter", "mount") and not self._fixed_prefix:
            self._mount(origin_prefix(url))
        if self.way == "auth=":
            kwargs["auth"] = self.auth
        if self.verify:
            kwargs["verify"] = self.verify
        return self.session.request(method, url, data=data, timeout=TIMEOUT, **kwargs)

    async def _send_aiohttp(
        self, method: str, url: str, data: Any, kwargs: dict[str, Any]
    ) -> AiohttpAnswer:
        assert self.aiohttp is not None
        async with self.aiohttp.request(method, url, data=data, **kwargs) as response:
            return AiohttpAnswer(response, await response.read())

    def set_cookie(self, name: str, value: str) -> None:
        """Put a cookie for every host into the client's jar (:data:`JAR_WAYS`)."""
        if self.session is not None:
            self.session.cookies.set(name, value)
        elif self.httpx is not None:
            self.httpx.cookies.set(name, value)
        else:
            assert self.aiohttp is not None
            self.aiohttp.cookie_jar.update_cookies({name: value})

    def jar(self) -> dict[str, str]:
        """The cookies in the client's jar (:data:`JAR_WAYS`), by name."""
        if self.session is not None:
            return {cookie.name: str(cookie.value) for cookie in self.session.cookies}
        if self.httpx is not None:
            return {cookie.name: str(cookie.value) for cookie in self.httpx.cookies.jar}
        assert self.aiohttp is not None
        return {morsel.key: morsel.value for morsel in self.aiohttp.cookie_jar}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.clear()
        if self.session is not None:
            self.session.close()
        if self.httpx is not None:
            self.httpx.close()
        if self._loop is not None:
            loop = self._loop
            if self.aiohttp is not None:
                loop.run_until_complete(self.aiohttp.close())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def fetch(
    way: str,
    url: str,
    auth: CAVETokenAuth,
    *,
    method: str = "GET",
    prefix: str | None = None,
    verify: str | None = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    """Send one request the ``way`` a user would; the final status and the response.

    ``adapter`` and ``mount`` mount on the URL's origin only (or on ``prefix``;
    the other ways ignore it). ``kwargs`` go to the request (``data=`` is the pool
    manager's ``body=``, httpx's ``content=``).
    """
    with Client(way, auth, prefix=prefix, verify=verify) as client:
        response = client.send(url, method, **kwargs)
        return status_of(response), response


# -- the command and threads ---------------------------------------------------------------


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


# -- the middle_auth_client service --------------------------------------------------------


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
        return self.url(f"/redirect/{status}?to={quote(to, safe='')}", host)


# A token's life on the auth server, as middle_auth keeps it: API keys (an id each,
# never expiring) and login tokens (a time to live); revoked tokens are refused.
API_KEYS = {VALID_TOKEN: 11, TOS_TOKEN: 13, PLAIN_TOKEN: 14}
TTLS = {OTHER_TOKEN: 6 * 86400}  # seconds left; a login token, 7 days when made
REVOKED: set[str] = set()  # emptied before each test (conftest's isolated_home)


def lookup_user(token: str) -> dict[str, Any] | None:
    """The user of ``token``, for ``setPermissionLookupOverride``."""
    return None if token in REVOKED else USERS.get(token)


def add_token_life_routes(app: flask.Flask) -> None:
    """middle_auth's routes of a token's life (``neuroglancer_auth/server.py``), exactly:
    ``user/token`` (the user's API keys), ``DELETE user/token/<id>``, ``logout``
    (422 for an API key) and ``user/token/<token>/ttl`` (-1 for an API key)."""

    def own(token: str) -> bool:
        return lookup_user(token) is not None and USERS[token]["id"] == flask.g.auth_user["id"]

    @app.route("/auth/api/v1/user/token")
    @mac.auth_required
    def api_keys() -> Any:
        keys = [{"id": n, "token": t, "user_id": USERS[t]["id"]} for t, n in API_KEYS.items()]
        return flask.jsonify([key for key in keys if own(str(key["token"]))])

    @app.route("/auth/api/v1/user/token/<int:key_id>", methods=["DELETE"])
    @mac.auth_required
    def delete_api_key(key_id: int) -> Any:
        for token, number in API_KEYS.items():
            if number == key_id and own(token):
                REVOKED.add(token)
                return flask.jsonify("success")
        return flask.Response("Token doesn't exist", 404)

    @app.route("/auth/api/v1/logout")
    @mac.auth_required
    def logout() -> Any:
        if flask.g.auth_token in API_KEYS:
            return flask.Response("Can't logout an API Key.", 422)
        REVOKED.add(flask.g.auth_token)
        return flask.jsonify("success")

    @app.route("/auth/api/v1/user/token/<key>/ttl")
    @mac.auth_required
    def ttl(key: str) -> Any:
        if not own(key):
            message = "Token does not exist or is not asociated with your account."
            return flask.jsonify({"error": "invalid_token", "message": message}), 404
        return flask.jsonify(-1 if key in API_KEYS else TTLS.get(key, 7 * 86400))


def make_app(service: Service) -> flask.Flask:
    """The app of ``service``: an echo, redirects, and pages behind each decorator."""
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

    add_token_life_routes(app)
    return app


def serve_app(app: flask.Flask, ssl_context: Any = None) -> tuple[Any, threading.Thread]:
    """Serve ``app`` on 127.0.0.1, a free port, in a daemon thread: (server, thread)."""
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=ssl_context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


# -- audit events --------------------------------------------------------------------------

_listeners: list[AuditLog] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _listeners and (event == "open" or event.startswith("socket.")):
        for listener in list(_listeners):
            listener.events.append((event, args, threading.get_ident()))


_HOOKED = "_cave_security_audit_hook_installed"
if not getattr(sys, _HOOKED, False):
    sys.addaudithook(_audit)
    setattr(sys, _HOOKED, True)


class AuditLog:
    """Audit events (``open``, ``socket.*``) seen while it listens (``with AuditLog() as log``)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[Any, ...], int]] = []
        self.thread = threading.get_ident()

    def __enter__(self) -> AuditLog:
        _listeners.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _listeners.remove(self)

    def opened(self, under: Path) -> list[str]:
        """Paths opened under ``under`` (by any thread), absolute."""
        found = []
        for event, args, _ in list(self.events):
            if event != "open" or isinstance(args[0], int):
                continue
            path = os.path.abspath(os.fsdecode(args[0]))
            if path.startswith(str(under) + os.sep):
                found.append(path)
        return found

    def network(self) -> list[tuple[str, tuple[Any, ...]]]:
        """Name resolutions and connections made by the test's own thread."""
        return [
            (event, args)
            for event, args, thread in list(self.events)
            if thread == self.thread
            and event in ("socket.getaddrinfo", "socket.connect", "socket.gethostbyname")
        ]


# -- processes -----------------------------------------------------------------------------


def save_keys(environment: dict[str, str], process: int, count: int, start: Any) -> None:
    """A writer process: ``count`` saves of different keys into the default file."""
    os.environ.update(environment)
    from cave_requests_auth import save_token

    start.wait(30)
    for number in range(count):
        save_token(VALID_TOKEN, token_key=f"k{process}_{number}", write_server_file=False)


def read_until(path: str, stop: Any, results: Any) -> None:
    """A reader process: read ``path`` until ``stop``.

    Reports ``(reads, bad reads, examples of bad reads, distinct key counts seen,
    times the key count went down)``: writers only add keys, so a reader that
    sees fewer keys than before has seen a lost update.
    """
    reads = bad = shrank = 0
    examples: list[str] = []
    sizes: set[int] = set()
    last = 0
    while not stop.is_set():
        try:
            with open(path, "rb") as file:
                raw = file.read()
        except FileNotFoundError:
            bad += 1  # the file is replaced, never removed
            continue
        reads += 1
        try:
            data = json.loads(raw)
            good = isinstance(data, dict) and bool(data)
            good = good and all(value == VALID_TOKEN for value in data.values())
        except ValueError:
            good = False
        if not good:
            bad += 1
            if len(examples) < 3:
                examples.append(f"{len(raw)} bytes")
            continue
        sizes.add(len(data))
        shrank += len(data) < last
        last = len(data)
    results.put((reads, bad, examples, len(sizes), shrank))
