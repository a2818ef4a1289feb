"""requests: ``CAVETokenAuth`` for ``auth=`` and ``session.auth``.

Translation only; every decision is :mod:`cave_requests_auth.core`'s. requests
applies an auth object once, when a request is prepared, before it merges the
``proxies=`` of the call and the session: the auth sees the environment's
proxies (``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, as requests applies them)
and nothing else. Redirect hops are made by requests itself (it strips
``Authorization`` on a change of host, and swaps in ``~/.netrc`` credentials):
:class:`.requests_adapter.CAVEAuthAdapter` sees both, and each hop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from requests.auth import AuthBase

from ..core import Credentials
from ..exchange import SENT_ATTRIBUTE, answers_of, attach, body_of, error_for, rewindable
from ..refusals import report
from ..wire import environment_proxy

if TYPE_CHECKING:
    from requests import PreparedRequest, Response

    from ..wire import Attachment

__all__ = ["CAVETokenAuth"]

_RETRIED_ATTRIBUTE = "_cave_retried"


class CAVETokenAuth(Credentials, AuthBase):
    """Attach a CAVE token to requests: ``requests.get(url, auth=CAVETokenAuth())``.

    Args:
        token: the token itself; otherwise it is looked up for each request's
            host (``CAVE_TOKEN``, ``CAVE_TOKEN_FILE``, then the secret files; see
            :func:`find_token`).
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
            before sending (default), or send the request without one, marked
            ``X-Requested-With: XMLHttpRequest`` so that a CAVE service answers
            ``401 no_token`` rather than redirect to its login page.
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
            attach(request, attachment)
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
                body_of(response),
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
