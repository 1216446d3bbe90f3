"""mlspec's Monitor plugin: drift of a Service's traffic against a stored reference profile, reports,
alerts, and retraining proposed through the plan (plugin.py)."""

from mlspec_monitor.plugin import MonitorPlugin

__all__ = ["MonitorPlugin"]
