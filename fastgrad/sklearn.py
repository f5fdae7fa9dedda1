"""scikit-learn estimator wrappers (scikit-learn is imported only when used).

Each estimator lives with its model family (regression in :mod:`fastgrad.glm`'s
package, the multinomial classifier in :mod:`fastgrad.multinomial`'s); this module
re-exports them.
"""
import importlib

_WHERE = {
    "LinearRegression": "glm._sklearn",
    "Ridge": "glm._sklearn",
    "Lasso": "glm._sklearn",
    "ElasticNet": "glm._sklearn",
    "LogisticRegression": "glm._sklearn",
    "MultinomialLogisticRegression": "multinomial._sklearn",
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
