"""The API docs (/docs, /redoc) work offline: every file from this service, a strict policy."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.security import API_CSP
from app.web.rendering import STATIC_DIR

DOCS_PAGES = ["/docs", "/redoc"]
ROOT = Path(__file__).resolve().parents[2]


def _nonce(policy: str) -> str:
    match = re.search(r"script-src 'self' 'nonce-([A-Za-z0-9_-]+)'", policy)
    assert match, policy
    return match.group(1)


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_a_docs_page_loads_every_file_from_this_service(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?://|//[a-z]", page.text, re.IGNORECASE), page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(a.endswith(".js") for a in assets)
    spec = re.findall(r"""["'](/openapi\.json)["']""", page.text)
    assert spec, "the page names no OpenAPI document"
    for url in [*assets, *spec]:
        assert url.startswith("/"), url
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert answer.content, url


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_a_docs_page_admits_only_this_site_and_its_own_start_up_script(
    client: TestClient, path: str
) -> None:
    first, second = client.get(path), client.get(path)
    policy = first.headers["content-security-policy"]
    assert first.headers.get_list("content-security-policy") == [policy]  # not the pages' too
    nonce = _nonce(policy)
    assert nonce != _nonce(second.headers["content-security-policy"])  # fresh per response
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "connect-src 'self'" in policy and "img-src 'self' data:" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert not re.search(r"https?:|\*", policy), policy
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", first.text)
    assert inline and all(f'nonce="{nonce}"' in attrs for attrs in inline)
    styles = re.findall(r"<style([^>]*)>", first.text)
    assert all(f'nonce="{nonce}"' in attrs for attrs in styles)


def test_redoc_gets_the_nonce_for_the_styles_it_injects(client: TestClient) -> None:
    page = client.get("/redoc")
    nonce = _nonce(page.headers["content-security-policy"])
    assert f'nonce: "{nonce}"' in page.text and "Redoc.init(" in page.text
    assert "worker-src blob:" in page.headers["content-security-policy"]
    assert "worker-src" not in client.get("/docs").headers["content-security-policy"]


def test_swagger_ui_calls_no_online_validator(client: TestClient) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


def test_the_openapi_document_gets_the_api_policy(client: TestClient) -> None:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == API_CSP.decode()


def test_every_vendored_file_is_the_one_docs_deployment_names() -> None:
    listed = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    files = sorted((STATIC_DIR / "apidocs").iterdir())
    assert {f.name for f in files} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for file in files:
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        assert digest in listed, f"{file.name}: SHA-256 {digest} not in docs/deployment.md"
