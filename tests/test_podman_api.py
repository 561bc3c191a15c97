"""The Podman shim's pure parts: how Podman's answers are read and what it is told instead. What Podman
does is proved against the real service by the engine-parametrized tests (test_layers_engine,
test_run_engine, test_queue_engine)."""

from __future__ import annotations

from tsk.engine.podman_api import host_gateway, manifest_absent, short_name


def test_podman_names_are_given_back_in_dockers_short_form() -> None:
    assert short_name("localhost/tsk/layer:base-1") == "tsk/layer:base-1"
    assert short_name("docker.io/tsk/layer:base-1") == "tsk/layer:base-1"
    assert short_name("docker.io/library/debian:trixie") == "debian:trixie"
    assert short_name("registry.example.com/team/tsk:agent-2") == "registry.example.com/team/tsk:agent-2"
    assert short_name("127.0.0.1:5000/tsk:x") == "127.0.0.1:5000/tsk:x"


def test_host_gateway_is_named_by_the_networks_gateway() -> None:
    asked: list[bool] = []

    def gateway() -> str:
        asked.append(True)
        return "10.89.0.1"

    assert host_gateway({"tsk-proxy": "127.0.0.2"}, gateway) == {"tsk-proxy": "127.0.0.2"} and not asked
    assert host_gateway({"host.docker.internal": "host-gateway", "a": "1.2.3.4"}, gateway) == {
        "host.docker.internal": "10.89.0.1", "a": "1.2.3.4"}


def test_a_manifest_inspect_tells_present_absent_and_unreachable_apart() -> None:
    assert manifest_absent(200, {"schemaVersion": 2}) is False
    assert manifest_absent(404, {"cause": "manifest unknown: manifest unknown", "response": 404}) is True
    assert manifest_absent(404, {"cause": "name unknown: repository name not known to registry"}) is True
    assert manifest_absent(404, {"cause": "connection refused", "response": 404}) is None
    assert manifest_absent(404, {"cause": "http: server gave HTTP response to HTTPS client"}) is None
    assert manifest_absent(500, None) is None
