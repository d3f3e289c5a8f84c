"""Staff accounts through the HTTP API and the command line, on a real database.

Codes come from the authenticator a staff member would use (pyotp with their secret), read at
the frozen clock's time; lockouts and session timeouts are waited out by moving that clock.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import pyotp
import pytest
from fastapi import Depends
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.integration.desk_support import overlapping
from typer.testing import CliRunner

from walletdesk import config
from walletdesk.app import create_app
from walletdesk.audit.models import AuditEvent
from walletdesk.config import Settings
from walletdesk.db import Database
from walletdesk.kit.clock import FrozenClock
from walletdesk.kit.crypto import new_data_key
from walletdesk.kit.errors import DomainError
from walletdesk.staff import service
from walletdesk.staff.api import require_staff
from walletdesk.staff.cli import staff_app
from walletdesk.staff.models import StaffRole, StaffUser
from walletdesk.wallet.gateway import SandboxGateway

PASSWORD = "quiet harbour lantern 7"


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    username: str
    secret: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def app_for(db: Database, tmp_path: Path, **overrides: Any) -> Any:
    settings = Settings(
        database_url=db.url,
        gateway_sandbox_path=tmp_path / "gateway.db",
        run_worker_in_process=False,
        **overrides,
    )
    return create_app(settings, db, SandboxGateway(settings.gateway_sandbox_path))


@pytest.fixture
def app(db: Database, tmp_path: Path, frozen_clock: FrozenClock) -> Any:
    application = app_for(db, tmp_path)

    # An endpoint for agents only, to show that an admin is not every role.
    @application.get("/test/agents-only")
    def agents_only(
        staff: Annotated[StaffUser, Depends(require_staff(StaffRole.AGENT))],
    ) -> dict[str, str]:
        return {"hello": staff.username}

    return application


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def make_staff(db: Database, username: str, role: StaffRole = StaffRole.AGENT) -> Member:
    with db.unit_of_work() as session:
        staff, secret = service.create_staff(
            session,
            username=username,
            display_name=username.title(),
            role=role,
            password=PASSWORD,
            skills=("zh-CN", "en"),
            goodwill_per_action=5000,
            goodwill_per_day=20000,
        )
        return Member(staff.id, staff.username, secret, service.issue_session(session, staff))


@pytest.fixture
def agent(db: Database) -> Member:
    return make_staff(db, "agent.li")


@pytest.fixture
def admin(db: Database) -> Member:
    return make_staff(db, "admin.wu", StaffRole.ADMIN)


def code(member: Member, clock: FrozenClock) -> str:
    return pyotp.TOTP(member.secret).at(clock.now())


def sign_in(client: TestClient, member: Member, totp: str, password: str = PASSWORD) -> Any:
    return client.post(
        "/v1/staff/login",
        json={"username": member.username, "password": password, "totp": totp},
    )


def audit_events(db: Database) -> list[AuditEvent]:
    with db.unit_of_work() as session:
        return list(session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars())


# --- signing in ------------------------------------------------------------------------------


def test_an_agent_signs_in_with_password_and_code(
    client: TestClient, agent: Member, frozen_clock: FrozenClock
) -> None:
    answer = sign_in(client, agent, code(agent, frozen_clock))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["staff"] == {
        "id": agent.id,
        "username": "agent.li",
        "display_name": "Agent.Li",
        "role": "agent",
        "skills": ["zh-CN", "en"],
    }
    assert body["expires_at"] == (frozen_clock.now() + timedelta(hours=12)).isoformat()
    me = client.get("/v1/staff/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.json()["goodwill_per_action"] == "50.00"
    assert me.json()["goodwill_per_day"] == "200.00"


def test_wrong_password_wrong_code_and_unknown_user_answer_alike(
    client: TestClient, agent: Member, frozen_clock: FrozenClock
) -> None:
    right = code(agent, frozen_clock)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    answers = [
        sign_in(client, agent, right, password="not the password"),
        sign_in(client, agent, wrong),
        client.post(
            "/v1/staff/login", json={"username": "nobody", "password": PASSWORD, "totp": right}
        ),
    ]
    assert {a.status_code for a in answers} == {401}
    assert {a.headers["content-type"] for a in answers} == {"application/problem+json"}
    assert len({a.text for a in answers}) == 1
    assert answers[0].json()["code"] == "staff_login_failed"


def test_a_code_works_once(client: TestClient, agent: Member, frozen_clock: FrozenClock) -> None:
    first = code(agent, frozen_clock)
    assert sign_in(client, agent, first).status_code == 200
    replayed = sign_in(client, agent, first)
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "staff_login_failed"
    frozen_clock.advance(timedelta(seconds=30))
    assert sign_in(client, agent, code(agent, frozen_clock)).status_code == 200


def test_ten_failures_lock_the_account_for_thirty_minutes(
    client: TestClient, db: Database, agent: Member, frozen_clock: FrozenClock
) -> None:
    for _ in range(9):
        failed = sign_in(client, agent, code(agent, frozen_clock), password="guess")
        assert failed.json()["code"] == "staff_login_failed"
    locking = sign_in(client, agent, code(agent, frozen_clock), password="guess")
    assert locking.status_code == 423
    until = (frozen_clock.now() + timedelta(minutes=30)).isoformat(timespec="seconds")
    assert locking.json()["code"] == "staff_locked"
    assert locking.json()["until"] == until
    frozen_clock.advance(timedelta(minutes=29, seconds=59))
    still_locked = sign_in(client, agent, code(agent, frozen_clock))
    assert still_locked.status_code == 423  # even the right password and code
    frozen_clock.advance(timedelta(seconds=1))
    assert sign_in(client, agent, code(agent, frozen_clock)).status_code == 200
    actions = [e.action for e in audit_events(db) if e.subject == f"staff:{agent.id}"]
    assert actions.count("staff.login_failed") == 11
    assert actions.count("staff.locked") == 1
    assert all(PASSWORD not in (e.detail_json or "") for e in audit_events(db))


def test_a_success_starts_the_failure_count_again(
    client: TestClient, agent: Member, frozen_clock: FrozenClock
) -> None:
    for _ in range(9):
        sign_in(client, agent, "000000", password="guess")
    assert sign_in(client, agent, code(agent, frozen_clock)).status_code == 200
    for _ in range(9):
        failed = sign_in(client, agent, "000000", password="guess")
    assert failed.status_code == 401


def test_an_admin_can_unlock_a_locked_account(
    client: TestClient, agent: Member, admin: Member, frozen_clock: FrozenClock
) -> None:
    for _ in range(10):
        sign_in(client, agent, "000000", password="guess")
    assert sign_in(client, agent, code(agent, frozen_clock)).status_code == 423
    unlocked = client.post(
        f"/v1/staff/users/{agent.id}/unlock", headers={**admin.auth, "Idempotency-Key": "u1"}
    )
    assert unlocked.status_code == 200
    assert unlocked.json()["locked"] is False
    assert sign_in(client, agent, code(agent, frozen_clock)).status_code == 200


def test_sign_ins_are_rate_limited_per_username(
    db: Database, tmp_path: Path, agent: Member, frozen_clock: FrozenClock
) -> None:
    app = app_for(db, tmp_path, rate_limits={"staff_login.account": "3/15m"})
    with TestClient(app) as client:
        for _ in range(3):
            sign_in(client, agent, "000000")
        refused = sign_in(client, agent, code(agent, frozen_clock))
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0


# --- roles -----------------------------------------------------------------------------------


def test_roles_decide_who_may_call_what(
    client: TestClient, agent: Member, admin: Member, db: Database
) -> None:
    supervisor = make_staff(db, "sup.chen", StaffRole.SUPERVISOR)
    assert client.get("/v1/staff/users", headers=admin.auth).status_code == 200
    for member in (agent, supervisor):
        refused = client.get("/v1/staff/users", headers=member.auth)
        assert refused.status_code == 403
        assert refused.json()["code"] == "staff_forbidden"
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
        anonymous = client.get("/v1/staff/users", headers=headers)
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "staff_auth_required"
    assert client.get("/test/agents-only", headers=agent.auth).json() == {"hello": "agent.li"}
    assert client.get("/test/agents-only", headers=admin.auth).status_code == 403


def test_a_customer_token_is_not_a_staff_token(
    client: TestClient, customer: Any, admin: Member
) -> None:
    person = customer("张伟")
    assert client.get("/v1/staff/me", headers=person.auth).status_code == 401


def test_an_admin_creates_an_account_that_can_sign_in(
    client: TestClient, db: Database, admin: Member, frozen_clock: FrozenClock
) -> None:
    new = {
        "username": "Agent.Sam",
        "display_name": "Sam Carter",
        "role": "agent",
        "password": "sam likes long passphrases",
        "skills": ["en", "disputes"],
        "goodwill_per_action": "20.00",
        "goodwill_per_day": "100",
    }
    created = client.post("/v1/staff/users", json=new, headers=admin.auth)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["staff"]["username"] == "agent.sam"
    assert body["staff"]["goodwill_per_day"] == "100.00"
    assert body["otpauth_uri"].startswith("otpauth://totp/walletdesk:agent.sam?secret=")
    secret = body["totp_secret"]
    with db.unit_of_work() as session:
        stored = session.get(StaffUser, body["staff"]["id"])
        assert stored is not None
        assert secret not in (stored.totp_secret_sealed or "")
        assert new["password"] not in stored.password_hash
    sam = Member(body["staff"]["id"], "agent.sam", secret, "")
    signed_in = sign_in(client, sam, code(sam, frozen_clock), password=new["password"])
    assert signed_in.status_code == 200
    again = client.post("/v1/staff/users", json=new, headers=admin.auth)
    assert again.json()["code"] == "staff_username_taken"
    weak = client.post(
        "/v1/staff/users",
        json={**new, "username": "agent.x", "password": "password"},
        headers=admin.auth,
    )
    assert weak.json()["code"] == "password_too_common"
    listed = client.get("/v1/staff/users", headers=admin.auth).json()
    assert [s["username"] for s in listed] == ["admin.wu", "agent.sam"]


# --- sessions --------------------------------------------------------------------------------


def test_sessions_end_after_thirty_idle_minutes(
    client: TestClient, agent: Member, frozen_clock: FrozenClock
) -> None:
    for _ in range(3):
        frozen_clock.advance(timedelta(minutes=29))
        assert client.get("/v1/staff/me", headers=agent.auth).status_code == 200
    frozen_clock.advance(timedelta(minutes=30))
    assert client.get("/v1/staff/me", headers=agent.auth).status_code == 401


def test_sessions_end_after_twelve_hours_however_busy(
    client: TestClient, agent: Member, frozen_clock: FrozenClock
) -> None:
    for _ in range(35):  # 11 h 40 min of steady use
        frozen_clock.advance(timedelta(minutes=20))
        assert client.get("/v1/staff/me", headers=agent.auth).status_code == 200
    frozen_clock.advance(timedelta(minutes=20))
    assert client.get("/v1/staff/me", headers=agent.auth).status_code == 401


def test_logout_ends_the_session(client: TestClient, agent: Member) -> None:
    assert client.post("/v1/staff/logout", headers=agent.auth).json() == {"status": "signed_out"}
    assert client.get("/v1/staff/me", headers=agent.auth).status_code == 401
    assert client.post("/v1/staff/logout", headers=agent.auth).status_code == 401


def test_a_disabled_account_cannot_sign_in_and_its_sessions_end(
    client: TestClient, agent: Member, admin: Member, frozen_clock: FrozenClock
) -> None:
    disabled = client.post(
        f"/v1/staff/users/{agent.id}/disable", headers={**admin.auth, "Idempotency-Key": "d1"}
    )
    assert disabled.status_code == 200
    assert disabled.json()["disabled_at"] is not None
    assert client.get("/v1/staff/me", headers=agent.auth).status_code == 401
    refused = sign_in(client, agent, code(agent, frozen_clock))
    assert refused.json()["code"] == "staff_login_failed"
    own = client.post(
        f"/v1/staff/users/{admin.id}/disable", headers={**admin.auth, "Idempotency-Key": "d2"}
    )
    assert own.json()["code"] == "staff_cannot_disable_self"


def test_resealing_moves_staff_secrets_to_the_newest_key(
    client: TestClient,
    db: Database,
    agent: Member,
    frozen_clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    current = Settings.model_fields["data_keys"].default
    monkeypatch.setenv("WALLETDESK_DATA_KEYS", f"{current},k2:{new_data_key()}")
    config.get_settings.cache_clear()
    try:
        with db.unit_of_work() as session:
            assert service.reseal_secrets(session) == 1
            assert service.reseal_secrets(session) == 0
        assert sign_in(client, agent, code(agent, frozen_clock)).status_code == 200
    finally:
        config.get_settings.cache_clear()


# --- demo staff --------------------------------------------------------------------------------


def test_demo_staff_sign_in_with_the_published_secrets(
    client: TestClient, db: Database, frozen_clock: FrozenClock
) -> None:
    for _ in range(2):  # loading twice changes nothing
        with db.unit_of_work() as session:
            service.seed_demo(session)
    me = client.get("/v1/staff/me", headers={"Authorization": "Bearer demo-agent-li"})
    assert me.json()["display_name"] == "李静"
    assert me.json()["skills"] == ["zh-CN", "en", "payments"]
    assert me.json()["goodwill_per_day"] == "200.00"
    roles = {
        s["username"]: s["role"]
        for s in client.get(
            "/v1/staff/users", headers={"Authorization": "Bearer demo-admin-wu"}
        ).json()
    }
    assert roles == {
        "admin.wu": "admin",
        "agent.li": "agent",
        "agent.sam": "agent",
        "risk.zhao": "risk_analyst",
        "sup.chen": "supervisor",
    }
    totp = pyotp.TOTP(service.DEMO_TOTP_SECRET).at(frozen_clock.now())
    answer = client.post(
        "/v1/staff/login",
        json={"username": "sup.chen", "password": "sup.chen-demo-passphrase", "totp": totp},
    )
    assert answer.status_code == 200


@pytest.mark.parametrize("name", config.DEMO_SECRETS)
def test_demo_staff_are_refused_once_any_real_secret_is_set(
    db: Database, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    real = "k1:" + "A" * 43 if name == "data_keys" else f"a-real-{name}"
    monkeypatch.setenv(f"WALLETDESK_{name.upper()}", real)
    config.get_settings.cache_clear()
    try:
        with pytest.raises(DomainError) as refused, db.unit_of_work() as session:
            service.seed_demo(session)
    finally:
        config.get_settings.cache_clear()
    assert refused.value.code == "staff_demo_refused"


# --- the command line (a real SQLite file) -----------------------------------------------------


@pytest.fixture
def cli_db(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    path = tmp_path / "cli.db"
    shutil.copy(sqlite_template, path)
    monkeypatch.setenv("WALLETDESK_DATABASE_URL", f"sqlite:///{path}")
    config.get_settings.cache_clear()
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()
    config.get_settings.cache_clear()


def test_cli_creates_lists_and_unlocks_staff(cli_db: Database, frozen_clock: FrozenClock) -> None:
    runner = CliRunner()
    created = runner.invoke(
        staff_app,
        [
            "create",
            "agent.li",
            "--role",
            "agent",
            "--name",
            "李静",
            "--skills",
            "zh-CN,en",
            "--goodwill-per-action",
            "50.00",
            "--goodwill-per-day",
            "200.00",
        ],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert created.exit_code == 0, created.output
    assert PASSWORD not in created.output
    secret = next(
        line.split("secret:")[1].strip()
        for line in created.output.splitlines()
        if "secret:" in line
    )
    assert "otpauth://totp/walletdesk:agent.li?secret=" + secret in created.output
    with cli_db.unit_of_work() as session:
        li = service.staff_by_username(session, "agent.li")
        assert (li.skills, li.goodwill_per_action, li.goodwill_per_day) == (
            ["zh-CN", "en"],
            5000,
            20000,
        )
        token = service.login(
            session, "agent.li", PASSWORD, pyotp.TOTP(secret).at(frozen_clock.now())
        )
        assert service.staff_for_token(session, token) is not None

    from_stdin = runner.invoke(
        staff_app,
        ["create", "risk.zhao", "--role", "risk_analyst", "--name", "赵", "--password-stdin"],
        input="short\n",
    )
    assert from_stdin.exit_code == 1
    assert "password_too_short" in from_stdin.output

    with cli_db.unit_of_work() as session:
        service.staff_by_username(session, "agent.li").locked_until = (
            frozen_clock.now() + timedelta(minutes=30)
        )
    assert "locked" in runner.invoke(staff_app, ["list"]).output
    unlocked = runner.invoke(staff_app, ["unlock", "agent.li"])
    assert unlocked.exit_code == 0, unlocked.output
    listed = runner.invoke(staff_app, ["list"]).output
    assert "agent.li" in listed and "active" in listed
    assert runner.invoke(staff_app, ["unlock", "nobody"]).exit_code == 1


def test_one_code_signs_in_once_even_with_two_sign_ins_at_once(
    db: Database, agent: Member, frozen_clock: FrozenClock
) -> None:
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite runs one writer at a time: two sign-ins cannot overlap there")
    totp = code(agent, frozen_clock)

    def sign_in_now(session: Any) -> str:
        return service.login(session, agent.username, PASSWORD, totp)

    first, second = overlapping(db, sign_in_now, sign_in_now)

    assert isinstance(first, str)
    assert isinstance(second, DomainError) and second.code == "staff_login_failed"
