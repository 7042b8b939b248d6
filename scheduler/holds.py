"""Holds: what a person (``solidarity hold``) or a broken file stops from being posted.

A hold names a campaign, a post, a person and an account, each or none; it covers
every occurrence whose named fields are equal (naming nothing covers everything:
the kill switch). Holds live in the ledger's database, in the ``holds`` table, so
every daemon sharing it obeys them and they survive restarts.

A hold is identified by its scope: the fields it names and its source
(``command``, or the ``path:line`` of a file problem). A person adding the same
hold again only updates its why; the daemon replaces the file holds as files
change (:meth:`HoldStore.sync_files`), keeping the since of those unchanged.

A file hold is also one node's (``scheduler.owners.node()``): each daemon
reads the files of its own machine, and one whose copy is fine (a host not yet
updated) must not lift what another's broken copy holds. The node ends the
scope (``...|path:line|node``), so the same ``path:line`` may be held by two
nodes; each daemon syncs only its own node's, and ``holds`` shows them all.
File holds written before nodes (none in the scope) are any daemon's to replace.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, delete, insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from scheduler.errors import LedgerError, UsageError, cause
from scheduler.ledger import Ledger, UTCDateTime
from scheduler.owners import node as this_node
from scheduler.redact import redact

COMMAND = "command"  # the source of a hold a person made

METADATA = MetaData()
HOLDS = Table(
    "holds",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("scope", String(800), nullable=False, unique=True),
    Column("campaign", String(200)),
    Column("post", String(200)),
    Column("person", String(200)),
    Column("account", String(200)),
    Column("why", Text, nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("source", String(600), nullable=False),
)


@dataclass(frozen=True)
class Hold:
    """One hold in force: what it names (None: anything), why, since when, and who made it."""

    campaign: str | None
    person: str | None
    account: str | None
    why: str
    since: datetime  # aware UTC
    source: str = COMMAND  # or the path:line of a file problem
    post: str | None = None  # file holds may name one post (a broken template)
    node: str | None = None  # a file hold in the ledger: the node whose files have the problem

    def covers(self, campaign: str, post: str, account: str, person: str | None) -> bool:
        """Say whether this hold stops an occurrence: every field it names must be equal."""
        return all(
            mine is None or mine == theirs
            for mine, theirs in (
                (self.campaign, campaign),
                (self.post, post),
                (self.account, account),
                (self.person, person),
            )
        )

    @property
    def what(self) -> str:
        """Say what the hold stops, for a person: 'campaign c, person p', or the kill switch."""
        named = [
            f"{label} {value}"
            for label, value in (
                ("campaign", self.campaign),
                ("post", self.post),
                ("person", self.person),
                ("account", self.account),
            )
            if value is not None
        ]
        return ", ".join(named) if named else "everything (kill switch)"

    @property
    def scope(self) -> str:
        """Identify the hold: the fields it names, its source, and a file hold's node."""
        scope = scope_of(self.campaign, self.post, self.person, self.account, self.source)
        return scope if self.node is None or self.is_command else f"{scope}|{self.node}"

    @property
    def is_command(self) -> bool:
        """Say whether a person made this hold (``resume`` lifts it) rather than a file."""
        return self.source == COMMAND


def scope_of(
    campaign: str | None, post: str | None, person: str | None, account: str | None, source: str
) -> str:
    """Return the identity of a hold as the ``holds.scope`` column stores it."""
    return f"{campaign or ''}|{post or ''}|{person or ''}|{account or ''}|{source}"


def owner_node(owner: str) -> str:
    """Return the node of a process named ``node:pid:token`` (``scheduler.owners.owner_id``)."""
    return owner.rsplit(":", 2)[0] if owner.count(":") >= 2 else owner


def _named(**names: str | None) -> None:
    """Refuse a blank name: an unset shell variable must not widen or lift a hold."""
    for key, value in names.items():
        if value is not None and not value.strip():
            raise UsageError(
                f"--{key} is empty; name a {key}, or leave --{key} out to mean every {key}"
            )


def covering(
    holds: Sequence[Hold], campaign: str, post: str, account: str, person: str | None
) -> Hold | None:
    """Return the first (oldest) hold that covers an occurrence, if any."""
    return next((h for h in holds if h.covers(campaign, post, account, person)), None)


def _hold(row: Any) -> Hold:
    return Hold(
        row.campaign, row.person, row.account, row.why, row.since, row.source, row.post, _node(row)
    )


def _node(row: Any) -> str | None:
    """Return the node a file hold's scope ends with (None: a command's, or written before nodes)."""
    if row.source == COMMAND:
        return None
    named = scope_of(row.campaign, row.post, row.person, row.account, row.source)
    if not row.scope.startswith(f"{named}|"):
        return None
    return str(row.scope[len(named) + 1 :]) or None


def _values(hold: Hold, since: datetime) -> dict[str, Any]:
    return {
        "scope": hold.scope,
        "campaign": hold.campaign,
        "post": hold.post,
        "person": hold.person,
        "account": hold.account,
        "why": hold.why,
        "since": since,
        "source": hold.source,
    }


