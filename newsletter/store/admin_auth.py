"""Admin sessions and login throttling, kept in the database (tables of migration 0006).

Both must hold across every `newsletter serve` process and a restart, which process memory
cannot: a session ended in one process must be refused by all, and an attempt counted in one
must count in all.

Sessions: the browser's signed cookie carries a random id; the row holds its sha256, the admin
it belongs to, the tag of that admin's password it was opened with, and its end. A request is
that admin's only while its row exists, has not expired and names the admin's current password
(a removed admin has none).

Login throttling: every attempt is counted *before* its password is checked, in one
transaction with the row locked (a conditional UPDATE: PostgreSQL re-checks the condition after
waiting for the lock, SQLite writes one transaction at a time), so simultaneous attempts are
counted one by one and only those allowed are checked. Each client address, and the account,
may try `free` times; after that every attempt must wait, the wait doubling each time up to a
ceiling. An address the right password came from is trusted for a while: the account's wait
(the one strangers share) does not hold it back, only its own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import math
import secrets
from collections.abc import Callable

from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from newsletter.store.engine import rows_affected
from newsletter.store.models import LEGACY_ADMIN
from newsletter.store.models import AdminSession
from newsletter.store.models import LoginThrottle

ACCOUNT_KEY = "account"
FORGET_AFTER = dt.timedelta(hours=24)  # counts restart a day after an address's last attempt
TRUST_FOR = dt.timedelta(days=30)  # an address that logged in skips the account's wait


# --- sessions --------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    session: Session,
    password_tag: str,
    lifetime: dt.timedelta,
    now: dt.datetime,
    admin_name: str = LEGACY_ADMIN,
) -> str:
    """A new session of `admin_name`; returns the random id for the cookie (the row keeps its
    hash). Expired sessions, and this admin's sessions of another password, are deleted."""
    session.execute(
        delete(AdminSession).where(
            or_(
                AdminSession.expires_at <= now,
                (AdminSession.admin_name == admin_name)
                & (AdminSession.password_tag != password_tag),
            )
        )
    )
    token = secrets.token_urlsafe(32)
    session.add(
        AdminSession(
            id_hash=_hash(token),
            password_tag=password_tag,
            created_at=now,
            expires_at=now + lifetime,
            admin_name=admin_name,
        )
    )
    return token


def session_owner(
    session: Session, token: str, tag_of: Callable[[str], str], now: dt.datetime
) -> str | None:
    """The name of the admin whose live session the cookie's id names, or None.

    `tag_of(name)` is the tag of that admin's current password ("" when there is no such admin
    any more): a session of another password means the password changed or the admin was
    removed, and all of that admin's other-password sessions end now.
    """
    row = session.get(AdminSession, _hash(token))
    if row is None or row.expires_at <= now:
        return None
    current = tag_of(row.admin_name)
    if not current or not hmac.compare_digest(row.password_tag, current):
        end_sessions_of(session, row.admin_name, keep_tag=current)
        return None
    return row.admin_name


def end_sessions_of(session: Session, admin_name: str, keep_tag: str = "") -> int:
    """End the sessions of one admin (logout, removal), except those of `keep_tag`."""
    query = delete(AdminSession).where(AdminSession.admin_name == admin_name)
    if keep_tag:
        query = query.where(AdminSession.password_tag != keep_tag)
    return rows_affected(session.execute(query))


def end_all_sessions(session: Session) -> int:
    """End every admin session of every admin."""
    return rows_affected(session.execute(delete(AdminSession)))


# --- login throttling ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LoginPolicy:
    """Attempts allowed before waits begin, the first wait (doubling), and the ceilings."""

    free_per_address: int
    free_per_account: int
    first_wait: float
    max_wait_address: float
    max_wait_account: float


@dataclasses.dataclass(frozen=True)
class Claim:
    """The answer to "may this attempt be checked?": if not, how many seconds to wait."""

    allowed: bool
    retry_after: int = 0
    on_account: bool = False  # counted on the account too (the address is not trusted)


