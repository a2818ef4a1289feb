"""Sphinx configuration: the documentation of cave-requests-auth.

Build it (warnings are errors, as in CI and ``tox -e docs``)::

    python -m sphinx -W --keep-going -b html docs /tmp/docs-html

Everything comes from this checkout: the README is the front page, the API
reference and the lookup order come from the docstrings, the ``cave-auth`` help
from its argparse parsers, and each recipe page includes its tested script from
``docs/recipes/``. No network: intersphinx is off.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the package of this checkout, installed or not

from cave_docs import missing_recipe_pages  # noqa: E402

from cave_requests_auth import __version__  # noqa: E402

project = "cave-requests-auth"
author = "cave-requests-auth developers"
copyright = "cave-requests-auth developers"
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "cave_docs",
]

root_doc = "index"
source_suffix = {".rst": "restructuredtext"}
# A recipe page whose script is not written yet is left out (and named in the
# build's output); with CAVE_DOCS_STRICT=1 that is an error instead.
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", *missing_recipe_pages(HERE)]
cave_docs_strict = os.environ.get("CAVE_DOCS_STRICT", "") not in ("", "0")

# -- autodoc and napoleon (Google-style Args / Returns / Raises) ------------------

autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_class_signature = "mixed"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

# -- HTML: the builtin alabaster theme, no extra dependency ----------------------

html_theme = "alabaster"
html_title = f"cave-requests-auth {release}"
html_theme_options = {
    "description": "CAVE credentials for plain requests and urllib3 code",
    "fixed_sidebar": True,
    "show_relbars": True,
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
html_show_sourcelink = False
pygments_style = "sphinx"
