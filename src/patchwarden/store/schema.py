"""The relational schema (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Migrations in ``migrations/versions`` create and evolve exactly these tables; a test checks
that the migrated database and this metadata agree.

Installed packages are stored once per distinct package (``packages``); each asset keeps its
inventory as ONE row (``asset_inventories``: the package ids packed into a blob). A fleet of
10,000 hosts x 1,500 packages is then 10,000 rows of 12 KB instead of 15 million link rows,
and an unchanged inventory (same ``assets.inventory_digest``) is not written again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

feeds = Table(
    "feeds",
    metadata,
    Column("feed", String(64), primary_key=True),
    Column("version", String(128)),
    Column("date", UtcDateTime()),
    Column("path", Text, nullable=False, default=""),
    Column("imported_at", UtcDateTime(), nullable=False),
    Column("records", Integer, nullable=False, default=0),
)

advisories = Table(
    "advisories",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("source", String(64), nullable=False, index=True),
    Column("modified", UtcDateTime(), nullable=False),
    Column("published", UtcDateTime()),
    Column("withdrawn", UtcDateTime()),
    Column("summary", Text, nullable=False, default=""),
    Column("record", JSON, nullable=False),
    Column("imported_at", UtcDateTime(), nullable=False),
)

advisory_ids = Table(
    "advisory_ids",
    metadata,
    Column(
        "advisory_id",
        String(255),
        ForeignKey("advisories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("other_id", String(255), primary_key=True),
    Column("relation", String(16), primary_key=True),
    Index("ix_advisory_ids_other", "other_id"),
)
"""Every alias / upstream / related id of an advisory (relation: alias, upstream, related)."""

affected_names = Table(
    "affected_names",
    metadata,
    Column(
        "advisory_id",
        String(255),
        ForeignKey("advisories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("ecosystem_base", String(64), primary_key=True),
    Column("name", String(512), primary_key=True),
    Index("ix_affected_names_lookup", "ecosystem_base", "name"),
)
"""Which (base ecosystem, normalised name) each advisory affects: the matcher loads only
advisories for names that are installed somewhere."""

vulnerabilities = Table(
    "vulnerabilities",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("aliases", JSON, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("severity", String(16), nullable=False),
    Column("cvss_score", Float),
    Column("cvss_vector", String(255)),
    Column("cvss_source", String(255)),
)
"""One row per vulnerability (an alias group), keyed by its canonical id."""

vulnerability_ids = Table(
    "vulnerability_ids",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("vulnerability", String(255), nullable=False, index=True),
)
"""Every known id -> canonical vulnerability id."""

kev = Table(
    "kev",
    metadata,
    Column("cve_id", String(64), primary_key=True),
    Column("date_added", Date, nullable=False),
    Column("due_date", Date),
    Column("known_ransomware", Boolean, nullable=False),
    Column("vendor", Text, nullable=False, default=""),
    Column("product", Text, nullable=False, default=""),
    Column("name", Text, nullable=False, default=""),
)

epss = Table(
    "epss",
    metadata,
    Column("cve_id", String(64), primary_key=True),
    Column("epss", Float, nullable=False),
    Column("percentile", Float, nullable=False),
)

assets = Table(
    "assets",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("environment", String(16), nullable=False),
    Column("criticality", Integer, nullable=False),
    Column("internet_exposed", Boolean, nullable=False),
    Column("data_sensitivity", Integer, nullable=False),
    Column("service", String(255)),
    Column("owner", String(255)),
    Column("tags", JSON, nullable=False),
    Column("maintenance_window", String(255)),
    Column("distro", String(64)),
    Column("inventory_source", Text, nullable=False, default=""),
    Column("inventory_digest", String(64)),
    Column("advisory_digest", String(64)),
    Column("package_count", Integer, nullable=False, default=0),
    Column("last_scanned", UtcDateTime()),
    Column("source_signature", String(64)),
    Column("unsupported_count", Integer),
)
"""An asset, its context and its latest inventory's digest. ``source_signature`` is the
signature of the files a fleet scan collected that inventory from (see
:func:`patchwarden.collect.source_signature`; NULL when it was not collected from plain files
or not by a fleet scan) and ``unsupported_count`` how many of its packages had no version
ordering: a fleet scan that finds the same signature reuses the stored inventory unread."""

packages = Table(
    "packages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ecosystem", String(64), nullable=False),
    Column("name", String(512), nullable=False),
    Column("version", String(255), nullable=False),
    Column("source_name", String(512), nullable=False, default=""),
    Column("source_version", String(255), nullable=False, default=""),
    Column("purl", Text),
    UniqueConstraint("ecosystem", "name", "version", "source_name", "source_version"),
)

asset_inventories = Table(
    "asset_inventories",
    metadata,
    Column("asset_id", String(255), ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Column("package_ids", LargeBinary, nullable=False),
    Column("locations", JSON, nullable=False),
)
"""One row per asset: its distinct installed packages. ``package_ids`` are ``packages.id``
values in inventory-row order (sorted by package line), packed as little-endian signed 64-bit
integers (:func:`patchwarden.store.bulk.pack_ids`); ``locations`` are the rows' locations as
``[[location, count], ...]`` runs in the same order (:func:`patchwarden.store.bulk.runs`)."""

match_cache = Table(
    "match_cache",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("key", String(1024), primary_key=True),
    Column("result", JSON, nullable=False),
)
"""What matching one package key found (:func:`patchwarden.store.codec.encode_match_result`),
under ``digest``: the advisory set's digest combined with the matching code's, so a result is
reused only while both are the same. A rescan then matches only keys no earlier scan of the
same advisories matched; ``key`` is ``ecosystem\\tname\\tversion``. Rows of other digests
are deleted when a scan starts."""

fleet_cache = Table(
    "fleet_cache",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("data", Text, nullable=False),
    Column("saved_at", UtcDateTime(), nullable=False),
)
"""Fleet files loaded without problems, by the SHA-256 of their bytes: their data and asset
lines as JSON, so that loading the same file again skips the YAML parse (see
:func:`patchwarden.inventory.fleet.load_fleet`); the few latest are kept."""

advisory_state = Table(
    "advisory_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("digest", String(64)),
    Column("fingerprint", String(255)),
)
"""One row (``id = 1``): the digest of the advisory set
(:meth:`patchwarden.store.Store.advisory_digest`) and the fingerprint of the tables it was
computed from (row counts, latest import). Imports clear it; a fingerprint that differs
from the tables' means a write that did not clear it, and the digest is computed again."""

findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asset_id", String(255), ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    Column("ecosystem", String(64), nullable=False),
    Column("package", String(512), nullable=False),
    Column("installed_version", String(255), nullable=False),
    Column("binaries", JSON, nullable=False),
    Column("vulnerability", String(255), nullable=False),
    Column("advisories", JSON, nullable=False),
    Column("fix_state", String(32), nullable=False),
    Column("fixed_version", String(255)),
    Column("first_seen", UtcDateTime(), nullable=False),
    Column("last_seen", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime()),
    Column("risk", Float),
    Column("ssvc", SmallInteger),
    UniqueConstraint("asset_id", "ecosystem", "package", "vulnerability"),
    Index("ix_findings_open", "resolved_at", "asset_id"),
)
"""One vulnerability on one asset's package, kept across scans. ``last_seen`` is written when
a scan matched the asset and saw the finding; for an OPEN finding, later scans that skipped
the unchanged asset count as seen too (``assets.last_scanned``; see
:meth:`patchwarden.store.Store.touch_unchanged`).

``risk`` and ``ssvc`` are the finding's risk score and SSVC decision rank
(:class:`patchwarden.risk.Decision` ``.rank``) under the weights and intel of
``risk_state.basis``, kept so that a fleet's ranking survives between scans and a rescan
scores only what changed (:func:`patchwarden.prioritize.rank`). NULL means not scored yet:
new findings written without a scorer, findings of an asset whose context changed, and every
finding after the basis changed."""

