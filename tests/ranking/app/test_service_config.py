"""Issue 16, config as state: a change is one atomic operation (PUT /config) or a file reload
that is checked complete; a half-written file is never served, by any path."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from objectives.config import ConfigError
from ranking.app.cli import main
from ranking.app.config_store import (
    ConfigStore,
    Validator,
    accept_file,
    accept_text,
    version_of,
)
from tests.service_fixtures import (
    RICH_WEIGHTS,
    load,
    raw_request,
    service,
    service_bundle,
    sha256,
    wait_until,
    write_with_sidecar,
)

__all__ = ["service", "service_bundle"]  # fixtures used by name


def reloads(http: httpx.Client, result: str) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(f'marginrank_config_reloads_total{{result="{result}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_every_prefix_of_a_weights_file_is_refused_or_is_the_file(
        service_bundle: Path, tmp_path: Path) -> None:
    """Each byte prefix of a valid file, as a non-atomic save leaves it on disk, through the
    two file paths: ``POST /reload`` with the sha256 in its body, and the sidecar check that
    ``POST /reload`` without a body and SIGHUP use (the functions those paths call)."""
    validator = Validator.for_bundle(service_bundle)
    store = ConfigStore(tmp_path / "state")
    accept_text(store, validator, (service_bundle / "weights.yaml").read_text(), "start", "-")
    full = RICH_WEIGHTS.encode()
    path = tmp_path / "weights.yaml"
    accepted, refused, valid_yaml = [], 0, 0
    for n in range(len(full) + 1):
        prefix = full[:n]
        try:  # what a reload without the completeness check would have taken
            validator.validate(prefix.decode("utf-8", errors="strict"), "prefix")
            valid_yaml += n < len(full)
        except (ConfigError, UnicodeDecodeError):
            pass
        for expected in (sha256(full), None):
            write_with_sidecar(path, prefix, intended=full)
            try:
                accepted.append(accept_file(store, validator, path, expected, "POST /reload"))
            except ConfigError:
                refused += 1
    assert valid_yaml > 0  # some cuts parse as valid configs: the hazard is real
    assert {g.sha256 for g in accepted} == {sha256(full)}  # only the whole file, both paths
    assert len(accepted) == 2 and refused == 2 * len(full)
    assert store.current().version == version_of(RICH_WEIGHTS)


def test_half_written_files_and_cut_bodies_are_refused_over_http(
        service: load.ServiceProcess) -> None:
    """The same over real HTTP: every cut of a PUT /config body (the connection ends before
    the declared length), cuts sent whole but with the intended text's sha256, cuts on disk
    reloaded by POST /reload (sha256 in the body) and by SIGHUP (sidecar)."""
    config: Path = service.config  # type: ignore[attr-defined]
    full = RICH_WEIGHTS.encode()
    other = RICH_WEIGHTS.replace("margin: 0.35", "margin: 0.45")
    with httpx.Client(base_url=service.url, timeout=30, headers=service.admin_headers) as http:
        put = http.put("/config", content=other, headers={"content-type": "application/yaml"})
        assert put.status_code == 200
        serving, ok = put.json()["config_version"], reloads(http, "ok")
        head = (f"PUT /config HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                f"{service.admin_token}\r\nContent-Type: application/yaml\r\n"
                f"Content-Length: {len(full)}\r\n\r\n").encode()
        for n in range(len(full)):
            answer = raw_request(service.port, head + full[:n], shut_write=True)
            assert not answer.startswith(b"HTTP/1.1 200"), n
        cuts = [n for n in range(0, len(full), 7)] + [len(full) - 1]
        for n in cuts:
            response = http.put("/config", content=full[:n], headers={
                "content-type": "application/yaml", "x-content-sha256": sha256(full)})
            assert response.status_code in (400, 422), n
            config.write_bytes(full[:n])
            assert http.post("/reload", json={"sha256": sha256(full)}).status_code == 400, n
        write_with_sidecar(config, full[:len(full) // 2], intended=full)
        refused = reloads(http, "refused")
        assert service.process is not None
        service.process.send_signal(signal.SIGHUP)
        wait_until(lambda: reloads(http, "refused") == refused + 1, "the refused SIGHUP")
        assert reloads(http, "ok") == ok
        assert http.get("/readyz").json()["config_version"] == serving
        write_with_sidecar(config, full)
        assert http.post("/reload").json()["config_version"] == version_of(RICH_WEIGHTS)


def test_put_config_needs_the_token_the_origin_and_a_yaml_or_json_type(
        service: load.ServiceProcess) -> None:
    text = RICH_WEIGHTS.replace("margin: 0.35", "margin: 0.55")
    yaml = {"content-type": "application/yaml"}
    auth = service.admin_headers
    with httpx.Client(base_url=service.url, timeout=30) as http:
        before = http.get("/readyz").json()["config_version"]
        assert http.put("/config", content=text, headers=yaml).status_code == 401
        assert http.put("/config", content=text, headers={
            **yaml, "authorization": "Bearer " + "0" * 32}).status_code == 401
        for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            response = http.put("/config", content=text, headers={**auth, "content-type": kind})
            assert response.status_code == 415, kind
        assert http.post("/reload", content=b"{}", headers={
            **auth, "content-type": "text/plain"}).status_code == 415
        assert http.put("/config", content=text, headers={
            **auth, **yaml, "origin": "https://shop.example"}).status_code == 403
        assert http.post("/reload", headers={
            **auth, "sec-fetch-site": "cross-site"}).status_code == 403
        assert http.get("/readyz").json()["config_version"] == before
        bad = http.put("/config", content=load.invalid_variant(text), headers={**auth, **yaml})
        assert bad.status_code == 400
        (error,) = bad.json()["errors"]
        assert (error["file"], error["key"]) == ("PUT /config", "weights.marign")
        assert error["line"] == 4 and "did you mean 'margin'" in error["message"]
        good = http.put("/config", json={"text": text}, headers=auth)
        assert good.status_code == 200 and good.json()["config_version"] == version_of(text)
        assert good.json()["source"] == "PUT /config"
        search = http.get("/search", params={"q": "cordless drill"})
        assert search.json()["config_version"] == version_of(text)
        assert search.headers["x-config-version"] == version_of(text)
        assert search.json()["results"][0]["product_id"] == "P00308"  # the pin


def test_config_push_validates_locally_then_puts(service: load.ServiceProcess, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "token"
    token.write_text(service.admin_token + "\n")
    text = RICH_WEIGHTS.replace("margin: 0.35", "margin: 0.65")
    file = tmp_path / "new.yaml"
    file.write_text(text)
    assert main(["config", "push", str(file), "--url", service.url,
                 "--token-file", str(token)]) == 0
    assert version_of(text) in capsys.readouterr().out
    assert httpx.get(service.url + "/readyz").json()["config_version"] == version_of(text)
    with httpx.Client(base_url=service.url) as http:
        refused = reloads(http, "refused")
        file.write_text(load.invalid_variant(text))
        assert main(["config", "push", str(file), "--url", service.url,
                     "--token-file", str(token)]) == 2
        assert "weights.marign" in capsys.readouterr().err
        assert reloads(http, "refused") == refused  # refused here: nothing was sent
        file.write_text(text.replace("P00308", "NOPE-1"))  # only the service knows products
        assert main(["config", "push", str(file), "--url", service.url,
                     "--token-file", str(token)]) == 2
        assert "NOPE-1" in capsys.readouterr().err
        assert reloads(http, "refused") == refused + 1
    monkeypatch.delenv("MARGINRANK_ADMIN_TOKEN", raising=False)
    assert main(["config", "push", str(file), "--url", service.url]) == 2
    assert "no admin token" in capsys.readouterr().err
