"""Sphinx configuration: numpydoc API reference, tutorials with figures made
at build time (matplotlib's plot directive), the design notes in Markdown.

    pip install ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html
"""
import cattn

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
exclude_patterns = ["_build"]

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


html_theme = "pydata_sphinx_theme"
html_title = f"cattn {version}"
html_theme_options = {"navigation_depth": 2, "show_toc_level": 2}
