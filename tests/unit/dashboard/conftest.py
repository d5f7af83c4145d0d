"""The real Dash app over the session's demo warehouse (with segments and recommendations), reached through
Flask's test client exactly as a browser's callback requests reach it: the body of each request is built from
the app's own `/_dash-dependencies`, so the tests follow the callbacks the app really registers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest


@pytest.fixture(scope="session")
def dash_ws(demo_workspace: Path, requires: Any) -> Path:
    requires("dash")
    return demo_workspace


@pytest.fixture(scope="session")
def dash_app(dash_ws: Path) -> Any:
    from tunelake.dashboard.app import create_app
    from tunelake.workspace import open_workspace

    app = create_app(open_workspace(dash_ws))
    yield app
    app._tunelake_warehouse.close()


@pytest.fixture()
def client(dash_app: Any) -> Any:
    return dash_app.server.test_client()


@pytest.fixture(scope="session")
def sql(dash_ws: Path) -> Any:
    """A direct read-only query on the current warehouse file, independent of the dashboard's code."""
    from tunelake.warehouse.store import current_warehouse_file
    from tunelake.workspace import open_workspace

    def run(query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(current_warehouse_file(open_workspace(dash_ws))), read_only=True)
        try:
            return con.execute(query, params or []).fetchall()
        finally:
            con.close()

    return run


class Callbacks:
    """Callback requests for the app, by the ids of their inputs ("filters.data", "over-time.clickData")."""

    def __init__(self, client: Any) -> None:
        self.client = client
        deps = client.get("/_dash-dependencies", headers={"Host": "127.0.0.1"}).get_json()
        self.by_input: dict[str, list[dict[str, Any]]] = {}
        for d in deps:
            key = ",".join(f"{i['id']}.{i['property']}" for i in d["inputs"])
            self.by_input.setdefault(key, []).append(d)

    def body(self, inputs: str, values: list[Any], output: str | None = None) -> dict[str, Any]:
        deps = self.by_input[inputs]
        dep = next(d for d in deps if output is None or d["output"].startswith(output)) if output else deps[0]
        out = dep["output"]
        multi = out.startswith("..")
        parts = out.strip(".").split("...") if multi else [out]
        outputs = [dict(zip(("id", "property"), p.split(".", 1), strict=True)) for p in parts]
        ins = [dict(zip(("id", "property"), i.split(".", 1), strict=True)) | {"value": v}
               for i, v in zip(inputs.split(","), values, strict=True)]
        return {"output": out, "outputs": outputs if multi else outputs[0], "inputs": ins,
                "changedPropIds": [f"{i['id']}.{i['property']}" for i in ins], "state": []}

    def post(self, inputs: str, values: list[Any], output: str | None = None, **kw: Any) -> Any:
        return self.client.post("/_dash-update-component", json=self.body(inputs, values, output), **kw)


@pytest.fixture()
def callbacks(client: Any) -> Callbacks:
    return Callbacks(client)
