"""The documentation site (``docs/``): its httpx recipe runs, its pages cover what they
must, and it builds with warnings as errors.

- ``docs/recipes/httpx_client.py`` runs as printed against the loopback service
  (the other recipes are run by their own tests);
- every name of ``cave_requests_auth.__all__`` is in the API reference, every
  ``cave-auth`` command has its section, every recipe script its page (which
  includes the script rather than a copy), every page a line in the README;
- ``python -m sphinx -W --keep-going -b html docs …`` succeeds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cave_requests_auth
from cave_requests_auth.cli import COMMANDS
from helpers import INVALID_TOKEN, VALID_TOKEN, Service, write_secret

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RECIPES = DOCS / "recipes"
HTTPX_RECIPE = RECIPES / "httpx_client.py"


def _masked(text: str, *tokens: str) -> str:
    """``text`` fit for an assertion message: no token in it."""
    for token in tokens:
        text = text.replace(token, "<token>")
    return text


def _leaks(text: str, token: str) -> bool:
    """Whether any 8 consecutive characters of ``token`` appear in ``text``."""
    return any(token[start : start + 8] in text for start in range(len(token) - 7))


def _httpx_binding_missing() -> str | None:
    try:
        import cave_requests_auth.httpx  # noqa: F401
    except ImportError as error:
        return str(error)
    return None


def _run_recipe(path: Path, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "CAVE_RECIPE_URL": url},
        cwd=cwd,
        timeout=60,
        check=False,
    )


class TestHttpxRecipe:
    @pytest.fixture(autouse=True)
    def _binding(self) -> None:
        missing = _httpx_binding_missing()
        if missing is not None:
            pytest.skip(f"cave_requests_auth.httpx does not import yet: {missing}")

    def test_client_and_async_client_send_the_token(
        self, service: Service, secrets: Path, tmp_path: Path
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        service.seen.clear()
        done = _run_recipe(HTTPX_RECIPE, service.url("/api/data"), tmp_path)
        assert done.returncode == 0, _masked(done.stderr[-2000:], VALID_TOKEN)
        hits = [hit for hit in service.seen if hit["path"] == "/api/data"]
        assert len(hits) == 2, "one request from the Client, one from the AsyncClient"
        carried = [hit["headers"].get("Authorization") == f"Bearer {VALID_TOKEN}" for hit in hits]
        assert carried == [True, True]
        assert all("middle_auth_token" not in hit["cookies"] for hit in hits)
        assert done.stdout.count("'Ada'") == 2  # the service knew the token both times
        assert not _leaks(done.stdout + done.stderr, VALID_TOKEN)

    def test_a_refused_token_is_explained_without_the_token(
        self, service: Service, secrets: Path, tmp_path: Path
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        done = _run_recipe(HTTPX_RECIPE, service.url("/api/data"), tmp_path)
        assert done.returncode != 0
        assert "AuthResponseError" in done.stderr
        assert "invalid or expired" in done.stderr
        assert "cave-secret.json" in done.stderr  # where the token came from
        assert not _leaks(done.stdout + done.stderr, INVALID_TOKEN)


def test_the_api_reference_documents_every_public_name() -> None:
    text = (DOCS / "api.rst").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\.\. auto(?:class|function|data|exception):: (\w+)", text, re.M))
    assert set(cave_requests_auth.__all__) <= documented, "missing from docs/api.rst"
    for module in ("httpx", "aiohttp", "neuroglancer"):
        assert f".. optional-automodule:: cave_requests_auth.{module}\n" in text


def test_every_cave_auth_command_has_its_section_and_usage() -> None:
    text = (DOCS / "cli.rst").read_text(encoding="utf-8")
    assert ".. cave-auth-help::\n" in text  # the main help
    for command in COMMANDS:
        assert f"``cave-auth {command.NAME}``\n" in text
        assert f".. cave-auth-help:: {command.NAME}\n" in text


def test_every_recipe_script_has_a_page_that_includes_it() -> None:
    scripts = sorted(path.stem for path in RECIPES.glob("*.py"))
    assert "httpx_client" in scripts
    for name in scripts:
        page = RECIPES / f"{name}.rst"
        assert page.is_file(), f"docs/recipes/{name}.py has no page"
        assert f".. literalinclude:: /recipes/{name}.py\n" in page.read_text(encoding="utf-8")


def test_code_in_the_pages_comes_from_tested_scripts() -> None:
    """No example is written into a page: a page includes a script the tests run."""
    for page in [*DOCS.glob("*.rst"), *RECIPES.glob("*.rst")]:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"^\s*\.\. (code-block|code|sourcecode):: python", text, re.M), page


def test_the_readme_points_to_every_page() -> None:
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    toctree = index.split(".. toctree::", 1)[1]
    pages = re.findall(r"^   (\w+)$", toctree, re.M)
    assert "security" in pages
    readme = (ROOT / "README.rst").read_text(encoding="utf-8")
    more = readme.split(".. read-more", 1)[1]
    for page in pages:
        name = "CHANGELOG.rst" if page == "changelog" else f"docs/{page}.rst"
        assert f"``{name}``" in more, f"README's Read more does not name {name}"
        if page != "changelog":
            assert (DOCS / f"{page}.rst").is_file()


def test_the_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    pytest.importorskip("sphinx", reason="the docs extra (sphinx) is not installed")
    html, doctrees = tmp_path / "html", tmp_path / "doctrees"
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    done = subprocess.run(
        [*command, "-d", str(doctrees), str(DOCS), str(html)],
        capture_output=True,
        text=True,
        env={**os.environ, "CAVE_DOCS_STRICT": "1"},  # a recipe page left out fails it too
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    built = {path.relative_to(html).as_posix() for path in html.rglob("*.html")}
    for page in ("index", "lookup", "security", "errors", "cli", "recipes", "api", "performance"):
        assert f"{page}.html" in built
    assert "recipes/httpx_client.html" in built
    usage = (html / "cli.html").read_text(encoding="utf-8")
    assert "usage: cave-auth status" in usage  # made by the parsers, not copied
