"""One module per CLI command: a typed `run(...) -> int` that calls the library and renders."""
