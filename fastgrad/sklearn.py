"""scikit-learn estimator wrappers (scikit-learn is imported only when used).

Regression estimators live in :mod:`fastgrad._sklearn_glm`, the multinomial
classifier in :mod:`fastgrad._sklearn_multinomial`; this module re-exports them.
"""
import importlib

_WHERE = {
    "LinearRegression": "_sklearn_glm",
    "Ridge": "_sklearn_glm",
    "Lasso": "_sklearn_glm",
    "ElasticNet": "_sklearn_glm",
    "LogisticRegression": "_sklearn_glm",
    "MultinomialLogisticRegression": "_sklearn_multinomial",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name in _WHERE:
        try:
            mod = importlib.import_module(f"fastgrad.{_WHERE[name]}")
        except ImportError as exc:
            if "sklearn" in str(exc):
                raise ImportError("fastgrad.sklearn needs scikit-learn: pip install 'fastgrad[sklearn]'") from exc
            raise
        return getattr(mod, name)
    raise AttributeError(f"module 'fastgrad.sklearn' has no attribute {name!r}")


def __dir__():
    return __all__
