"""The interactive API docs (/docs: Swagger UI, /redoc: Redoc), served from this package.

FastAPI's own pages load their scripts from a CDN, which a hospital network or an offline copy
cannot reach and which would run code the study does not control. Here the scripts are vendored
under app/web/static/apidocs/ (versions, licenses and SHA-256 in docs/deployment.md), and each
page carries its own Content-Security-Policy: the vendored files from this site, plus the one
inline start-up script the page needs, admitted by a nonce fresh for every response.
"""

from __future__ import annotations

import html
import json
import secrets

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, swagger_ui_default_parameters
from fastapi.responses import HTMLResponse

SWAGGER_UI_VERSION = "5.35.0"
"""npm swagger-ui-dist (Apache-2.0), the major FastAPI itself loads."""
REDOC_VERSION = "2.5.4"
"""npm redoc (MIT), the major FastAPI itself loads."""
REDOC_BUNDLED_CSS = ("'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",)
"""The one `<style>` that redoc.standalone.js injects while it loads, before it can be given the
nonce (perfect-scrollbar's CSS, with its source map): admitted by its hash, which changes only
with the vendored file (docs/deployment.md says how to check it)."""
EMPTY_STYLE = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
"""An empty `<style>`: how that one starts, before its text is set; it styles nothing."""
ASSETS = "/static/apidocs"
FAVICON = "/static/favicon.svg"


def docs_csp(nonce: str, *, styles: tuple[str, ...] = (), workers: bool = False) -> str:
    """Scripts, styles, images and requests from this site only; inline code only with `nonce`
    (or, for `styles`, with one of these hashes).

    `data:` images are Swagger UI's icons inside its CSS; Redoc's search runs in a worker that
    it builds from its own bundle as a `blob:` URL (`workers`)."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'nonce-{nonce}'",
            " ".join(["style-src 'self'", f"'nonce-{nonce}'", *styles]),
            "img-src 'self' data:",
            "connect-src 'self'",
            *(["worker-src blob:"] if workers else []),
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _js(value: str) -> str:
    """A JavaScript string literal that cannot end the `<script>` element it stands in."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")


def _page(body: str, *, policy: str) -> HTMLResponse:
    return HTMLResponse(body, headers={"Content-Security-Policy": policy})


async def swagger_ui(request: Request) -> HTMLResponse:
    """FastAPI's Swagger UI page on the vendored files; its inline start-up script gets the
    nonce (the only `<script>` without a `src`)."""
    root = _root(request)
    nonce = secrets.token_urlsafe(16)
    page = get_swagger_ui_html(
        openapi_url=root + str(request.app.openapi_url),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=root + FAVICON,
        oauth2_redirect_url=None,
        swagger_ui_parameters={**swagger_ui_default_parameters, "validatorUrl": None},
    )
    body = bytes(page.body).decode().replace("<script>", f'<script nonce="{nonce}">')
    return _page(body, policy=docs_csp(nonce))


async def redoc(request: Request) -> HTMLResponse:
    """Redoc started by a script with the nonce, which Redoc also puts on the `<style>` tags it
    injects (FastAPI's `get_redoc_html` has no way to pass it, and loads Google fonts)."""
    root = _root(request)
    nonce = secrets.token_urlsafe(16)
    title = html.escape(f"{request.app.title} - ReDoc")
    spec = root + str(request.app.openapi_url)
    body = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{html.escape(root + FAVICON)}" type="image/svg+xml">
<style nonce="{nonce}">body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<noscript>Redoc needs JavaScript; the OpenAPI document is at {html.escape(spec)}.</noscript>
<div id="redoc"></div>
<script src="{html.escape(root + ASSETS)}/redoc.standalone.js"></script>
<script nonce="{nonce}">
Redoc.init({_js(spec)}, {{nonce: {_js(nonce)}}}, document.getElementById("redoc"));
</script>
</body>
</html>
"""
    policy = docs_csp(nonce, styles=(*REDOC_BUNDLED_CSS, EMPTY_STYLE), workers=True)
    return _page(body, policy=policy)


def install(app: FastAPI) -> None:
    """Serve /docs and /redoc (create the app with `docs_url=None, redoc_url=None`)."""
    app.add_route("/docs", swagger_ui, include_in_schema=False)  # GET and HEAD, as FastAPI's
    app.add_route("/redoc", redoc, include_in_schema=False)
