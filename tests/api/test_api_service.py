"""The REST API over a real scanned database: every endpoint x role, four eyes, validation,
tokens stored hashed, audit entries, rollout tables."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from patchwarden import audit
from patchwarden.store import Store

# (method, path, body, lowest role allowed). Bodies are valid in shape; domain answers
# (404 for a missing change, 409 for a state) count as "allowed" for the matrix.
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/api/me", None, "vera"),
    ("GET", "/api/assets", None, "vera"),
    ("GET", "/api/assets/shop", None, "vera"),
    ("GET", "/api/findings", None, "vera"),
    ("GET", "/api/findings/1", None, "vera"),
    ("GET", "/api/actions", None, "vera"),
    ("GET", "/api/actions/shop/urllib3", None, "vera"),
    ("GET", "/api/plans/latest", None, "vera"),
    ("GET", "/api/plans/1", None, "vera"),
    ("GET", "/api/plans/1/timeline.svg", None, "vera"),
    ("GET", "/api/approvals", None, "vera"),
    ("GET", "/api/exceptions", None, "vera"),
    ("GET", "/api/rollouts", None, "vera"),
    ("GET", "/api/rollouts/1", None, "vera"),
    ("GET", "/api/reports/metrics", None, "vera"),
    ("GET", "/api/reports/html", None, "vera"),
    ("GET", "/api/overview", None, "vera"),
    ("GET", "/api/metrics", None, "vera"),
    ("POST", "/api/plans", None, "otto"),
    ("GET", "/api/audit", None, "otto"),
    ("GET", "/api/audit/verify", None, "otto"),
    ("POST", "/api/approvals", {"change": "9/x@y", "decision": "approve", "reason": "ok"}, "amy"),
    (
        "POST",
        "/api/exceptions",
        {"finding": 1, "owner": "ops", "reason": "r", "until": "2099-01-01T00:00:00Z"},
        "amy",
    ),
    ("POST", "/api/exceptions/999/revoke", None, "amy"),
    ("GET", "/api/users", None, "root"),
    ("POST", "/api/users", {"name": "new", "role": "viewer"}, "root"),
    ("PATCH", "/api/users/vera", {"disabled": False}, "root"),
    ("GET", "/api/tokens", None, "root"),
    ("POST", "/api/users/vera/tokens", {"name": "ci"}, "root"),
    ("POST", "/api/tokens/0000000000000000/revoke", None, "root"),
]
ORDER = ["vera", "otto", "amy", "root"]
"""Users of conftest's ``env``: viewer, operator, approver, admin."""
Env = Any


def bearer(env: Env, user: str) -> dict[str, str]:
    """The Authorization header of ``user``."""
    return {"Authorization": f"Bearer {env.tokens[user]}"}


