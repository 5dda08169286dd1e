"""Sphinx configuration: numpydoc API reference, tutorials with figures made
at build time (matplotlib's plot directive), the design notes in Markdown.

    pip install ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html
"""
import doctest
import os
import pathlib
import sys

import cattn

ROOT = pathlib.Path(__file__).resolve().parent.parent

project = "cattn"
author = "the cattn developers"
copyright = "2026, the cattn developers"
version = release = cattn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_data"]

autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
# Every numpydoc check, as errors (-W): each public name needs its sections
# (extended summary, Parameters, Returns, See Also, Examples ...), except
# these formatting checks our docstrings do not follow uniformly: RT02/RT03
# (we write Returns as "name : type", as NumPy does), GL01/GL02 (where the
# summary starts), SS03/SS05/SS06 (summary punctuation, mood, one line),
# PR08/PR09/RT05 (capitals and periods), SA04 (a See Also entry without a
# description, as NumPy allows) and YD01 (no generators here).
numpydoc_validation_checks = {"all", "RT02", "RT03", "GL01", "GL02", "SS03",
                              "SS05", "SS06", "PR08", "PR09", "RT05", "SA04",
                              "YD01"}

# Figures: the plot directive runs each snippet and embeds the PNG.
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.figsize": (6.4, 3.2), "figure.dpi": 110}
# Snippets run from docs/, so a tutorial can read docs/_data.
plot_working_directory = os.path.dirname(os.path.abspath(__file__))


html_theme = "pydata_sphinx_theme"
html_title = f"cattn {version}"
html_theme_options = {"navigation_depth": 2, "show_toc_level": 2}


def run_docstring_examples(app):
    """Run the Examples of every public name as doctests; with -W a failure
    fails the build (tests/test_docs.py runs the same outside Sphinx)."""
    from sphinx.util import logging
    logger = logging.getLogger("cattn.doctest")
    finder = doctest.DocTestFinder()
    seen = set()
    for name in (n for n in cattn.__all__ if n != "__version__"):
        obj = getattr(cattn, name)
        for test in finder.find(obj, name, globs={"np": __import__("numpy"),
                                                  "cattn": cattn}):
            if test.name in seen or not test.examples:
                continue
            seen.add(test.name)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
            out = []
            result = runner.run(test, out=out.append)
            if result.failed:
                logger.warning("doctest of %s failed:\n%s", test.name,
                               "".join(out))


def write_dashboard(app, exception):
    """The performance history page (benchmarks/dashboard.py) from the
    recorded asv results, into the HTML site's performance/ folder, where
    performance_history.rst embeds it."""
    if exception is not None or app.builder.format != "html":
        return
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import dashboard
    finally:
        sys.path.pop(0)
    n = dashboard.build(pathlib.Path(app.outdir) / "performance")
    if n == 0:
        from sphinx.util import logging
        logging.getLogger("cattn.dashboard").warning(
            "benchmarks/results holds no asv results: an empty dashboard")


def setup(app):
    app.connect("builder-inited", run_docstring_examples)
    app.connect("build-finished", write_dashboard)
