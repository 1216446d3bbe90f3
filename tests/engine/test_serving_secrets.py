"""`mlspec serve start` gives a server the secrets its spec names again: state records the server's
environment without them, so they come from the environment of the command that starts it."""

from __future__ import annotations

import pytest

from mlspec.engine.serving import NotServed, _secrets
from mlspec.state.model import ResourceState


def state(env: dict[str, str]) -> ResourceState:
    return ResourceState("Service/api", "f" * 64, {"metadata": {"name": "api"}, "spec": {"env": env}})


def test_the_spec_secrets_are_resolved_again_and_plain_values_left_to_the_record(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", "s3cr3t-token")
    found = _secrets(state({"TOKEN": "${env:API_TOKEN}", "URL": "https://${env:API_TOKEN}@x", "MODE": "fast"}))
    assert found == {"TOKEN": "s3cr3t-token", "URL": "https://s3cr3t-token@x"}


def test_a_secret_that_is_not_set_is_named_not_started_without(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("API_TOKEN", raising=False)
    with pytest.raises(NotServed, match=r"spec.env.TOKEN names \$\{env:API_TOKEN\}, which is not set here"):
        _secrets(state({"TOKEN": "${env:API_TOKEN}"}))