def _call(client: TestClient, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return client.request(method, path, json=body, headers=headers)


def test_every_endpoint_by_every_role(client: TestClient, env: Env) -> None:
    """401 without a token, 403 below the endpoint's role, never 401/403 at or above it."""
    assert _call(client, "POST", "/api/plans", None, bearer(env, "otto")).status_code == 201
    seen = set()
    for method, path, body, lowest in ENDPOINTS:
        seen.add(path)
        anon = _call(client, method, path, body, {})
        assert anon.status_code == 401, (method, path, anon.text)
        assert "authentication required" in anon.json()["detail"]
        bad = _call(client, method, path, body, {"Authorization": "Bearer pw_0_nope"})
        assert bad.status_code == 401, (method, path)
        for user in ORDER:
            answer = _call(client, method, path, body, bearer(env, user))
            allowed = ORDER.index(user) >= ORDER.index(lowest)
            if allowed:
                assert answer.status_code not in (401, 403), (user, method, path, answer.text)
                assert answer.status_code < 500, (user, method, path, answer.text)
            else:
                assert answer.status_code == 403, (user, method, path, answer.text)
                assert "needs role" in answer.json()["detail"]
                assert "token" not in answer.text.lower() or path.startswith("/api/tokens")
    spec = client.get("/api/openapi.json").json()
    documented = set(spec["paths"])
    # every documented path is in the matrix (with its parameters filled in)
    assert len(documented) == len({_template(p, documented) for p in seen}), documented


def _template(path: str, documented: set[str]) -> str:
    if path in documented:
        return path
    parts = path.split("/")
    for tpl in documented:
        tparts = tpl.split("/")
        if tpl.endswith(":path}") or "{action_id" in tpl:
            if path.startswith("/api/actions/"):
                return tpl
            continue
        if len(tparts) == len(parts) and all(
            t == p or t.startswith("{") for t, p in zip(tparts, parts, strict=True)
        ):
            return tpl
    raise AssertionError(f"{path} is not documented")


def test_four_eyes_and_status_change(client: TestClient, env: Env) -> None:
    """The plan's creator cannot approve its change; another approver can; both audited."""
    plan = client.post("/api/plans", headers=bearer(env, "amy")).json()
    assert plan["created_by"] == "amy"
    pending = client.get("/api/approvals", headers=bearer(env, "vera")).json()["changes"]
    assert [c["asset"] for c in pending] == ["shop"]  # lab is dev: auto-approved by the gate
    change = pending[0]["id"]
    body = {"change": change, "decision": "approve", "reason": "patch window agreed"}
    own = client.post("/api/approvals", json=body, headers=bearer(env, "amy"))
    assert own.status_code == 409
    assert "four eyes" in own.json()["detail"]
    otto = client.post("/api/approvals", json=body, headers=bearer(env, "otto"))
    assert otto.status_code == 403
    ok = client.post("/api/approvals", json=body, headers=bearer(env, "root"))
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "approved"
    assert ok.json()["actor"] == "root"
    again = client.post("/api/approvals", json=body, headers=bearer(env, "root"))
    assert again.status_code == 409
    assert "already approved" in again.json()["detail"]
    shown = client.get(f"/api/plans/{plan['id']}", headers=bearer(env, "vera")).json()
    decided = next(c for c in shown["changes"] if c["id"] == change)
    assert decided["status"] == "approved"
    assert decided["approvals"][0]["actor"] == "root"
    log = client.get("/api/audit", headers=bearer(env, "otto")).json()
    actions = [(e["action"], e["actor"], e["subject"]) for e in log]
    assert ("approval.approve", "root", f"change:{change}") in actions
    assert ("plan.create", "amy", f"plan:{plan['id']}") in actions
    assert client.get("/api/audit/verify", headers=bearer(env, "otto")).json()["ok"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"change": "1/x", "decision": "approve"}, "body.reason"),
        ({"change": "1/x", "decision": "maybe", "reason": "r"}, "body.decision"),
        ({"change": "1/x", "decision": "approve", "reason": "   "}, "body.reason"),
        ({"change": "1/x", "decision": "approve", "reason": "r", "extra": 1}, "body.extra"),
    ],
)
def test_invalid_decision_names_the_field(
    client: TestClient, env: Env, body: dict[str, Any], field: str
) -> None:
    answer = client.post("/api/approvals", json=body, headers=bearer(env, "amy"))
    assert answer.status_code == 422
    assert field in [e["field"] for e in answer.json()["errors"]]
    assert field in answer.json()["detail"]


def test_domain_errors_are_clear(client: TestClient, env: Env) -> None:
    h = bearer(env, "amy")
    missing = client.get("/api/plans/latest", headers=h)
    assert (missing.status_code, missing.json()["detail"]) == (
        404,
        "no plan yet (run `patchwarden plan`)",
    )
    naive = client.post(
        "/api/exceptions",
        json={"finding": 1, "owner": "ops", "reason": "r", "until": "2099-01-01T00:00:00"},
        headers=h,
    )
    assert naive.status_code == 422
    assert "time zone" in naive.json()["detail"]
    past = client.post(
        "/api/exceptions",
        json={"finding": 1, "owner": "ops", "reason": "r", "until": "2001-01-01T00:00:00Z"},
        headers=h,
    )
    assert past.status_code == 409
    assert "not in the future" in past.json()["detail"]
    assert client.get("/api/findings/424242", headers=h).json()["detail"] == "no finding 424242"
    assert client.get("/api/findings/abc", headers=h).status_code == 422


def test_exceptions_create_list_revoke(client: TestClient, env: Env) -> None:
    h = bearer(env, "amy")
    top = client.get("/api/findings?limit=1", headers=h).json()["items"][0]
    made = client.post(
        "/api/exceptions",
        json={
            "finding": top["id"],
            "owner": "ops",
            "reason": "waf rule",
            "until": "2099-01-01T00:00:00+00:00",
        },
        headers=h,
    )
    assert made.status_code == 201, made.text
    listed = client.get("/api/findings", headers=bearer(env, "vera")).json()["items"]
    assert next(f for f in listed if f["id"] == top["id"])["excepted"] is True
    revoked = client.post(f"/api/exceptions/{made.json()['id']}/revoke", headers=h)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_by"] == "amy"
    listed = client.get("/api/findings", headers=bearer(env, "vera")).json()["items"]
    assert next(f for f in listed if f["id"] == top["id"])["excepted"] is False


