"""What a CAVE service's answer means: was the token missing, invalid, or not allowed?

The services check tokens with ``middle_auth_client``, which answers:

- ``401 {"error": "no_token"}`` or ``401 {"error": "invalid_token"}``, with
  ``WWW-Authenticate: Bearer realm="https://<auth server>/…/api/v1/authorize"``;
- ``400 {"error": "bad_auth_header"}`` for an ``Authorization`` that is not Bearer;
- ``403 {"error": "missing_tos" | "missing_permission" | "missing_role", "data": …}``,
  or a plain-text 403 for group and admin checks;
- a ``302`` to ``…/api/v1/authorize`` (a login page) for a request that carries
  no ``Authorization`` header.

A binding describes what happened as :class:`Answer` values, one per hop;
:func:`describe` says what it means in words (which token source, what to
do), and :func:`report` raises or warns once, as the credentials ask. A hop
to another origin that carried no token (a pre-signed URL, a foreign host) is
never blamed on the CAVE token, whatever JSON it sends.
Server text is quoted through :func:`.text.quote`: printable, every token masked.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Callable, NamedTuple
from urllib.parse import urljoin

from .text import quote, redact
from .urls import new_token_url, parse_origin
from .wire import Attachment, error_object

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from .core import Credentials

__all__ = ["Answer", "Refusal", "describe", "report", "where"]

logger = logging.getLogger("cave_requests_auth")

_AUTHORIZE_PATH = "/api/v1/authorize"
_REALM = re.compile(r'realm="([^"]*)"', re.IGNORECASE)
_NOT_CAVE = ("forbidden", "unauthorized")  # a 401/403 without CAVE's JSON


class Answer(NamedTuple):
    """One hop of an exchange: what was asked, with which token, and what came back."""

    method: str
    url: str
    status: int
    content_type: str = ""
    www_authenticate: str = ""
    location: str | None = None
    body: bytes = b""
    """At most :data:`.core.MAX_ERROR_BODY` bytes, read for 400/401/403 answers only."""
    bearer: str | None = None
    """The bearer token the request carried, whoever put it there."""
    sent: Attachment | None = None
    """What these credentials attached to it, where they did."""
    elsewhere: bool = False
    """Whether the request was a redirect hop to another origin than the first request's."""
    bearer_known: bool = True
    """Whether ``bearer`` is known (a urllib3 response does not show what its request carried)."""
    replaced: tuple[str, ...] = ()
    """Tokens the request carried before a retry replaced them: masked too."""

    @classmethod
    def of(
        cls, method: str, url: str, status: int, headers: Mapping[str, str], body: bytes = b"",
        **known: Any,
    ) -> Answer:  # fmt: skip
        """An answer from any library's ``headers``; ``known``: the fields after ``body``."""
        content_type, realm = headers.get("Content-Type", ""), headers.get("WWW-Authenticate", "")
        location = headers.get("Location") if 300 <= status < 400 else None
        return cls(method, url, status, content_type, realm, location, body, **known)


class Refusal(NamedTuple):
    """What an answer means: one message, CAVE's code, and the terms' URL where given."""

    message: str
    code: str
    tos_form_url: str | None = None


def where(method: str, url: str) -> str:
    """``GET https://host/path``: never the query, which may hold anything."""
    origin = parse_origin(url)
    if origin is None:
        path = url.split("?", 1)[0].split("#", 1)[0]
        return f"{method} {quote(path, limit=120)}" if path.startswith("/") else "The request"
    path = url.split("://", 1)[-1].partition("/")[2].split("?", 1)[0].split("#", 1)[0]
    return f"{method} {origin}/{quote(path, limit=120)}"


def _login_redirect(answers: Sequence[Answer]) -> tuple[Answer, str] | None:
    """The hop that redirected to the login page, and the auth server's origin."""
    for answer in answers:
        if answer.location and 300 <= answer.status < 400:
            target = urljoin(answer.url, answer.location).split("?", 1)[0]
            origin = parse_origin(target)
            if origin is not None and target.rstrip("/").endswith(_AUTHORIZE_PATH):
                return answer, str(origin)
    return None


def _auth_server(answer: Answer, server_address: str | None) -> str | None:
    """The auth server named by the realm, else the one the credentials were given."""
    match = _REALM.search(answer.www_authenticate)
    if match:
        origin = parse_origin(match.group(1))
        if origin is not None and origin.scheme in ("http", "https"):
            return str(origin)
    return server_address


def _missing(answer: Answer) -> str:
    """Where the lookup looked, for a request sent without a token it did not find."""
    if answer.sent is None or answer.sent.source is not None or not answer.sent.searched:
        return "no CAVE token was sent"
    return f"no CAVE token was found (looked in {', '.join(answer.sent.searched)})"


def _token_words(answer: Answer) -> str:
    if answer.sent is not None and answer.sent.source is not None:
        return f"the token from {answer.sent.source}"
    if answer.bearer is not None:
        return "the Bearer token the request carried (not attached by cave-requests-auth)"
    if not answer.bearer_known:
        return "the token the request carried"
    return "no token"


