"""The built-in Service plugin: a Model (or its Optimization) behind a BentoML HTTP API, served locally
by a supervised background process.

`plugin` is what the engine calls; `step` one run (what to serve, the bento, the swap), `bento` the
model store and `bentoml build` (its own process: BentoML reads its home on import), `supervise` the
server process (start, health, stop, who holds a port), `app` what runs inside the server (the
service class, request checks, the request log) and `schema` the request and response types.
"""

from mlspec_serve.plugin import ServicePlugin

__all__ = ["ServicePlugin"]
