"""What a CAVE service answers, read back in words: raise_for_auth, raise_on_auth_error,
the 401 reload-and-retry, and whoami, against the real middle_auth_client decorators."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import requests

from cave_requests_auth import (
    AuthResponseError,
    CAVETokenAuth,
    find_token,
    raise_for_auth,
    whoami,
)
from helpers import (
    INVALID_TOKEN,
    PLAIN_TOKEN,
    TOS_TOKEN,
    VALID_TOKEN,
    Service,
    write_secret,
)

PROGRAMMATIC = {"X-Requested-With": "XMLHttpRequest"}  # what makes middle_auth answer 401, not 302

# (path, token, extra headers, status, code, words the message must hold)
FAILURES = [
    ("/api/data", None, PROGRAMMATIC, 401, "no_token", ["no CAVE token was sent"]),
    ("/api/data", INVALID_TOKEN, {}, 401, "invalid_token", ["is invalid or expired"]),
    (
        "/api/data",
        None,
        {"Authorization": "Basic dXNlcjpwYXNz"},
        400,
        "bad_auth_header",
        ["does not start with 'Bearer '", "CAVEAuthAdapter"],
    ),
    (
        "/api/minnie/view",
        TOS_TOKEN,
        {},
        403,
        "missing_tos",
        ["has not accepted the terms of service 'MICrONS Terms'", "/api/v1/tos/7/accept"],
    ),
    (
        "/api/minnie/edit",
        VALID_TOKEN,
        {},
        403,
        "missing_permission",
        ["lacks the permission 'edit' on dataset 'minnie'", "admins for edit on minnie"],
    ),
    (
        "/api/minnie/admin",
        VALID_TOKEN,
        {},
        403,
        "missing_role",
        ["lacks the role 'dataset_admin' on dataset 'minnie'"],
    ),
    (
        "/api/superadmin",
        PLAIN_TOKEN,
        {},
        403,
        "forbidden",
        ["Requires superadmin privilege", "admins"],
    ),
]
IDS = [failure[4] for failure in FAILURES]


def get(service: Service, path: str, token: str | None, headers: dict[str, str], **kw: Any) -> Any:
    auth = CAVETokenAuth(token) if token else None
    return requests.get(service.url(path), auth=auth, headers=headers, **kw)


class TestRaiseForAuth:
    @pytest.mark.parametrize(
        ("path", "token", "headers", "status", "code", "words"), FAILURES, ids=IDS
    )
    def test_each_failure(
        self,
        service: Service,
        path: str,
        token: str | None,
        headers: dict[str, str],
        status: int,
        code: str,
        words: list[str],
    ) -> None:
        response = get(service, path, token, headers)
        assert response.status_code == status
        with pytest.raises(AuthResponseError) as caught:
            raise_for_auth(response)
        error = caught.value
        assert error.code == code
        assert error.response is response
        assert isinstance(error, requests.HTTPError)
        message = str(error)
        assert message.startswith(f"GET {service.url(path)} was refused")
        for word in words:
            assert word in message
        if token is not None:
            assert token not in message
            assert "the token from the token= argument" in message

    def test_tos_url_is_exact(self, service: Service, tls_service: Service) -> None:
        response = get(service, "/api/minnie/view", TOS_TOKEN, {})
        with pytest.raises(AuthResponseError) as caught:
            raise_for_auth(response)
        expected = f"https://localhost:{tls_service.port}/sticky_auth/api/v1/tos/7/accept"
        assert caught.value.tos_form_url == expected
        assert f"Accept them at {expected}, then try again." in str(caught.value)

    def test_create_token_url_comes_from_the_realm(self, service: Service) -> None:
        response = get(service, "/api/data", INVALID_TOKEN, {})
        assert "realm=" in response.headers["WWW-Authenticate"]
        with pytest.raises(AuthResponseError) as caught:
            raise_for_auth(response)
        assert f"Create a new token at {service.create_token_url} " in str(caught.value)

    def test_without_realm_the_server_address_is_named(self, service: Service) -> None:
        auth = CAVETokenAuth(VALID_TOKEN, server_address="https://auth.minnie.example.org")
        response = requests.get(service.url("/always401"), auth=auth)
        with pytest.raises(AuthResponseError) as caught:
            raise_for_auth(response)
        assert "https://auth.minnie.example.org/auth/api/v1/create_token" in str(caught.value)

    def test_source_is_the_file_and_key(self, service: Service, secrets: Path) -> None:
        path = write_secret(secrets / "cave-secret.json", {"cave": INVALID_TOKEN})
        response = requests.get(service.url("/api/data"), auth=CAVETokenAuth(token_key="cave"))
        with pytest.raises(AuthResponseError) as caught:
            raise_for_auth(response)
        assert f"the token from key 'cave' of {path} is invalid or expired" in str(caught.value)

    def test_followed_redirect_to_the_login_page(
        self, service: Service, tls_service: Service
    ) -> None:
        response = requests.get(service.url("/api/data"), verify=tls_service.ca_file)
        assert response.status_code == 200  # the login page, which requests followed
        assert response.history[0].status_code == 302
        with pytest.raises(AuthResponseError) as caught:
            raise_for_auth(response)
        assert caught.value.code == "no_token"
        assert "redirected to the login page" in str(caught.value)
        assert service.create_token_url in str(caught.value)

    def test_login_redirect_not_followed(self, service: Service) -> None:
        response = requests.get(service.url("/api/data"), allow_redirects=False)
        with pytest.raises(AuthResponseError, match="login page") as caught:
            raise_for_auth(response)
        assert caught.value.code == "no_token"

    @pytest.mark.parametrize("path", ["/api/data", "/echo", "/redirect/302?to=/echo"])
    def test_success_passes(self, service: Service, path: str) -> None:
        raise_for_auth(requests.get(service.url(path), auth=CAVETokenAuth(VALID_TOKEN)))

    def test_other_errors_pass(self, service: Service) -> None:
        response = requests.get(service.url("/no/such/page"), auth=CAVETokenAuth(VALID_TOKEN))
        assert response.status_code == 404
        raise_for_auth(response)


class TestRaiseOnAuthError:
    @pytest.mark.parametrize(
        ("path", "token", "headers", "status", "code", "words"),
        [failure for failure in FAILURES if failure[4] != "bad_auth_header"],
        ids=[code for code in IDS if code != "bad_auth_header"],
    )
    def test_raised_from_the_request(
        self,
        service: Service,
        path: str,
        token: str | None,
        headers: dict[str, str],
        status: int,
        code: str,
        words: list[str],
    ) -> None:
        auth = CAVETokenAuth(token, required=token is not None, raise_on_auth_error=True)
        if token is None:  # the auth looked for one: the refusal says where, and the fix
            words = ["no CAVE token was found (looked in $CAVE_TOKEN", "cave-auth login"]
        with pytest.raises(AuthResponseError) as caught:
            requests.get(service.url(path), auth=auth, headers=headers)
        assert caught.value.code == code
        assert caught.value.response.status_code == status
        for word in words:
            assert word in str(caught.value)

    def test_netrc_replacing_the_header_on_a_redirect(
        self, service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        netrc = tmp_path / "netrc"
        netrc.write_text("machine 127.0.0.1 login user password secret\n")
        monkeypatch.setenv("NETRC", str(netrc))
        auth = CAVETokenAuth(VALID_TOKEN, raise_on_auth_error=True)
        with pytest.raises(AuthResponseError) as caught:
            requests.get(service.redirect(service.url("/api/data")), auth=auth)
        assert caught.value.code == "bad_auth_header"
        assert "CAVEAuthAdapter" in str(caught.value)

    def test_a_hop_elsewhere_refusing_is_not_reported(self, service: Service) -> None:
        auth = CAVETokenAuth(VALID_TOKEN, raise_on_auth_error=True)
        response = requests.get(service.redirect(service.url("/always403", "localhost")), auth=auth)
        assert response.status_code == 403  # a plain 403 from another host: returned as is

    def test_a_request_without_a_token_is_answered_401_not_sent_to_the_login_page(
        self, service: Service, tls_service: Service, seen: list[dict[str, Any]]
    ) -> None:
        auth = CAVETokenAuth(required=False, raise_on_auth_error=True)
        with pytest.raises(AuthResponseError, match="no CAVE token was found") as caught:
            requests.get(service.url("/api/data"), auth=auth, verify=tls_service.ca_file)
        assert caught.value.code == "no_token"
        assert caught.value.response.status_code == 401  # not a followed 302
        assert [hit["path"] for hit in seen] == ["/api/data"]
        assert seen[0]["headers"]["X-Requested-With"] == "XMLHttpRequest"

    def test_login_redirect_raises_before_it_is_followed(
        self, service: Service, tls_service: Service, seen: list[dict[str, Any]]
    ) -> None:
        session = requests.Session()  # a request not marked programmatic: a login redirect
        session.hooks["response"].append(lambda response, **kwargs: raise_for_auth(response))
        with pytest.raises(AuthResponseError, match="login page") as caught:
            session.get(service.url("/api/data"), verify=tls_service.ca_file)
        assert caught.value.code == "no_token"
        assert [hit["path"] for hit in seen] == ["/api/data"]

    def test_off_by_default_logs_once_per_host_and_code(
        self, service: Service, caplog: pytest.LogCaptureFixture
    ) -> None:
        auth = CAVETokenAuth(INVALID_TOKEN)
        with caplog.at_level(logging.WARNING, logger="cave_requests_auth"):
            for _ in range(3):
                assert requests.get(service.url("/api/data"), auth=auth).status_code == 401
            requests.get(service.url("/api/data", "localhost"), auth=auth)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2
        assert "is invalid or expired (401 invalid_token)" in warnings[0]
        assert all(INVALID_TOKEN not in warning for warning in warnings)

    def test_success_is_untouched(self, service: Service) -> None:
        auth = CAVETokenAuth(VALID_TOKEN, raise_on_auth_error=True)
        assert requests.get(service.url("/api/data"), auth=auth).json()["user"] == "Ada"


class TestReloadAndRetry:
    # The rest of the reload-and-retry, for every way in: test_rules.py (TestReloadAndRetry).
    def test_unchanged_source_is_not_retried(
        self, service: Service, secrets: Path, seen: list[dict[str, Any]]
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        response = requests.get(service.url("/api/data"), auth=CAVETokenAuth())
        assert response.status_code == 401
        assert len(seen) == 1


class TestWhoami:
    def test_the_tokens_user(self, service: Service, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        user = whoami(server_address=service.url(""))
        assert (user["id"], user["name"], user["email"]) == (1, "Ada", "ada@example.org")

    def test_auth_and_session(self, service: Service) -> None:
        with requests.Session() as session:
            session.auth = CAVETokenAuth(VALID_TOKEN)
            assert whoami(server_address=service.url(""), session=session)["name"] == "Ada"
        assert whoami(CAVETokenAuth(VALID_TOKEN, server_address=service.url("")))["id"] == 1

    def test_bad_token(self, service: Service) -> None:
        with pytest.raises(AuthResponseError) as caught:
            whoami(CAVETokenAuth(INVALID_TOKEN), service.url(""))
        assert caught.value.code == "invalid_token"

    def test_not_an_auth_server(self, service: Service) -> None:
        with pytest.raises(AuthResponseError, match="did not answer with a CAVE user"):
            whoami(CAVETokenAuth(VALID_TOKEN), service.url("/echo?"))

    def test_source_for_messages(self, secrets: Path) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        assert str(find_token()) == f"key 'token' of {path}"
