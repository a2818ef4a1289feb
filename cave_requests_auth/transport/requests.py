"""requests: ``CAVETokenAuth`` (``auth=`` and ``session.auth``) and ``raise_for_auth``.

Translation only; every decision is :mod:`cave_requests_auth.core`'s. requests
applies an auth object once, when a request is prepared, before it merges the
``proxies=`` of the call and the session: the auth sees the environment's
proxies (``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, as requests applies them)
and nothing else. Redirect hops are made by requests itself (it strips
``Authorization`` on a change of host, and swaps in ``~/.netrc`` credentials):
:class:`.requests_adapter.CAVEAuthAdapter` sees both, and each hop.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from requests import Response
from requests.auth import AuthBase
from requests.exceptions import UnrewindableBodyError
from requests.utils import get_environ_proxies, rewind_body, select_proxy

from ..core import Credentials
from ..errors import AuthResponseError
from ..refusals import Answer, Refusal, describe, report
from ..urls import same_origin
from ..wire import MAX_ERROR_BODY, Attachment, bearer_of, merge_cookie

if TYPE_CHECKING:
    from requests import PreparedRequest
    from requests.structures import CaseInsensitiveDict

__all__ = ["SENT_ATTRIBUTE", "CAVETokenAuth", "answers_of", "environment_proxy", "raise_for_auth"]

SENT_ATTRIBUTE = "_cave_sent"
"""The :class:`.core.Attachment` on a ``PreparedRequest`` these credentials prepared.

``PreparedRequest.copy()`` does not carry it, so the redirect hops requests
makes never have it (an assumption ``tests/test_upstream.py`` checks).
"""
_RETRIED_ATTRIBUTE = "_cave_retried"


def environment_proxy(url: str) -> str | None:
    """The environment's proxy requests would send a plain ``http`` request to ``url`` through.

    Exactly as requests applies them (``NO_PROXY`` included); the environment is
    scanned first, since requests' own lookup costs tens of microseconds.
    """
    for name in os.environ:
        if name[-6:].lower() == "_proxy":
            return select_proxy(url, get_environ_proxies(url))
    return None


def _body(response: Response) -> bytes:
    """The body of a refusal, bounded; nothing for other answers."""
    if response.status_code not in (400, 401, 403):
        return b""
    length = response.headers.get("Content-Length", "0")
    if length.isdigit() and int(length) > MAX_ERROR_BODY:
        return b""
    return response.content[:MAX_ERROR_BODY]


def answers_of(response: Response, credentials: Credentials | None = None) -> list[Answer]:
    """The hops of ``response`` (its history first) as the values :mod:`.refusals` reads."""
    hops = (*response.history, response)
    # A 401 answered before a retry notes what it refused: its request, attached
    # again in place, now carries the new token.
    known = [
        getattr(hop, SENT_ATTRIBUTE, None) or getattr(hop.request, SENT_ATTRIBUTE, None)
        for hop in hops
    ]
    answers = []
    for index, hop in enumerate(hops):
        request = hop.request
        authorization = request.headers.get("Authorization") if request is not None else None
        sent = known[index]
        if sent is not None and sent.header is not None:
            authorization = sent.header
        if sent is None and authorization is not None:
            sent = next((a for a in known if a is not None and a.header == authorization), None)
            if sent is None and credentials is not None:
                sent = credentials.sent_with(str(hop.url), str(authorization))
        answers.append(
            Answer(
                method=str(request.method) if request is not None else "GET",
                url=str(hop.url or (request.url if request is not None else "")),
                status=hop.status_code,
                content_type=hop.headers.get("Content-Type", ""),
                www_authenticate=hop.headers.get("WWW-Authenticate", ""),
                location=hop.headers.get("Location") if hop.is_redirect else None,
                body=_body(hop),
                bearer=bearer_of(authorization),
                sent=sent,
                elsewhere=index > 0 and not same_origin(str(hop.url), str(hops[0].url)),
            )
        )
    return answers


def error_for(response: Any) -> Any:
    """A maker of the :class:`AuthResponseError` for a refusal in ``response``."""

    def make(refusal: Refusal) -> AuthResponseError:
        return AuthResponseError(
            refusal.message, code=refusal.code, response=response, tos_form_url=refusal.tos_form_url
        )

    return make


def _add_cookie(headers: CaseInsensitiveDict[str], cookie: str) -> None:
    """Merge ``cookie`` into the ``Cookie`` header (a loop over the few names is
    cheaper than the KeyError a lookup of a missing header raises and catches)."""
    for name in headers:
        if name.lower() == "cookie":
            headers["Cookie"] = merge_cookie(headers[name], cookie)
            return
    headers["Cookie"] = cookie


def attach(request: PreparedRequest, attachment: Attachment) -> None:
    """Put ``attachment``'s headers on ``request`` and note what was sent."""
    if attachment.header is not None:
        request.headers["Authorization"] = attachment.header
        if attachment.cookie is not None:
            _add_cookie(request.headers, attachment.cookie)
    setattr(request, SENT_ATTRIBUTE, attachment)


def rewindable(request: PreparedRequest) -> bool:
    """Whether the body can be sent again; a seekable file is rewound to where it began."""
    body = request.body
    if body is None or isinstance(body, (bytes, str)):
        return True
    try:
        rewind_body(request)
    except UnrewindableBodyError:
        return False  # a generator or other one-shot body
    return True


