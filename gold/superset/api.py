"""A small Superset REST client: JWT login plus the CSRF token every write needs."""
from __future__ import annotations

import json
from typing import Any

import requests

# Asset kinds with a list endpoint, used for the before/after counts of provisioning.
ASSET_ENDPOINTS = {"databases": "database", "datasets": "dataset", "charts": "chart", "dashboards": "dashboard"}


class SupersetError(RuntimeError):
    """Superset answered a request with an error status; the message carries its answer."""


class SupersetClient:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        token = self._checked(self.session.post(
            f"{self.base_url}/api/v1/security/login",
            json={"username": username, "password": password, "provider": "db", "refresh": False},
            timeout=timeout))["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"
        csrf = self.get("/api/v1/security/csrf_token/")["result"]
        self.session.headers.update({"X-CSRFToken": csrf, "Referer": self.base_url})

    @staticmethod
    def _checked(response: requests.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            raise SupersetError(f"{response.request.method} {response.url} -> {response.status_code}: "
                                f"{response.text[:2000]}")
        return response.json()

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self._checked(self.session.get(f"{self.base_url}{path}", params=params, timeout=self.timeout))

    def get_bytes(self, path: str, **params: Any) -> bytes:
        response = self.session.get(f"{self.base_url}{path}", params=params, timeout=self.timeout)
        if response.status_code >= 400:
            raise SupersetError(f"GET {response.url} -> {response.status_code}: {response.text[:2000]}")
        return response.content

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._checked(self.session.post(f"{self.base_url}{path}", json=payload, timeout=self.timeout))

    def put(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._checked(self.session.put(f"{self.base_url}{path}", json=payload, timeout=self.timeout))

    def import_assets(self, bundle: bytes, passwords: dict[str, str]) -> None:
        """POST a ZIP of YAML assets; existing objects with the same UUID are overwritten."""
        self._checked(self.session.post(
            f"{self.base_url}/api/v1/assets/import/",
            files={"bundle": ("assets.zip", bundle, "application/zip")},
            data={"passwords": json.dumps(passwords)}, timeout=self.timeout))

    def count(self, kind: str) -> int:
        """Number of objects of one asset kind (databases, datasets, charts, dashboards)."""
        return self.get(f"/api/v1/{ASSET_ENDPOINTS[kind]}/", q="(page_size:1)")["count"]

    def counts(self) -> dict[str, int]:
        return {kind: self.count(kind) for kind in ASSET_ENDPOINTS}

    def dashboard_charts(self, id_or_slug: str) -> list[dict[str, Any]]:
        return self.get(f"/api/v1/dashboard/{id_or_slug}/charts")["result"]

    def chart_data(self, chart_id: int) -> dict[str, Any]:
        """Run the chart's saved query context (what GET /api/v1/chart/<id>/data/ does)."""
        return self.get(f"/api/v1/chart/{chart_id}/data/", format="json", type="full")
