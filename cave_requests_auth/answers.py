"""Reading a CAVE service's answer: was the token missing, invalid, or not allowed?

The services check tokens with ``middle_auth_client``, which answers:

- ``401 {"error": "no_token"}`` or ``401 {"error": "invalid_token"}``, with
  ``WWW-Authenticate: Bearer realm="https://<auth server>/…/api/v1/authorize"``;
- ``400 {"error": "bad_auth_header"}`` for an ``Authorization`` that is not Bearer;
- ``403 {"error": "missing_tos" | "missing_permission" | "missing_role", "data": …}``,
  or a plain-text 403 for group and admin checks;
- a ``302`` to ``…/api/v1/authorize`` (a login page) for a request that carries
  no ``Authorization`` header.

:func:`describe_failure` turns such an answer into an :class:`AuthResponseError`
whose message says what happened, which token source was used, and what to do.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from .errors import AuthResponseError
from .urls import new_token_url, parse_origin

if TYPE_CHECKING:
    from requests import PreparedRequest, Response

    from .tokens import TokenSource

__all__ = [
    "SENT_ATTRIBUTE",
    "Attachment",
    "describe_failure",
    "error_code",
    "raise_for_auth",
]

SENT_ATTRIBUTE = "_cave_attachment"
"""The attribute of a ``PreparedRequest`` holding the :class:`Attachment` sent with it.

``PreparedRequest.copy()`` does not carry it, so the redirect hops requests
makes from a request never have it: only what the auth itself prepared does.
"""

_AUTHORIZE_PATH = "/api/v1/authorize"
_REALM = re.compile(r'realm="([^"]*)"', re.IGNORECASE)
_MAX_QUOTE = 200


class Attachment:
    """What the auth attached for one origin: the token's source and its headers.

    ``source`` is ``None`` where no token was found and none was required.
    """

    __slots__ = ("cookie", "header", "items", "server_address", "source")

    def __init__(self, source: TokenSource | None, server_address: str | None) -> None:
        self.source = source
        self.server_address = server_address
        self.header = None if source is None else f"Bearer {source.token}"
        self.cookie = None if source is None else f"middle_auth_token={source.token}"
        # The entries of requests' header store, made once rather than per request.
        self.items = (("Authorization", self.header), ("Cookie", self.cookie))

    def __repr__(self) -> str:
        return f"Attachment(source={self.source!r})"


def _attachments(response: Response) -> list[Attachment]:
    """What the auth attached along the way (a retry adds one), in order."""
    found = (getattr(hop.request, SENT_ATTRIBUTE, None) for hop in (*response.history, response))
    return [attachment for attachment in found if attachment is not None]


def _where(request: PreparedRequest | None) -> str:
    """``GET https://host/path``: never the query, which may hold anything."""
    if request is None or not request.url:
        return "The request"
    url = str(request.url)
    origin = parse_origin(url)
    path = url.split("://", 1)[-1].partition("/")[2].split("?", 1)[0].split("#", 1)[0]
    target = f"{origin}/{path}" if origin is not None else "the URL"
    return f"{request.method} {target}"


def _error_object(content_type: str, body: bytes) -> dict[str, Any] | None:
    """The JSON error object of a CAVE answer: ``{"error": code, ...}``, or ``None``."""
    if "json" not in content_type:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return data
    return None


def error_code(content_type: str, body: bytes) -> str | None:
    """The ``error`` code of a CAVE JSON answer (``"invalid_token"``, …), or ``None``."""
    found = _error_object(content_type, body)
    return None if found is None else str(found["error"])


def _login_redirect(response: Response) -> tuple[Response, str] | None:
    """The hop that redirected to the login page, and the auth server's origin."""
    for hop in (*response.history, response):
        location = hop.headers.get("Location")
        if hop.is_redirect and location:
            target = urljoin(hop.url or "", location).split("?", 1)[0]
            origin = parse_origin(target)
            if origin is not None and target.rstrip("/").endswith(_AUTHORIZE_PATH):
                return hop, str(origin)
    return None


def _auth_server(response: Response, attachment: Attachment | None) -> str | None:
    """The auth server named by the realm, else the one the auth was given."""
    match = _REALM.search(response.headers.get("WWW-Authenticate", ""))
    if match:
        origin = parse_origin(match.group(1))
        if origin is not None and origin.scheme in ("http", "https"):
            return str(origin)
    return None if attachment is None else attachment.server_address


def _quote(text: str) -> str:
    """Server text fit for a message: one line, and short."""
    text = " ".join(text.split()).rstrip(".")
    return text[:_MAX_QUOTE] + ("…" if len(text) > _MAX_QUOTE else "")