risk_state = Table(
    "risk_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("basis", String(64), nullable=False),
    Column("weights", JSON, nullable=False),
)
"""One row (``id = 1``): the digest of the risk weights, scoring code and intel (advisories,
KEV, EPSS) the stored ``findings.risk`` values were computed with
(:func:`patchwarden.prioritize.risk_basis`), and the weights themselves
(:meth:`patchwarden.risk.RiskWeights.to_json`): a scan or ranking not given weights keeps
these, so a rollout's re-scan does not re-rank the fleet with other weights."""

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("inputs_digest", String(64), nullable=False),
    Column("details", Text, nullable=False),
    Column("key_id", String(16)),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_hash", "hash"),
    Index("ix_audit_log_at", "at"),
)
"""The hash-chained audit trail (see :mod:`patchwarden.audit`); rows are only ever appended.

``details`` is the canonical JSON text that was hashed (text, not a JSON column, so that no
backend re-serialises it)."""

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)
"""One row (``id = 1``): the last appended entry's seq and hash. Every append updates it
first, which serialises concurrent writers on both backends."""

risk_acceptances = Table(
    "risk_acceptances",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("finding_id", Integer, ForeignKey("findings.id", ondelete="CASCADE"), nullable=False),
    Column("owner", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime()),
    Column("revoked_by", String(255)),
    Column("expiry_recorded_at", UtcDateTime()),
    Index("ix_risk_acceptances_finding", "finding_id"),
)
"""Exceptions (risk acceptance) on findings: owner, reason, expiry; an expired one re-opens
the finding."""

plans = Table(
    "plans",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("policy_digest", String(64), nullable=False),
    Column("summary", JSON, nullable=False),
    Column("unscheduled", JSON, nullable=False),
)
"""A remediation plan as the scheduler produced it (changes in ``changes``)."""

