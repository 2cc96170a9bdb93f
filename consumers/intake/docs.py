"""The Swagger page of the intake API, with its assets served by the API itself.

FastAPI's own `/docs` loads Swagger UI from a CDN, so the page is blank on a control-room
network without Internet access. The swagger-ui-bundle package ships the built files; the
page and the few files it loads are served from here, and nothing else of the package is.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from starlette.exceptions import HTTPException
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # no hints shipped

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
# The files the page loads, and their media types.
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<title>{title}</title>
<link rel="stylesheet" type="text/css" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js" charset="UTF-8"></script>
<script src="{assets}/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: {openapi_url},
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
  // The default would fetch a badge from validator.swagger.io.
  validatorUrl: null
}});
</script>
</body>
</html>
"""


def docs_page(*, title: str, openapi_url: str) -> str:
    """Return the Swagger page that loads its assets from ASSETS_PATH."""
    return _PAGE.format(title=title, assets=ASSETS_PATH, openapi_url=json.dumps(openapi_url))


def install_docs(app: FastAPI) -> None:
    """Serve the Swagger page at /docs and its assets under /docs/assets (no token needed)."""
    bundle = Path(str(swagger_ui_path))
    page = docs_page(title=f"{app.title} - Swagger UI", openapi_url=app.openapi_url or "")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_page() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    async def swagger_asset(name: str) -> FileResponse:
        # Only the listed files: the name never reaches the file system otherwise.
        media_type = ASSETS.get(name)
        if media_type is None:
            raise HTTPException(404, "no such asset")
        return FileResponse(bundle / name, media_type=media_type)