def describe_failure(response: Response) -> AuthResponseError | None:
    """The :class:`AuthResponseError` for a CAVE auth failure, or ``None``.

    A failure is a 401, a CAVE ``bad_auth_header`` 400, a 403, or a redirect to
    the login page (followed or not).
    """
    attachments = _attachments(response)
    attachment = attachments[-1] if attachments else None  # the last token sent
    source = None if attachment is None else attachment.source
    token = f"the token from {source}" if source is not None else "no token"
    login = _login_redirect(response)
    server: str | None
    if login is not None:
        failing, server = login
    else:
        failing, server = response, _auth_server(response, attachment)
    create = f"Create a token at {new_token_url(server)} and save it with `cave-auth login`"
    where = _where(failing.request)

    if login is not None:
        found: tuple[str, str, str | None] | None = _login_message(
            where, token, create, source is None
        )
    else:
        found = _explain(response, where, token, create, source is None)
    if found is None:
        return None
    message, code, tos_form_url = found
    # The parts above quote the server (its codes, names, URLs, realm); a server
    # that echoes a token must not get it into a message or a log line.
    for sent in attachments:
        if sent.source is not None:
            secret = sent.source.token
            message = message.replace(secret, "…")
            code = code.replace(secret, "…")
            tos_form_url = tos_form_url and tos_form_url.replace(secret, "…")
    return AuthResponseError(message, code=code, response=response, tos_form_url=tos_form_url)


def _login_message(where: str, token: str, create: str, no_source: bool) -> tuple[str, str, None]:
    """For a redirect to the login page: no token, or one the service did not accept."""
    if no_source:
        return (
            f"{where} was redirected to the login page: no CAVE token was sent. {create}.",
            "no_token",
            None,
        )
    return (
        f"{where} was redirected to the login page: the service did not accept {token}. {create}.",
        "invalid_token",
        None,
    )


def _explain(
    response: Response, where: str, token: str, create: str, no_source: bool
) -> tuple[str, str, str | None] | None:
    """The message, code and terms-of-service URL for a refusal that is not a login redirect."""
    tos_form_url = None
    status = response.status_code
    body = (
        _error_object(response.headers.get("Content-Type", ""), response.content)
        if status in (400, 401, 403)
        else None
    )
    code = body["error"] if body is not None else ""
    data = body.get("data") if body is not None else None
    data = data if isinstance(data, dict) else {}

    if status == 401 or code in ("no_token", "invalid_token"):
        if code == "no_token" or no_source:
            code = code or "no_token"
            message = f"{where} was refused: no CAVE token was sent ({status} {code}). {create}."
        else:
            code = code or "unauthorized"
            message = (
                f"{where} was refused: {token} is invalid or expired "
                f"({status} {code}). {create.replace('a token', 'a new token')}."
            )
    elif code == "bad_auth_header":
        message = (
            f"{where} was refused: its Authorization header does not start with "
            f"'Bearer ' ({status} bad_auth_header); something replaced the CAVE "
            "token's header (a .netrc entry, on a redirect?). Mount CAVEAuthAdapter "
            "on the session to keep it."
        )
    elif status != 403:
        return None
    elif code == "missing_tos":
        tos_form_url = (
            data.get("tos_form_url") if isinstance(data.get("tos_form_url"), str) else None
        )
        name = data.get("tos_name")
        terms = (
            f"the terms of service {name!r}" if isinstance(name, str) else "the terms of service"
        )
        message = (
            f"{where} was refused: the user of {token} has not accepted {terms} "
            f"(403 missing_tos). Accept them at {tos_form_url or 'the auth server'}, "
            "then try again."
        )
    elif code in ("missing_permission", "missing_role"):
        what = "permission" if code == "missing_permission" else "role"
        needed = data.get(f"required_{what}", "?")
        dataset = data.get("auth_dataset", "?")
        message = (
            f"{where} was refused: the user of {token} lacks the {what} {needed!r} "
            f"on dataset {dataset!r} (403 {code}). Ask the dataset's admins for "
            f"{needed} on {dataset}."
        )
    else:
        code = code or "forbidden"
        said = body.get("message", "") if body is not None else response.text
        said = _quote(str(said))
        message = (
            f"{where} was refused (403 {code}){': ' + said if said else ''}. "
            f"The user of {token} may lack access; ask the dataset's admins."
        )
    return message, code, tos_form_url


def raise_for_auth(response: Response) -> None:
    """Raise :class:`AuthResponseError` if ``response`` is a CAVE auth failure.

    Call it where ``raise_for_status`` would be called; other responses,
    errors included, pass through.

    Raises:
        AuthResponseError: a 401, a 403, a CAVE ``bad_auth_header`` 400, or a
            redirect to the login page.
    """
    error = describe_failure(response)
    if error is not None:
        raise error
