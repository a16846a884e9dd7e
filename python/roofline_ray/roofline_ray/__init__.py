"""Run a roofline plan's tile jobs as Ray tasks, then merge them (see :mod:`roofline_ray.driver`)."""

from .driver import run_plan, main

__all__ = ["run_plan", "main"]