def describe(
    answers: Sequence[Answer], server_address: str | None = None, secrets: Iterable[str] = ()
) -> Refusal | None:
    """The :class:`Refusal` in an exchange (its hops in order), or ``None``.

    A refusal is a 401, a CAVE ``bad_auth_header`` 400, a 403, or a redirect to
    the login page (followed or not), from a hop the CAVE token is to blame for:
    one to the first request's origin, or one that carried a bearer token.
    Every token sent along the exchange, and ``secrets``, is masked.
    """
    login = _login_redirect(answers)
    failing = login[0] if login is not None else answers[-1]
    if server_address is None:  # that of the credentials that attached a token
        server_address = next((a.sent.server for a in answers if a.sent), None)
    if failing.elsewhere and failing.bearer is None:
        return None  # a hop elsewhere (say, a pre-signed URL) refused: not ours
    server = login[1] if login is not None else _auth_server(failing, server_address)
    secrets = [*secrets, *(answer.bearer for answer in answers if answer.bearer is not None)]
    secrets += [token for answer in answers for token in answer.replaced]
    secrets += [a.sent.source.token for a in answers if a.sent and a.sent.source]
    found = _explain(failing, server, login is not None, secrets)
    if found is None:
        return None
    message, code, tos_form_url = found
    return Refusal(
        redact(message, secrets),
        redact(code, secrets),
        tos_form_url and redact(tos_form_url, secrets),
    )


def _explain(
    answer: Answer, server: str | None, login: bool, secrets: list[str]
) -> tuple[str, str, str | None] | None:
    """The message, code and terms-of-service URL for the failing hop."""
    at = where(answer.method, answer.url)
    token = _token_words(answer)
    create = f"Create a token at {new_token_url(server)} and save it with `cave-auth login`"
    no_token = answer.bearer is None and answer.bearer_known
    if login:
        if no_token:
            return (f"{at} was redirected to the login page: {_missing(answer)}. {create}.",
                    "no_token", None)  # fmt: skip
        return (
            f"{at} was redirected to the login page: the service did not accept {token}. {create}.",
            "invalid_token",
            None,
        )
    status = answer.status
    body = error_object(answer.content_type, answer.body) if status in (400, 401, 403) else None
    code = quote(body["error"], secrets, 60) if body is not None else ""
    data = body.get("data") if body is not None else None
    data = data if isinstance(data, dict) else {}

    if status == 401 or code in ("no_token", "invalid_token"):
        if code == "no_token" or no_token:
            code = code or "no_token"
            return (
                f"{at} was refused: {_missing(answer)} ({status} {code}). {create}.",
                code,
                None,
            )
        code = code or "unauthorized"
        message = (
            f"{at} was refused: {token} is invalid or expired ({status} {code}). "
            f"{create.replace('a token', 'a new token')}."
        )
        return message, code, None
    if code == "bad_auth_header":
        return (
            f"{at} was refused: its Authorization header does not start with 'Bearer ' "
            f"({status} bad_auth_header); something replaced the CAVE token's header (a "
            ".netrc entry, on a redirect?). Mount CAVEAuthAdapter on the session to keep it.",
            code,
            None,
        )
    if status != 403:
        return None
    if code == "missing_tos":
        url = data.get("tos_form_url")
        tos_form_url = quote(url, secrets, 500) if isinstance(url, str) else None
        name = data.get("tos_name")
        terms = (
            f"the terms of service '{quote(name, secrets, 80)}'"
            if isinstance(name, str)
            else ("the terms of service")
        )
        return (
            f"{at} was refused: the user of {token} has not accepted {terms} (403 missing_tos). "
            f"Accept them at {tos_form_url or 'the auth server'}, then try again.",
            code,
            tos_form_url,
        )
    if code in ("missing_permission", "missing_role"):
        what = "permission" if code == "missing_permission" else "role"
        needed = quote(data.get(f"required_{what}", "?"), secrets, 80)
        dataset = quote(data.get("auth_dataset", "?"), secrets, 80)
        return (
            f"{at} was refused: the user of {token} lacks the {what} '{needed}' on dataset "
            f"'{dataset}' (403 {code}). Ask the dataset's admins for {needed} on {dataset}.",
            code,
            None,
        )
    said = body.get("message", "") if body is not None else answer.body.decode("utf-8", "replace")
    said = quote(said, secrets)
    whose = (
        "No CAVE token was sent; the service may need one"
        if no_token
        else f"The user of {token} may lack access; ask the dataset's admins"
    )
    return (
        f"{at} was refused (403 {code or 'forbidden'}){': ' + said if said else ''}. {whose}.",
        code or "forbidden",
        None,
    )


def report(
    credentials: Credentials,
    answers: Sequence[Answer],
    error: Callable[[Refusal], Exception],
) -> None:
    """Raise ``error(refusal)`` or warn once per origin and code, as ``credentials`` ask.

    A 401/403 without CAVE's JSON from a request that got no token from these
    credentials is not theirs to report.
    """
    refusal = describe(answers, credentials.server_address, credentials.known_tokens())
    if refusal is None:
        return
    if refusal.code in _NOT_CAVE and all(answer.sent is None for answer in answers):
        return
    if credentials.raise_on_auth_error:
        raise error(refusal)
    if credentials.first_report(answers[-1].url, refusal.code):
        logger.warning("%s", refusal.message)