class CAVETokenAuth(Credentials, AuthBase):
    """Attach a CAVE token to requests: ``requests.get(url, auth=CAVETokenAuth())``.

    Args:
        token: the token itself; otherwise it is looked up for each request's
            host (``CAVE_TOKEN``, then the secret files; see :func:`find_token`).
        server_address: the auth server (default :data:`DEFAULT_SERVER_ADDRESS`);
            its ``<netloc>-cave-secret.json`` is searched before the default file,
            and its pages are named in messages.
        token_file: read the token from this file only.
        token_key: the key in the JSON files (default ``"token"``).
        secrets_dir: the folder of the secret files.
        hosts: only these hosts get the token (``"example.org"``, ``"*.example.org"``
            for its subdomains, or an IP address); others go out untouched.
            ``None`` (default): every host the auth is used with.
        cookie: also send the token as the ``middle_auth_token`` cookie of that
            request (default ``False``: CAVE services read the Bearer header first,
            and tools that redact ``Authorization`` do not redact a ``Cookie``).
        allow_insecure_http: allow plain ``http://`` to hosts that are not loopback
            (and to loopback through a proxy).
        required: where no token is found, raise :class:`TokenNotFoundError`
            before sending (default), or send the request without one.
        raise_on_auth_error: raise :class:`AuthResponseError` from the request
            call when the service refuses the token (otherwise a warning is
            logged once per origin and kind of failure, and the response returned).

    The auth sees the environment's proxies, not a ``proxies=`` argument or
    ``session.proxies``: plain http to loopback through those is seen only by
    :meth:`CAVEAuthAdapter.mount`.

    Raises:
        InvalidTokenError: ``token`` is not a bearer token.
        TypeError, ValueError: ``hosts``, ``token_key`` or ``server_address`` are malformed.
    """

    def attachment_for(self, url: str) -> Attachment | None:
        """What a request to ``url`` carries (cached per origin); ``None`` outside ``hosts=``.

        Raises:
            InsecureTransportError, TokenNotFoundError, InvalidTokenError,
            TokenFileError: as a request to ``url`` would.
        """
        return self.attachment(url, environment_proxy)

    def headers_for(self, url: str) -> dict[str, str]:
        """The headers this auth adds to a request to ``url``: ``{}`` where none."""
        attachment = self.attachment_for(url)
        return {} if attachment is None else attachment.headers()

    def _setup(self) -> None:
        super()._setup()
        self._hook = self.handle_response

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        del state["_hook"]
        return state

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        attachment = self.attachment(request.url, environment_proxy)  # type: ignore[arg-type]
        if attachment is not None:
            header = attachment.header  # attach(), inlined: this is the hot path
            if header is not None:
                headers = request.headers
                headers["Authorization"] = header
                if attachment.cookie is not None:
                    _add_cookie(headers, attachment.cookie)
            setattr(request, SENT_ATTRIBUTE, attachment)
            hooks = request.hooks["response"]
            if self._hook not in hooks:
                hooks.append(self._hook)
        return request

    def handle_response(self, response: Response, **kwargs: Any) -> Response:
        """The response hook: retry a ``401 invalid_token`` once, report refusals."""
        status = response.status_code
        if status < 300 or status >= 500 or (status < 400 and not response.is_redirect):
            return response
        request = response.request
        sent = getattr(request, SENT_ATTRIBUTE, None)  # None on hops requests made
        if sent is not None and status == 401 and not getattr(request, _RETRIED_ATTRIBUTE, False):
            newer = self.retry_with(
                str(request.url),
                sent,
                status,
                response.headers.get("Content-Type", ""),
                _body(response),
                from_hop=False,
                rewindable=rewindable(request),
            )
            if newer is not None:
                response = self._send_again(response, newer, **kwargs)
        answers = answers_of(response, self)
        if sent is None:  # the hook runs on each hop requests made, without its history
            # requests strips Authorization on a hop to another origin (its
            # should_strip_auth), and keeps it, or swaps in .netrc's, on the same one.
            elsewhere = "Authorization" not in request.headers
            answers = [answers[-1]._replace(elsewhere=elsewhere)]
        report(self, answers, error_for(response))
        return response

    def _send_again(self, response: Response, newer: Attachment, **kwargs: Any) -> Response:
        """Send the request once more with ``newer``, attached in place.

        In place, since requests copies the redirect hops that follow from this
        very request: they then carry the new token, not the refused one.
        """
        request = response.request
        response.content  # noqa: B018  (read the 401, so the connection can be reused)
        response.close()
        setattr(response, SENT_ATTRIBUTE, getattr(request, SENT_ATTRIBUTE, None))
        attach(request, newer)
        setattr(request, _RETRIED_ATTRIBUTE, True)
        assert response.connection is not None
        new_response: Response = response.connection.send(request, **kwargs)
        new_response.history.append(response)
        new_response.request = request
        return new_response


def raise_for_auth(response: Any) -> None:
    """Raise :class:`AuthResponseError` if ``response`` is a CAVE auth failure.

    Call it where ``raise_for_status`` would be called; other responses,
    errors included, pass through. Takes a :class:`requests.Response`, a
    urllib3 response or an httpx response.

    Raises:
        AuthResponseError: a 401, a 403, a CAVE ``bad_auth_header`` 400, or a
            redirect to the login page.
        TypeError: ``response`` is none of these (an aiohttp response: use
            ``CAVEAuthMiddleware(raise_on_auth_error=True)``).
    """
    if isinstance(response, Response):
        answers = answers_of(response)
    elif type(response).__module__.startswith("aiohttp"):
        raise TypeError(
            "raise_for_auth cannot read an aiohttp response (its body is read with await); "
            "use CAVEAuthMiddleware(raise_on_auth_error=True) instead."
        )
    elif type(response).__module__.startswith("httpx"):
        from .httpx import answers_of_httpx  # httpx is imported: the response is its

        answers = answers_of_httpx(response)
    else:
        from .urllib3 import answers_of_urllib3

        answers = answers_of_urllib3(response)
    refusal = describe(answers)
    if refusal is not None:
        raise error_for(response)(refusal)