changes = Table(
    "changes",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("plan_id", Integer, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    Column("asset_id", String(255), nullable=False),
    Column("slot_start", UtcDateTime()),
    Column("slot_end", UtcDateTime()),
    Column("ring", String(32), nullable=False),
    Column("wave", Integer, nullable=False),
    Column("gate", String(32), nullable=False),
    Column("gate_rule", Text, nullable=False),
    Column("sla_deadline", UtcDateTime()),
    Column("breach", Boolean, nullable=False),
    Column("emergency", Boolean, nullable=False),
    Column("disruption", String(16), nullable=False),
    Column("actions", JSON, nullable=False),
    Column("status", String(32), nullable=False),
    Index("ix_changes_plan", "plan_id"),
)
"""One asset's actions in one slot; ``status`` is pending_approval, approved, rejected, ..."""

approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("change_id", String(64), ForeignKey("changes.id", ondelete="CASCADE"), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Index("ix_approvals_change", "change_id"),
)
"""Every approve / reject decision on a change: who, when, why."""

vex_statements = Table(
    "vex_statements",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("document", String(512), nullable=False, index=True),
    Column("source", Text, nullable=False),
    Column("vulnerability", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("record", JSON, nullable=False),
    Column("imported_at", UtcDateTime(), nullable=False),
)
"""Imported VEX statements (issue 9); a ``not_affected`` one suppresses the findings it
covers while it is stored. Re-importing a document replaces all of its statements."""

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("plan_id", Integer, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    Column("state", String(16), nullable=False),
    Column("backend", String(32), nullable=False),
    Column("options", JSON, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
    Column("runner", String(255)),
    Column("halt_reason", Text),
    Column("simulated", JSON),
    Index("ix_rollouts_plan", "plan_id"),
)
"""One run of a plan (issue 5): state running, completed, halted or aborted; the backend and
options it was started with (resume uses the same); ``runner`` is ``host:pid`` of the process
running it; ``simulated`` is the simulate backend's package table (saved with every step)."""

rollout_steps = Table(
    "rollout_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rollout_id", Integer, ForeignKey("rollouts.id", ondelete="CASCADE"), nullable=False),
    Column("change_id", String(64), nullable=False),
    Column("asset_id", String(255), nullable=False),
    Column("ring", String(32), nullable=False),
    Column("wave", Integer, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("step", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("outcome", JSON),
    Column("started_at", UtcDateTime()),
    Column("finished_at", UtcDateTime()),
    UniqueConstraint("rollout_id", "change_id", "step"),
    Index("ix_rollout_steps_rollout", "rollout_id", "change_id"),
)
"""Every step of a rollout, written before (``running``) and after (``done``/``failed``) it
runs; the ``change`` step of each change holds its final outcome (``planned`` until then,
``skipped`` for rejected or unapproved changes)."""

rollout_hosts = Table(
    "rollout_hosts",
    metadata,
    Column("asset_id", String(255), primary_key=True),
    Column("connection", JSON, nullable=False),
    Column("source", Text, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
"""How to reach each asset (the fleet file's ``connection:`` blocks, stored by
``rollout start --fleet``)."""

pending_restarts = Table(
    "pending_restarts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("finding_id", Integer, ForeignKey("findings.id", ondelete="CASCADE"), nullable=False),
    Column("asset_id", String(255), nullable=False),
    Column("rollout_id", Integer),
    Column("units", JSON, nullable=False),
    Column("reboot", Boolean, nullable=False),
    Column("since", UtcDateTime(), nullable=False),
    Column("cleared_at", UtcDateTime()),
    Index("ix_pending_restarts_finding", "finding_id", "cleared_at"),
)
"""Findings whose fixed package is installed but whose old code still runs (a service to
restart, a reboot): "pending restart" while ``cleared_at`` is NULL."""

feed_sources = Table(
    "feed_sources",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("url", Text, nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("sha256", String(64)),
    Column("bytes", BigInteger),
    Column("checked_at", UtcDateTime()),
    Column("synced_at", UtcDateTime()),
    Column("status", String(32), nullable=False),
    Column("message", Text, nullable=False, default=""),
)
"""Issue 7: per download source (``kev``, ``epss``, ``nvd``, ``osv-PyPI``) the validators of
the last download that was imported (ETag, Last-Modified, sha256) and the last outcome, so
that ``feeds sync`` asks conditionally and says when it kept the previous data."""

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("cycle", String(64), nullable=False),
    Column("step", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("after", String(255)),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(255)),
    Column("lease_expires", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("started_at", UtcDateTime()),
    Column("finished_at", UtcDateTime()),
    Column("result", JSON),
    Column("error", Text),
    Index("ix_jobs_state", "state", "seq"),
)
"""Issue 7: the daemon's job queue. One row per step of one scheduled cycle (id
``<cycle>:<step>``); workers claim a row with ``SELECT ... FOR UPDATE SKIP LOCKED`` and hold
it under a lease that a crashed worker's successor takes over once it expires."""

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("disabled_at", UtcDateTime()),
)
"""People and service accounts of ``patchwarden serve`` (issue 7): role viewer, operator,
approver or admin; ``password_hash`` is ``scrypt$n$r$p$salt$hash`` (NULL: token login only)."""

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("secret_hash", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("expires_at", UtcDateTime()),
    Column("revoked_at", UtcDateTime()),
    Index("ix_api_tokens_user", "user_id"),
)
"""API tokens (``pw_<id>_<secret>``); only a salted scrypt hash of the secret is stored."""

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
"""Dashboard sessions: the SHA-256 of the (256-bit random) cookie value and the session's
CSRF token."""

learn_models = Table(
    "learn_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trained_at", UtcDateTime(), nullable=False),
    Column("trigger", String(64), nullable=False),
    Column("method", String(32), nullable=False),
    Column("observations", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("data_digest", String(64), nullable=False),
    Column("params", JSON, nullable=False),
)
"""Fitted patch-failure models (issue 6 section 2), newest last: when and why each was trained
(``trigger``: ``rollout:N`` or ``cli``), on how many outcomes (and a digest of them), and the
fitted parameters (:meth:`patchwarden.learn.model.FailureModel.to_json`)."""
