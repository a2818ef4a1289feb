"""Sphinx helpers for this project's documentation; nothing beyond Sphinx itself.

- ``.. cave-auth-help:: [COMMAND]``: the ``--help`` of ``cave-auth`` (or of one of
  its commands), made by its own argparse parsers when the docs are built, so the
  page cannot drift from the command.
- ``.. optional-automodule:: MODULE``: ``automodule`` for a module that may not be
  in this checkout yet (an optional binding being written). Where it does not
  import, a note says so instead of a failed build; with ``cave_docs_strict``
  (``CAVE_DOCS_STRICT=1``) it is a warning, so an error under ``-W``.
- :func:`missing_recipe_pages`: the recipe pages whose script is not there yet,
  for ``exclude_patterns`` (the recipe list is a glob, so it shows the others).
- :data:`DOCSTRING_FIXES`: exact text in the package's docstrings that is not
  valid RST (or not a section napoleon knows), replaced as autodoc reads it.
  Each entry is for a docstring to fix at its source; once fixed there, the
  entry matches nothing and can go. Also, before napoleon reads a docstring:
  a ``Raises:`` entry whose exceptions go on to a second line is joined into
  one, and a constant gets no docstring rather than its type's.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

if TYPE_CHECKING:
    from pathlib import Path

logger = logging.getLogger(__name__)

HELP_COLUMNS = "80"
"""The terminal width the help is formatted for (argparse reads ``$COLUMNS``)."""

_missing_recipes: list[str] = []

DOCSTRING_FIXES: list[tuple[str, str]] = []


def missing_recipe_pages(docs: Path) -> list[str]:
    """``recipes/<name>.rst`` for each recipe page whose ``recipes/<name>.py`` is missing."""
    missing = [
        f"recipes/{page.name}"
        for page in sorted((docs / "recipes").glob("*.rst"))
        if not page.with_suffix(".py").is_file()
    ]
    _missing_recipes[:] = missing
    return missing


def command_help(command: str | None = None) -> str:
    """What ``cave-auth [COMMAND] --help`` prints, at :data:`HELP_COLUMNS` columns."""
    from cave_requests_auth.cli import main

    argv = [command, "--help"] if command else ["--help"]
    out, err = io.StringIO(), io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(argv)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    if status != 0 or not out.getvalue():
        raise RuntimeError(f"cave-auth {' '.join(argv)} exited {status}: {err.getvalue()}")
    return out.getvalue().rstrip() + "\n"


class CaveAuthHelp(SphinxDirective):
    """``.. cave-auth-help:: [COMMAND]``: the command's help as a literal block."""

    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        command = self.arguments[0] if self.arguments else None
        text = command_help(command)
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        self.set_source_info(block)
        return [block]


class OptionalAutomodule(SphinxDirective):
    """``.. optional-automodule:: MODULE``, with the options of ``automodule``."""

    required_arguments = 1
    option_spec: ClassVar[dict[str, Callable[[str], Any]]] = {
        name: directives.unchanged
        for name in ("members", "undoc-members", "show-inheritance", "no-index", "synopsis")
    }

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        try:
            importlib.import_module(name)
        except ImportError as error:
            message = f"{name} does not import in this build ({error})"
            if self.config.cave_docs_strict:
                logger.warning(message, location=self.get_location())
            else:
                logger.info(f"{self.get_location()}: {message}; a note stands in for it")
            note = nodes.note()
            note += nodes.paragraph(
                text=f"The reference of {name} is not in this build of the documentation: "
                "the module was not there when it was built."
            )
            return [note]
        options = (f"   :{key}: {value or ''}".rstrip() for key, value in self.options.items())
        lines = [f".. automodule:: {name}", *options]
        source, line = self.get_source_info()
        holder = nodes.Element()
        nested_parse_with_titles(
            self.state, StringList(lines, items=[(source, line)] * len(lines)), holder
        )
        return list(holder.children)


def _join_raised_lists(lines: list[str]) -> None:
    """Join a ``Raises:`` entry whose list of exceptions goes on to the next line.

    ``InsecureTransportError, TokenNotFoundError,`` then ``TokenFileError: as …``
    is one entry; napoleon would take each line for an entry of its own.
    """
    section: int | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        indent = len(line) - len(line.lstrip())
        if line.strip() == "Raises:":
            section = indent
        elif section is not None and line.strip() and indent <= section:
            section = None
        elif (
            section is not None
            and line.rstrip().endswith(",")
            and ":" not in line
            and index + 1 < len(lines)
        ):
            lines[index] = f"{line.rstrip()} {lines.pop(index + 1).strip()}"
            continue
        index += 1


def _fix_docstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if (
        what == "data"
        and lines
        and type(obj).__doc__
        and lines[0].strip()
        and (type(obj).__doc__.strip().startswith(lines[0].strip()))
    ):
        lines.clear()  # a constant has no docstring: autodoc gave its type's
        return
    for index, line in enumerate(lines):
        for old, new in DOCSTRING_FIXES:
            if old in line:
                lines[index] = line = line.replace(old, new)
    _join_raised_lists(lines)


def _report_missing_recipes(app: Any) -> None:
    for page in _missing_recipes:
        message = f"docs/{page} is left out: its script docs/{page[:-4]}.py is not there"
        if app.config.cave_docs_strict:
            logger.warning(message)
        else:
            logger.info(message)


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("cave_docs_strict", False, "env", types=(bool,))
    app.add_directive("cave-auth-help", CaveAuthHelp)
    app.add_directive("optional-automodule", OptionalAutomodule)
    app.connect("builder-inited", _report_missing_recipes)
    app.connect("autodoc-process-docstring", _fix_docstring, priority=400)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
