"""One exchange as the bindings note it, read back from any library's response.

What every binding shares, below them all (no HTTP library imported here):

- the note each leaves on what it sends, where its library keeps it: on a
  requests ``PreparedRequest`` (:data:`SENT_ATTRIBUTE`, set by :func:`attach`),
  in an httpx request's ``extensions`` (:data:`LINK_EXTENSION`, the chain), on a
  urllib3 response (:data:`EXCHANGE_ATTRIBUTE`, an :class:`Exchange`);
- :func:`answers_of`: a requests, httpx or urllib3 response, its redirect hops
  first, as the :class:`.refusals.Answer` values that :mod:`.refusals` explains;
- :func:`raise_for_auth`, which takes any of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NamedTuple
from urllib.parse import urljoin

from requests.exceptions import UnrewindableBodyError
from requests.utils import rewind_body

from .errors import AuthResponseError
from .refusals import Answer, Refusal, describe, report
from .urls import origin_key, same_origin
from .wire import MAX_ERROR_BODY, PROGRAMMATIC, Attachment, bearer_of, merge_cookie

if TYPE_CHECKING:
    from collections.abc import MutableMapping, Sequence

    from requests import PreparedRequest

    from .core import Credentials
    from .wire import Chain

__all__ = [
    "EXCHANGE_ATTRIBUTE", "LINK_EXTENSION", "SENT_ATTRIBUTE", "Exchange", "add_cookie",
    "answers_of", "attach", "error_for", "hops_answers", "leaves", "raise_for_auth",
    "redirects_of", "report_response", "rewindable", "wants_body",
]  # fmt: skip

SENT_ATTRIBUTE = "_cave_sent"
"""The :class:`.wire.Attachment` on a requests ``PreparedRequest`` it was attached to
(``PreparedRequest.copy()`` does not carry it: the hops requests makes never have it)."""
LINK_EXTENSION = "cave_requests_auth.chain"
"""The key of the chain in an httpx request's ``extensions`` (transports ignore it)."""
EXCHANGE_ATTRIBUTE = "_cave_exchange"
"""The :class:`Exchange` on a response a CAVE pool manager returns."""


class Exchange(NamedTuple):
    """Noted on a urllib3 response: what its hops cannot show (urllib3 keeps no request)."""

    method: str
    url: str
    final_url: str
    sent: Attachment | None
    """What the last hop carried."""
    replaced: tuple[str, ...]
    """Tokens a retry replaced: masked too."""


def attach(request: PreparedRequest, attachment: Attachment) -> None:
    """Put ``attachment``'s headers on a requests ``request``, and note what was sent."""
    headers = request.headers
    if attachment.header is None:
        headers[PROGRAMMATIC[0]] = PROGRAMMATIC[1]
    else:
        headers["Authorization"] = attachment.header
        if attachment.cookie is not None:
            add_cookie(headers, attachment.cookie)
    setattr(request, SENT_ATTRIBUTE, attachment)


def add_cookie(headers: MutableMapping[str, str], cookie: str) -> None:
    """Merge ``cookie`` into the ``Cookie`` header, set after ``Authorization``. requests'
    ``CaseInsensitiveDict`` has no cheap public test of a name (a miss costs a ``KeyError``);
    where ``Authorization`` is the only header, there is no ``Cookie``."""
    if len(headers) == 1:
        headers["Cookie"] = cookie
        return
    try:
        headers["Cookie"] = merge_cookie(headers["Cookie"], cookie)
    except KeyError:
        headers["Cookie"] = cookie


def leaves(request: PreparedRequest, response: Any) -> bool:
    """Whether ``response`` redirects ``request`` to another origin."""
    location = response.headers.get("Location") if response.is_redirect else None
    here = origin_key(str(request.url))
    return bool(location) and not same_origin(origin_key(urljoin(here, str(location))), here)


def rewindable(request: PreparedRequest) -> bool:
    """Whether the body can be sent again; a seekable file is rewound to where it began."""
    if request.body is None or isinstance(request.body, (bytes, str)):
        return True
    try:
        rewind_body(request)
    except UnrewindableBodyError:
        return False  # a generator or other one-shot body
    return True


def wants_body(status: int, headers: Any) -> bool:
    """Whether an answer is a refusal (400, 401, 403) whose body, bounded, says what it is."""
    length = headers.get("Content-Length") or ""
    return status in (400, 401, 403) and not (length.isdigit() and int(length) > MAX_ERROR_BODY)


def body_of(response: Any) -> bytes:
    """The body of a refusal already read, bounded (:func:`wants_body`); else nothing."""
    if not wants_body(getattr(response, "status_code", None) or response.status, response.headers):
        return b""
    try:
        return bytes(response.content[:MAX_ERROR_BODY])
    except RuntimeError:  # httpx: a streamed response not read
        return b""


def hops_answers(
    hops: Sequence[Any],
    key: str,
    sent_of: Callable[[int, str | None], Attachment | None],
    replaced: tuple[str, ...] = (),
    body: bytes | None = None,
) -> list[Answer]:
    """The answers of requests' or httpx's hops, the chain's first request to ``key``.

    ``sent_of(index, authorization)`` says what this package attached to a hop;
    ``body``: the last hop's, where the caller read it.
    """
    answers = []
    for index, hop in enumerate(hops):
        request = hop.request
        url = str(request.url if request is not None else hop.url)
        authorization = request.headers.get("Authorization") if request is not None else None
        sent = sent_of(index, authorization)
        if sent is not None and sent.header is not None:
            authorization = sent.header
        last = body if body is not None and index == len(hops) - 1 else body_of(hop)
        answers.append(
            Answer.of(
                str(request.method) if request is not None else "GET",
                url,
                hop.status_code,
                hop.headers,
                last,
                bearer=bearer_of(authorization),
                sent=sent,
                elsewhere=not same_origin(origin_key(url), key),
                replaced=replaced,
            )
        )
    return answers