class HoldStore:
    """The holds in the ledger's database, read and written with SQLAlchemy Core."""

    def __init__(self, ledger: Ledger) -> None:
        self.engine = ledger.engine

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[Connection]:
        try:
            with self.engine.begin() as connection:
                yield connection
        except IntegrityError:
            raise  # a concurrent writer took the same scope: the caller tries again
        except SQLAlchemyError as exc:
            raise LedgerError(f"the holds could not be {doing}: {cause(exc)}") from None

    def add(
        self,
        campaign: str | None,
        person: str | None,
        account: str | None,
        why: str,
        now: datetime,
    ) -> Hold:
        """Hold what a person names; holding the same again keeps its since and updates why."""
        _named(campaign=campaign, person=person, account=account)
        now = now.astimezone(UTC)
        why = redact(why)  # stored, then shown by status and holds
        wanted = Hold(campaign, person, account, why, now)
        for _ in range(3):  # another process may insert the same scope between read and write
            try:
                with self._transaction("written") as connection:
                    found = connection.execute(
                        select(HOLDS).where(HOLDS.c.scope == wanted.scope)
                    ).first()
                    if found is not None:
                        connection.execute(
                            sql_update(HOLDS).where(HOLDS.c.id == found.id).values(why=why)
                        )
                        return Hold(campaign, person, account, why, found.since)
                    connection.execute(insert(HOLDS).values(_values(wanted, now)))
                    return wanted
            except IntegrityError:
                continue
        raise LedgerError(f"the hold on {wanted.what} could not be written: the ledger is busy")

    def remove(self, campaign: str | None, person: str | None, account: str | None) -> list[Hold]:
        """Lift the command holds naming exactly these (None: not named); return those lifted."""
        _named(campaign=campaign, person=person, account=account)
        scope = scope_of(campaign, None, person, account, COMMAND)
        with self._transaction("written") as connection:
            found = [
                _hold(r) for r in connection.execute(select(HOLDS).where(HOLDS.c.scope == scope))
            ]
            if found:
                connection.execute(delete(HOLDS).where(HOLDS.c.scope == scope))
        return found

    def all(self) -> list[Hold]:
        """Return every hold in force, command and file, oldest first."""
        with self._transaction("read") as connection:
            rows = connection.execute(select(HOLDS).order_by(HOLDS.c.since, HOLDS.c.id))
            return [_hold(r) for r in rows]

    def sync_files(
        self, holds: Sequence[Hold], now: datetime, node: str | None = None
    ) -> tuple[list[Hold], list[Hold]]:
        """Make the file holds of this node (``node``, else this machine's) exactly these.

        Returns (added, lifted). A hold whose scope is already there keeps its
        since (its why is updated); a new one is held since ``now``. Command
        holds and the file holds of other nodes are left alone.
        """
        now = now.astimezone(UTC)
        node = node or this_node()
        wanted: dict[str, Hold] = {}
        for hold in holds:
            if hold.is_command:
                raise ValueError("sync_files takes file holds only (a source other than 'command')")
            # a file problem's message may quote a secret (a proxy URL with its password)
            mine = replace(hold, why=redact(hold.why), node=node)
            wanted.setdefault(mine.scope, mine)
        for _ in range(3):
            try:
                return self._sync(wanted, now, node)
            except IntegrityError:  # another daemon synced the same problem meanwhile
                continue
        raise LedgerError("the file holds could not be written: the ledger is busy")

    def _sync(
        self, wanted: dict[str, Hold], now: datetime, node: str
    ) -> tuple[list[Hold], list[Hold]]:
        added: list[Hold] = []
        lifted: list[Any] = []
        with self._transaction("written") as connection:
            rows = connection.execute(select(HOLDS).where(HOLDS.c.source != COMMAND)).all()
            present: dict[str, Any] = {}  # this node's file holds (and ones from before nodes)
            for row in rows:
                found = _node(row)
                scope = row.scope if found is not None else f"{row.scope}|{node}"
                if found is None and scope in wanted:  # from before nodes: now this node's
                    connection.execute(
                        sql_update(HOLDS).where(HOLDS.c.id == row.id).values(scope=scope)
                    )
                if found in (node, None):
                    present.setdefault(scope, row)
            for scope, row in present.items():
                if scope not in wanted:
                    lifted.append(row)
                elif wanted[scope].why != row.why:
                    connection.execute(
                        sql_update(HOLDS).where(HOLDS.c.id == row.id).values(why=wanted[scope].why)
                    )
            if lifted:
                connection.execute(delete(HOLDS).where(HOLDS.c.id.in_([r.id for r in lifted])))
            for scope, hold in wanted.items():
                if scope not in present:
                    connection.execute(insert(HOLDS).values(_values(hold, now)))
                    added.append(replace(hold, since=now))
        return added, [_hold(r) for r in lifted]
