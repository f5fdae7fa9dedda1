"""Sphinx configuration for the fastgrad documentation (``bash scripts/docs.sh``)."""
import importlib
import inspect
import os
import re
import sys
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
os.environ.setdefault("MPLBACKEND", "Agg")

import fastgrad  # noqa: E402

project = "fastgrad"
author = "fastgrad developers"
copyright = "2026, fastgrad developers"
release = version = fastgrad.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
]
intersphinx_mapping = {}  # the build is offline: no inventories are fetched
templates_path = []
exclude_patterns = ["_build", "api/_template*"]
root_doc = "index"

html_theme = "pydata_sphinx_theme"
html_title = f"fastgrad {release}"
html_theme_options = {
    "navigation_depth": 2,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path = []
html_show_sourcelink = False

# API reference: autodoc + numpydoc. Members come from each module's __all__, so new
# public functions appear without editing these pages (see _write_api_pages below).
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autosummary_generate = False
numpydoc_show_class_members = False   # the API pages list methods themselves
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()    # docstring style is checked by review, not by the build
numpydoc_xref_param_type = False
nitpicky = False
add_module_names = False

# Figures: matplotlib's plot directive runs each example at build time.
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 90)]
plot_rcparams = {"figure.figsize": (6.4, 4.0), "figure.dpi": 90, "savefig.bbox": "tight"}
plot_working_directory = HERE
plot_pre_code = "import numpy as np\nimport matplotlib.pyplot as plt\n"

warnings.filterwarnings("ignore", category=UserWarning, message=".*FigureCanvasAgg is non-interactive.*")

# Public modules documented in the API reference, in this order.
API_MODULES = [
    ("fastgrad", "Top level"),
    ("fastgrad.hlsm", "Multiplex networks (HLSM)"),
    ("fastgrad.glm", "Linear and logistic regression"),
    ("fastgrad.multinomial", "Multinomial logistic regression"),
    ("fastgrad.mf", "Matrix factorisation"),
    ("fastgrad.sklearn", "scikit-learn estimators"),
    ("fastgrad.dask", "Distributed fits on Dask"),
    ("fastgrad.datasets", "Data sets and readers"),
    ("fastgrad.kernels", "Numba kernels"),
    ("fastgrad.solvers", "Solvers"),
    ("fastgrad.prox", "Proximal operators"),
    ("fastgrad.plotting", "Plotting"),
]


def _is_dispatcher(obj):
    return type(obj).__module__.startswith("numba") and hasattr(obj, "py_func")


def _class_members(cls):
    """Public methods and properties defined by the class itself (not dataclass fields)."""
    fields = set(getattr(cls, "__dataclass_fields__", {}))
    names = []
    for name, value in vars(cls).items():
        if name.startswith("_") or name in fields:
            continue
        if callable(value) or isinstance(value, (property, classmethod, staticmethod)):
            names.append(name)
    return names


def _summary(obj):
    """First sentence of the docstring's first paragraph, never cutting an inline literal."""
    doc = inspect.getdoc(obj) or ""
    para = " ".join(doc.strip().split("\n\n")[0].split())
    inside = False
    i = 0
    while i < len(para):
        if para.startswith("``", i):
            inside = not inside
            i += 2
            continue
        if not inside and para[i] == "." and (i + 1 == len(para) or para[i + 1] == " "):
            return para[: i + 1]
        i += 1
    return para


def _api_page(modname, title):
    mod = importlib.import_module(modname)
    names = [n for n in getattr(mod, "__all__", []) if not n.startswith("__")]
    if modname == "fastgrad":
        names = [n for n in names if not inspect.ismodule(getattr(mod, n))]
    lines = [title, "=" * len(title), "", f".. automodule:: {modname}", "   :no-members:", "",
             f".. currentmodule:: {modname}", ""]
    if names:
        lines += [".. list-table::", "   :widths: 30 70", ""]
        for n in names:
            obj = getattr(mod, n)
            role = "class" if inspect.isclass(obj) else (
                "func" if inspect.isroutine(obj) or _is_dispatcher(obj) else "data")
            summary = _summary(obj) if role != "data" else ""
            lines += [f"   * - :{role}:`{n}`", f"     - {summary}"]
        lines += [""]
    for n in names:
        obj = getattr(mod, n)
        if inspect.isclass(obj):
            members = _class_members(obj)
            lines += [f".. autoclass:: {n}"]
            lines += [f"   :members: {', '.join(members)}"] if members else []
            lines += [""]
        elif inspect.isroutine(obj) or _is_dispatcher(obj):
            lines += [f".. autofunction:: {n}", ""]
        else:
            lines += [f".. autodata:: {n}", "   :annotation:", ""]
    return "\n".join(lines)


def _write_api_pages(app):
    out = os.path.join(HERE, "api")
    os.makedirs(out, exist_ok=True)
    toc = ["API reference", "=============", "",
           "Generated from the docstrings; each page lists the names in the module's",
           "``__all__``.", "", ".. toctree::", "   :maxdepth: 1", ""]
    for modname, title in API_MODULES:
        text = _api_page(modname, f"``{modname}``: {title}")
        path = os.path.join(out, f"{modname}.rst")
        old = open(path).read() if os.path.exists(path) else None
        if old != text:   # rewrite only on change, so incremental builds stay incremental
            with open(path, "w") as fh:
                fh.write(text)
        toc.append(f"   {modname}")
    text = "\n".join(toc) + "\n"
    path = os.path.join(out, "index.rst")
    if not os.path.exists(path) or open(path).read() != text:
        with open(path, "w") as fh:
            fh.write(text)


def _dispatcher_signature(app, what, name, obj, options, signature, return_annotation):
    """Numba dispatchers: show the Python function's signature."""
    if _is_dispatcher(obj):
        try:
            return str(inspect.signature(obj.py_func)), None
        except (TypeError, ValueError):
            return None
    return None


# A "|" touching a word, a bracket or another "|" (as in ``|x|`` or ``||v||``) opens a
# substitution reference in RST; one between spaces (tables, line blocks) does not.
_BAR = re.compile(r"(?<!\\)\|(?=[\w(|])|(?<=[\w)|])(?<!\\)\|")
_QUOTED = re.compile(r"(``.*?``|`[^`]*`)")


def _escape_bars(app, what, name, obj, options, lines):
    """Escape ``|`` in norms like ``||v||`` and ``|x|`` outside inline literals and roles."""
    for k, line in enumerate(lines):
        parts = _QUOTED.split(line)
        for j in range(0, len(parts), 2):
            parts[j] = _BAR.sub(r"\\|", parts[j])
        lines[k] = "".join(parts)


def setup(app):
    app.connect("autodoc-process-docstring", _escape_bars, priority=400)
    app.connect("builder-inited", _write_api_pages)
    app.connect("autodoc-process-signature", _dispatcher_signature)