def _wait(attempts: int, free: int, first: float, ceiling: float) -> dt.timedelta | None:
    if attempts < free or first <= 0:
        return None
    return dt.timedelta(seconds=min(ceiling, first * 2.0 ** min(attempts - free, 60)))


def _ensure_row(connection: Connection, key: str, now: dt.datetime) -> None:
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    connection.execute(
        insert(LoginThrottle)
        .values(key=key, attempts=0, last_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )


def _take(
    connection: Connection, key: str, free: int, first: float, ceiling: float, now: dt.datetime
) -> tuple[Claim, dt.datetime | None]:
    """Count one attempt on `key` if its wait is over; (claim, trusted_until)."""
    _ensure_row(connection, key, now)
    row = connection.execute(
        update(LoginThrottle)
        .where(
            LoginThrottle.key == key,
            or_(LoginThrottle.next_at.is_(None), LoginThrottle.next_at <= now),
        )
        .values(
            attempts=case(
                (LoginThrottle.last_at < now - FORGET_AFTER, 1), else_=LoginThrottle.attempts + 1
            ),
            last_at=now,
        )
        .returning(LoginThrottle.attempts, LoginThrottle.trusted_until)
    ).first()
    if row is None:
        next_at = connection.execute(
            select(LoginThrottle.next_at).where(LoginThrottle.key == key)
        ).scalar_one()
        seconds = (next_at - now).total_seconds() if next_at is not None else 1
        return Claim(False, max(1, math.ceil(seconds))), None
    attempts, trusted_until = row
    wait = _wait(attempts, free, first, ceiling)
    if wait is not None:
        connection.execute(
            update(LoginThrottle).where(LoginThrottle.key == key).values(next_at=now + wait)
        )
    return Claim(True), trusted_until


def claim_login_attempt(
    engine: Engine, address: str, policy: LoginPolicy, now: dt.datetime
) -> Claim:
    """Count a login attempt from `address` (and on the account) before its password is checked.

    Refused (nothing counted) while the address, or the account for an untrusted address, must
    wait. An allowed attempt counts as a failure until `login_succeeded` says otherwise.
    """
    with engine.connect() as connection:
        claim, trusted_until = _take(
            connection,
            _address_key(address),
            policy.free_per_address,
            policy.first_wait,
            policy.max_wait_address,
            now,
        )
        if claim.allowed and (trusted_until is None or trusted_until <= now):
            account, _ = _take(
                connection,
                ACCOUNT_KEY,
                policy.free_per_account,
                policy.first_wait,
                policy.max_wait_account,
                now,
            )
            claim = dataclasses.replace(account, on_account=True)
        if claim.allowed:
            connection.commit()
        else:
            connection.rollback()  # not checked, so counted nowhere
        return claim


def login_succeeded(
    engine: Engine, address: str, claim: Claim, policy: LoginPolicy, now: dt.datetime
) -> None:
    """The right password came from `address` (its attempt was `claim`): the address's count
    restarts and it is trusted for `TRUST_FOR`.

    On the account only this attempt is taken back: the admin's success does not forgive
    strangers' failures (those are forgotten a day after the account's last attempt).
    """
    with engine.begin() as connection:
        connection.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == _address_key(address))
            .values(attempts=0, next_at=None, trusted_until=now + TRUST_FOR)
        )
        if claim.on_account:
            attempts = LoginThrottle.attempts - 1
            connection.execute(
                update(LoginThrottle)
                .where(LoginThrottle.key == ACCOUNT_KEY, LoginThrottle.attempts > 0)
                .values(
                    attempts=attempts,
                    next_at=case(
                        (attempts < policy.free_per_account, None), else_=LoginThrottle.next_at
                    ),
                )
            )


def _address_key(address: str) -> str:
    return f"ip:{address}"[:200]