def test_findings_carry_risk_and_ssvc(client: TestClient, env: Env) -> None:
    page = client.get("/api/findings?limit=5", headers=bearer(env, "vera")).json()
    assert page["total"] == 18
    scores = [f["risk"] for f in page["items"]]
    assert scores == sorted(scores, reverse=True)
    assert {f["ssvc"] for f in page["items"]} <= {"defer", "scheduled", "out-of-cycle", "immediate"}
    one = client.get(f"/api/findings/{page['items'][0]['id']}", headers=bearer(env, "vera"))
    factors = one.json()["factors"]
    assert abs(sum(f["share"] for f in factors) - 1.0) < 0.01
    action = client.get("/api/actions/shop/urllib3", headers=bearer(env, "vera")).json()
    assert action["target_version"] == "1.26.18"
    assert all("factors" in f for f in action["closes"])


def test_tokens_are_hashed_and_revocable(client: TestClient, env: Env) -> None:
    made = client.post("/api/users/vera/tokens", json={"name": "ci"}, headers=bearer(env, "root"))
    assert made.status_code == 201
    secret = made.json()["token"]
    assert client.get("/api/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    store = Store.open(env.db)
    try:
        with store.engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT secret_hash FROM api_tokens")).scalars().all()
            hashes = conn.execute(sa.text("SELECT password_hash FROM users")).scalars().all()
        entries = [e.action for e in audit.entries(store)]
    finally:
        store.close()
    assert all(h.startswith("scrypt$") for h in [*stored, *hashes])
    assert not any(secret.split("_", 2)[2] in h for h in stored)
    assert "token.create" in entries
    assert "user.create" in entries
    listed = client.get("/api/tokens", headers=bearer(env, "root")).json()
    assert "token" not in listed[0]
    assert "secret_hash" not in listed[0]
    token_id = made.json()["id"]
    assert (
        client.post(f"/api/tokens/{token_id}/revoke", headers=bearer(env, "root")).status_code
        == 200
    )
    gone = client.get("/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert gone.status_code == 401
    assert "revoked" in gone.json()["detail"]
    # disabling a user stops its tokens
    client.patch("/api/users/vera", json={"disabled": True}, headers=bearer(env, "root"))
    assert client.get("/api/me", headers=bearer(env, "vera")).status_code == 401


def test_users_created_by_admin_are_audited(client: TestClient, env: Env) -> None:
    made = client.post(
        "/api/users", json={"name": "zoe", "role": "approver"}, headers=bearer(env, "root")
    )
    assert made.status_code == 201
    dup = client.post(
        "/api/users", json={"name": "zoe", "role": "approver"}, headers=bearer(env, "root")
    )
    assert (dup.status_code, dup.json()["detail"]) == (409, "user 'zoe' already exists")
    bad = client.post(
        "/api/users", json={"name": "a b", "role": "boss"}, headers=bearer(env, "root")
    )
    assert bad.status_code == 422
    assert {"body.name", "body.role"} <= {e["field"] for e in bad.json()["errors"]}
    log = client.get("/api/audit?limit=5", headers=bearer(env, "otto")).json()
    assert (log[0]["action"], log[0]["actor"], log[0]["subject"]) == (
        "user.create",
        "root",
        "user:zoe",
    )


def test_rollouts_without_tables_is_404(client: TestClient, env: Env) -> None:
    assert client.get("/api/rollouts", headers=bearer(env, "vera")).json() == []
    store = Store.open(env.db)
    try:
        with store.transaction() as conn:
            conn.execute(sa.text("DROP TABLE rollout_steps"))
            conn.execute(sa.text("DROP TABLE rollouts"))
    finally:
        store.close()
    answer = client.get("/api/rollouts", headers=bearer(env, "vera"))
    assert answer.status_code == 404
    assert "no rollout tables" in answer.json()["detail"]


def test_reports_and_metrics(client: TestClient, env: Env) -> None:
    h = bearer(env, "vera")
    metrics = client.get("/api/reports/metrics", headers=h).json()
    assert metrics["open"] == 18
    html = client.get("/api/reports/html", headers=h)
    assert html.headers["content-type"].startswith("text/html")
    assert "<html" in html.text
    prom = client.get("/api/metrics", headers=h).text
    assert "patchwarden_open_findings 18" in prom
    assert 'patchwarden_open_findings_by_severity{severity="high"} 2' in prom
