"""Reading specs: the loader (YAML with positions), the kinds (pydantic) and diagnostics."""
