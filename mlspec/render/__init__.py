"""Turning results into text for people (terminal, PR comments) and machines (JSON)."""
