"""Names every layer shares, kept free of pydantic so the hot paths can import them cheaply."""

from __future__ import annotations

API_VERSION = "mlspec/v1"
KIND_NAMES = ("Dataset", "Model", "Optimization", "Service", "Prompt", "Monitor", "Task")
DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
PROJECT_FILE = "mlspec.yaml"
DEFAULT_SPECS = ("specs/**/*.yaml", "specs/**/*.yml")
