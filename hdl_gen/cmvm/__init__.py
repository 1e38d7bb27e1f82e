"""Distributed arithmetic: constant matrix × vector as a multiplier-free graph of two-input shift-add adders.

``solve(W, in_intervals, depth_bound=..., in_depths=...)`` returns an :class:`AdderGraph` of :class:`AddOp`.
"""

from .graph import AdderGraph, AddOp
from .solver import minimal_depth, retype, solve

__all__ = ["AddOp", "AdderGraph", "minimal_depth", "retype", "solve"]
