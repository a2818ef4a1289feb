"""``cave_requests_auth.neuroglancer`` in a real ``neuroglancer.Viewer``, no mocks.

The viewer's page asks Python for the credentials of a ``middleauth+`` source by
POSTing ``{"key": "middleauthapp", "parameters": <origin>, "invalid": <generation>}``
(``invalid`` only after a refusal) to ``/credentials/<viewer token>``
(neuroglancer's ``src/python_integration/credentials_provider.ts``), and sends
``Authorization: <tokenType> <accessToken>`` where ``accessToken`` is not empty
(``src/credentials_provider/oauth2.ts``). :class:`Page` does both, here against the
viewer's real route and the loopback ``middle_auth_client`` service.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from cave_requests_auth import CAVETokenAuth
from helpers import (
    INVALID_TOKEN,
    OTHER_TOKEN,
    VALID_TOKEN,
    Service,
    run_cli,
    write_secret,
)

neuroglancer = pytest.importorskip("neuroglancer")

from cave_requests_auth.neuroglancer import (  # noqa: E402
    KEY,
    MiddleauthProviders,
    register,
)

TOKENS = (VALID_TOKEN, OTHER_TOKEN, INVALID_TOKEN)
HOSTS = ["127.0.0.1", "localhost", "minnie.example.org"]  # the origins the tests' pages ask for


class Page:
    """What the page of a viewer does with credentials: ask the viewer, then fetch."""

    def __init__(self, viewer: Any) -> None:
        viewer_url = viewer.get_viewer_url()
        self.url = urljoin(viewer_url, f"/credentials/{viewer.token}")
        self.origin = origin_of(viewer_url)

    def ask(self, origin: object, invalid: int | None = None) -> requests.Response:
        message: dict[str, Any] = {"key": KEY, "parameters": origin}
        if invalid is not None:
            message["invalid"] = invalid
        return requests.post(self.url, data=json.dumps(message), timeout=30)

    def fetch(self, url: str, credentials: dict[str, str], verify: Any = True) -> requests.Response:
        """A cross-origin ``fetch`` of the page (so with ``Origin``, and no cookie)."""
        headers = {"Origin": self.origin}
        if credentials["accessToken"]:
            headers["Authorization"] = f"{credentials['tokenType']} {credentials['accessToken']}"
        return requests.get(url, headers=headers, verify=verify, allow_redirects=False, timeout=30)


@pytest.fixture(scope="module")
def viewer() -> Iterator[Any]:
    """One viewer for the module, its server on loopback (it starts in milliseconds)."""
    neuroglancer.set_server_bind_address("127.0.0.1")
    started = neuroglancer.Viewer()
    yield started
    neuroglancer.stop()


@pytest.fixture
def page(viewer: Any) -> Page:
    return Page(viewer)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def assert_no_token(*texts: str) -> None:
    """No 8 consecutive characters of a test token in any of ``texts``."""
    for token in TOKENS:
        pieces = {token[i : i + 8] for i in range(len(token) - 7)}
        assert not [text for text in texts if any(piece in text for piece in pieces)]


class TestAllowedOrigin:
    @pytest.mark.parametrize("scheme", ["http-loopback", "https"])
    def test_the_token_it_gives_is_accepted_by_the_service(
        self,
        scheme: str,
        page: Page,
        service: Service,
        tls_service: Service,
        secrets: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level("DEBUG")
        running = service if scheme == "http-loopback" else tls_service
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        registered = register(hosts=HOSTS)
        origin = origin_of(running.url())

        answer = page.ask(origin)

        assert answer.status_code == 200
        given = answer.json()
        assert set(given) == {"credentials", "generation"}
        assert given["credentials"] == {"tokenType": "Bearer", "accessToken": VALID_TOKEN}
        data = page.fetch(running.url("/api/data"), given["credentials"], running.ca_file or True)
        assert (data.status_code, data.json()["user"]) == (200, "Ada")
        assert_no_token(repr(registered), repr(registered(origin)), caplog.text)

    def test_the_page_asking_again_gets_the_same_generation(
        self, page: Page, service: Service, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CAVE_TOKEN", VALID_TOKEN)
        register(hosts=HOSTS)
        first = page.ask(origin_of(service.url())).json()

        monkeypatch.setenv("CAVE_TOKEN", OTHER_TOKEN)  # not looked at: nothing was refused
        again = page.ask(origin_of(service.url())).json()

        assert again == first


class TestRefused:
    def test_plain_http_to_a_remote_host_gets_no_token(
        self,
        page: Page,
        monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str],
        resolved: list[str],
    ) -> None:
        monkeypatch.setenv("CAVE_TOKEN", VALID_TOKEN)
        register(hosts=HOSTS)

        answer = page.ask("http://minnie.example.org")

        assert answer.status_code == 401  # neuroglancer's bare 401 page
        out, err = capfd.readouterr()
        assert "InsecureTransportError: Refusing to send a CAVE token to http://minnie" in err
        assert_no_token(answer.text, out, err)
        assert resolved == []

    def test_a_host_outside_hosts_gets_none(
        self, page: Page, service: Service, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CAVE_TOKEN", VALID_TOKEN)
        register(hosts=["127.0.0.1"])

        listed = page.ask(origin_of(service.url())).json()["credentials"]
        other = page.ask(origin_of(service.url(host="localhost"))).json()["credentials"]

        assert listed["accessToken"] == VALID_TOKEN
        assert other == {"tokenType": "", "accessToken": ""}  # the page sends no header
        data = page.fetch(service.url("/api/data", "localhost"), other)
        assert (data.status_code, data.json()["error"]) == (401, "no_token")

    def test_no_token_found_is_a_clear_error_and_no_secret(
        self, page: Page, service: Service, secrets: Path, capfd: pytest.CaptureFixture[str]
    ) -> None:
        # A token for another host only: none for the service.
        write_secret(secrets / "minnie.example.org-cave-secret.json", {"token": VALID_TOKEN})
        register(hosts=HOSTS)

        answer = page.ask(origin_of(service.url()))

        assert answer.status_code == 401
        assert "<body>401: Unauthorized</body>" in answer.text
        out, err = capfd.readouterr()
        assert "TokenNotFoundError: No CAVE token" in err
        assert "cave-auth login" in err
        assert_no_token(answer.text, out, err)

    def test_required_false_without_a_token_gives_anonymous_credentials(
        self, page: Page, service: Service
    ) -> None:
        register(hosts=HOSTS, required=False)

        answer = page.ask(origin_of(service.url()))

        assert answer.status_code == 200
        assert answer.json()["credentials"] == {"tokenType": "", "accessToken": ""}

    def test_an_origin_that_is_not_a_string_is_a_bad_request(self, page: Page) -> None:
        register(hosts=HOSTS, token=VALID_TOKEN)

        answer = page.ask(None)

        assert answer.status_code == 400
        assert_no_token(answer.text)


class TestReadAgain:
    def test_a_token_saved_after_a_refusal_is_served_on_the_next_ask(
        self,
        page: Page,
        service: Service,
        secrets: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        register(hosts=HOSTS)
        origin = origin_of(service.url())
        refused = page.ask(origin).json()
        answer = page.fetch(service.url("/api/data"), refused["credentials"])
        assert (answer.status_code, answer.json()["error"]) == (401, "invalid_token")

        code, _, _ = run_cli(capsys, "save", "-", stdin=VALID_TOKEN + "\n")
        assert code == 0
        cached = page.ask(origin).json()  # the page has not said it was refused
        renewed = page.ask(origin, invalid=refused["generation"]).json()

        assert cached == refused
        assert renewed["credentials"]["accessToken"] == VALID_TOKEN
        assert renewed["generation"] > refused["generation"]
        data = page.fetch(service.url("/api/data"), renewed["credentials"])
        assert (data.status_code, data.json()["user"]) == (200, "Ada")

    def test_after_no_token_a_later_login_is_seen(
        self,
        page: Page,
        service: Service,
        capfd: pytest.CaptureFixture[str],
    ) -> None:
        register(hosts=HOSTS)
        assert page.ask(origin_of(service.url())).status_code == 401

        run_cli(capfd, "save", "-", stdin=VALID_TOKEN + "\n")
        again = page.ask(origin_of(service.url()))

        assert again.status_code == 200
        assert again.json()["credentials"]["accessToken"] == VALID_TOKEN


class TestRegister:
    def test_on_a_given_manager(self, service: Service) -> None:
        from neuroglancer.credentials_provider import CredentialsManager

        manager = CredentialsManager()
        registered = register(CAVETokenAuth(token=VALID_TOKEN, hosts=HOSTS), manager=manager)

        provider = manager.get(KEY, origin_of(service.url()))
        given = provider.get().result(timeout=10)

        assert isinstance(registered, MiddleauthProviders)
        assert provider is registered(origin_of(service.url()))
        assert given["credentials"] == {"tokenType": "Bearer", "accessToken": VALID_TOKEN}

    @pytest.mark.parametrize("auth", [None, CAVETokenAuth(token=VALID_TOKEN)])
    def test_it_needs_the_hosts_a_page_may_get_the_token_for(self, auth: Any) -> None:
        """A viewer's state (a shared link) can name any origin: which get the token is
        the user's choice, not the state's."""
        with pytest.raises(TypeError, match="hosts="):
            register(auth)

    def test_auth_and_keywords_are_not_both_taken(self) -> None:
        with pytest.raises(TypeError, match="not both"):
            register(CAVETokenAuth(), hosts=["minnie.example.org"])


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_neuroglancer_has_no_middleauth_provider_of_its_own() -> None:
    """Why the module exists (google/neuroglancer#392): its default manager has none."""
    done = run_python(
        "from neuroglancer.default_credentials_manager import default_credentials_manager as m\n"
        f"m.get({KEY!r}, 'https://minnie.example.org')\n"
    )
    assert done.returncode != 0
    assert "KeyError: 'middleauthapp'" in done.stderr


def test_without_neuroglancer_the_import_error_says_what_to_install() -> None:
    done = run_python(
        "import sys\nsys.modules['neuroglancer'] = None\nimport cave_requests_auth.neuroglancer\n"
    )
    assert done.returncode != 0
    assert "pip install 'cave-requests-auth[neuroglancer]'" in done.stderr