def _of_requests(
    response: Any, credentials: Credentials | None, body: bytes | None = None
) -> list[Answer]:
    hops = [*response.history, response]
    # A 401 answered before a retry notes what it refused: its request, attached
    # again in place, now carries the new token.
    known = [
        getattr(hop, SENT_ATTRIBUTE, None) or getattr(hop.request, SENT_ATTRIBUTE, None)
        for hop in hops
    ]

    def sent_of(index: int, authorization: str | None) -> Attachment | None:
        if known[index] is not None or authorization is None:
            return known[index]
        found = next((a for a in known if a is not None and a.header == authorization), None)
        if found is None and credentials is not None:
            found = credentials.sent_with(str(hops[index].url), authorization)
        return found

    return hops_answers(hops, origin_key(str(hops[0].url)), sent_of, body=body)


def _of_httpx(response: Any) -> list[Answer]:
    chain: Chain | None = getattr(response.request.extensions.get(LINK_EXTENSION), "chain", None)
    key = chain.key if chain is not None else origin_key(str(response.request.url))
    sent = chain.attachment if chain is not None else None

    def sent_of(index: int, authorization: str | None) -> Attachment | None:
        return sent if sent is not None and authorization == sent.header else None

    replaced = chain.replaced if chain is not None else ()
    return hops_answers([*response.history, response], key, sent_of, replaced)


def redirects_of(retries: Any) -> list[Any]:
    """The redirects a urllib3 ``Retry`` noted (``RequestHistory`` values), in order."""
    return [entry for entry in getattr(retries, "history", None) or () if entry.redirect_location]


def _of_urllib3(response: Any) -> list[Answer]:
    exchange: Exchange | None = getattr(response, EXCHANGE_ATTRIBUTE, None)
    history = redirects_of(getattr(response, "retries", None))
    if exchange is not None:
        method, first, final = exchange.method, exchange.url, exchange.final_url
    else:
        method = history[0].method if history else "GET"
        final = str(getattr(response, "url", None) or response.geturl() or "")
        first = str(history[0].url) if history else final
        if history:
            final = urljoin(str(history[-1].url), str(history[-1].redirect_location))
    key = origin_key(first)
    answers = [
        Answer(
            str(hop.method or method),
            str(hop.url),
            int(hop.status or 0),
            location=str(hop.redirect_location),
            elsewhere=not same_origin(origin_key(str(hop.url)), key),
        )
        for hop in history
    ]
    sent = exchange.sent if exchange is not None else None
    status = int(response.status)
    body = (response.data or b"")[:MAX_ERROR_BODY] if status in (400, 401, 403) else b""
    last = Answer.of(method, final, status, response.headers, body, sent=sent)
    return [
        *answers,
        last._replace(
            location=response.headers.get("Location"),
            bearer=None if sent is None or sent.source is None else sent.source.token,
            bearer_known=exchange is not None,
            replaced=exchange.replaced if exchange is not None else (),
            elsewhere=bool(history) and not same_origin(origin_key(final), key),
        ),
    ]


def answers_of(
    response: Any, credentials: Credentials | None = None, body: bytes | None = None
) -> list[Answer]:
    """A requests, httpx or urllib3 response (its redirect hops first) as :mod:`.refusals` reads it.

    Raises:
        TypeError: an aiohttp response (its body is read with ``await``), or none of these.
    """
    if hasattr(response, "request_info"):
        raise TypeError(
            "raise_for_auth cannot read an aiohttp response (its body is read with await); "
            "use CAVEAuthMiddleware(raise_on_auth_error=True) instead."
        )
    request = getattr(response, "request", None)
    if hasattr(request, "extensions"):
        return _of_httpx(response)
    if hasattr(response, "status_code") and hasattr(response, "history"):
        return _of_requests(response, credentials, body)  # body: the last hop's, read already
    if hasattr(response, "status") and hasattr(response, "headers"):
        return _of_urllib3(response)
    raise TypeError(
        f"raise_for_auth takes a requests or urllib3 response, not {type(response).__name__}."
    )


def report_response(credentials: Credentials, response: Any, elsewhere: bool | None = None) -> None:
    """Report a refusal in a requests ``response`` as ``credentials`` ask (raise or warn).

    ``elsewhere``, where given: only the last hop is to be read (a hook that runs
    on each hop requests made sees no history), and whether it left the origin.
    """
    answers = answers_of(response, credentials)
    if elsewhere is not None:
        answers = [answers[-1]._replace(elsewhere=elsewhere)]
    report(credentials, answers, error_for(response))


def error_for(
    response: Any, kind: type[AuthResponseError] = AuthResponseError
) -> Callable[[Refusal], AuthResponseError]:
    """A maker of the ``kind`` of :class:`AuthResponseError` for a refusal in ``response``."""

    def make(refusal: Refusal) -> AuthResponseError:
        return kind(
            refusal.message, code=refusal.code, response=response, tos_form_url=refusal.tos_form_url
        )

    return make


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
    refusal = describe(answers_of(response))
    if refusal is not None:
        raise error_for(response)(refusal)
