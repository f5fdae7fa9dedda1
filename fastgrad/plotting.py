"""Plots (matplotlib is imported only when a plot is drawn).

The plotting code lives with its model family; this module gathers it.
"""
from .hlsm._plot import plot_hlsm

__all__ = ["plot_hlsm"]
