"""Typed settings of an LDAP connection, built from an Airflow Connection (through ``ConnectionInfo``).

Where each setting comes from:

* **host, port, bind DN (login), password**: the Connection's fields. ``host`` may carry a scheme
  (``ldaps://dc1.contoso.com``): ``ldaps`` turns TLS on and makes 636 the default port.
* **extras** (the Connection's JSON extra): TLS, certificate checks, paging, ranged retrieval,
  timeouts, the delta method, and scope defaults (``base_dns``, ``filter``, object classes).
* **scope precedence**: the YAML wins. ``base_dns``, ``filter``, ``person_object_classes`` and
  ``group_object_classes`` from the extras fill in only what the YAML leaves out
  (``containers``, ``filter``, …), see :func:`effective_connection`.

The password is a :class:`pydantic.SecretStr`: it never appears in ``repr``, ``str``, logs or error
messages; only the ldap3 adapter reads it, when it binds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from profile_sync.config.settings import DirectoryConnection
from profile_sync.directory.errors import DirectoryError

TlsMode = Literal["none", "ldaps", "start_tls"]
"""``none``: plain LDAP (simple binds send the password in clear: use only on a trusted network);
``ldaps``: TLS from the first byte (port 636); ``start_tls``: StartTLS on the LDAP port before binding."""

ServerType = Literal["auto", "active_directory", "openldap", "generic"]
"""``auto`` reads the rootDSE: AD advertises capability 1.2.840.113556.1.4.800, OpenLDAP its
``OpenLDAProotDSE`` class. ``generic`` servers get full imports only."""

DeltaMethod = Literal["auto", "dirsync", "usn", "accesslog", "none"]
"""``auto``: DirSync on AD (falling back to uSNChanged when refused), entryCSN + accesslog on OpenLDAP."""


class LdapExtras(BaseModel):
    """The Connection extras an ``ldap`` directory understands (unknown keys are refused)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_dns: tuple[str, ...] = ()
    """Selected containers when the YAML has no ``containers`` (a list, or one string separated by ``;``)."""
    filter: str | None = None
    """RFC 4515 filter when the YAML has none."""
    person_object_classes: tuple[str, ...] | None = None
    """Object classes of people when the YAML has none (preset otherwise)."""
    group_object_classes: tuple[str, ...] | None = None
    """Object classes of groups when the YAML has none (preset otherwise)."""
    tls: TlsMode | None = None
    """TLS mode; default ``ldaps`` for an ``ldaps://`` host, else ``none``."""
    use_ssl: bool | None = None
    """Alias: ``true`` means ``tls: ldaps``."""
    start_tls: bool | None = None
    """Alias: ``true`` means ``tls: start_tls``."""
    verify: bool = True
    """Check the server certificate (chain and host name). Turn off only for a test server."""
    ca_file: str | None = None
    """PEM file of the CA(s) to trust; default: the system's trust store."""
    page_size: int = Field(default=500, ge=1, le=100_000)
    """Entries per page of a paged search (AD's MaxPageSize is 1,000)."""
    range_size: int = Field(default=1500, ge=1, le=1_000_000)
    """Values asked for per ranged-retrieval request of ``member`` (AD's MaxValRange is 1,500)."""
    connect_timeout: float = Field(default=10.0, gt=0)
    """Seconds to wait for a TCP connection."""
    receive_timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait for an answer to one request (one page)."""
    retries: int = Field(default=3, ge=1, le=20)
    """Attempts to connect and bind before the step fails as unavailable (transient)."""
    server_type: ServerType = "auto"
    """``auto``, ``active_directory``, ``openldap`` or ``generic``."""
    delta_method: DeltaMethod = "auto"
    """How delta imports read changes (see :data:`DeltaMethod`)."""
    dirsync_object_security: bool = False
    """DirSync with LDAP_DIRSYNC_OBJECT_SECURITY: no "Replicating Directory Changes" right needed, but only
    what the account may read is returned (deletes may be missed). Off: the account needs that right."""
    accesslog_base: str = "cn=accesslog"
    """OpenLDAP: suffix of the accesslog database that records deletes."""
    accesslog_max_age_days: float = Field(default=7.0, gt=0)
    """OpenLDAP: a watermark taken while the accesslog was empty is trusted this long (slapd's logpurge age)."""

    @field_validator("base_dns", "person_object_classes", "group_object_classes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.replace("\n", ";").split(";") if p.strip())
        return value


class LdapConnectionSettings(BaseModel):
    """Everything the ldap3 adapter needs to reach one directory server."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connection: str
    """The directory connection's name (for messages)."""
    conn_id: str
    """The Airflow Connection id (for messages)."""
    host: str
    """Host name or address (no scheme)."""
    port: int = Field(ge=1, le=65535)
    bind_dn: str | None = None
    """Login: a DN, or for AD a UPN (``svc@contoso.com``) or ``DOMAIN\\user``; None binds anonymously."""
    password: SecretStr | None = Field(default=None, repr=False)
    """Never logged; read only when binding."""
    tls: TlsMode = "none"
    verify: bool = True
    ca_file: str | None = None
    page_size: int = 500
    range_size: int = 1500
    connect_timeout: float = 10.0
    receive_timeout: float = 120.0
    retries: int = 3
    server_type: ServerType = "auto"
    delta_method: DeltaMethod = "auto"
    dirsync_object_security: bool = False
    accesslog_base: str = "cn=accesslog"
    accesslog_max_age_days: float = 7.0
    extras: LdapExtras = LdapExtras()
    """The extras as given (scope defaults are applied by :func:`effective_connection`)."""

    @property
    def url(self) -> str:
        """``ldap[s]://host:port`` (no credentials): safe to show."""
        return f"{'ldaps' if self.tls == 'ldaps' else 'ldap'}://{self.host}:{self.port}"

    def describe(self) -> str:
        """Where and as whom, for messages (never the password)."""
        tls = {"none": "", "ldaps": "", "start_tls": " with StartTLS"}[self.tls]
        who = f" as {self.bind_dn!r}" if self.bind_dn else " anonymously"
        return f"{self.url}{tls}{who}"

    @classmethod
    def from_connection_info(cls, connection: str, info: Any) -> "LdapConnectionSettings":
        """Build from an engine ``ConnectionInfo`` (host, port, login, password, extra).

        Raises DirectoryError (terminal) naming the Connection and the bad field or extra.
        """
        conn_id = getattr(info, "conn_id", "?")
        raw_extra = dict(getattr(info, "extra", None) or {})
        try:
            extras = LdapExtras.model_validate(raw_extra)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'extra'}: {e['msg']}" for e in exc.errors())
            known = ", ".join(LdapExtras.model_fields)
            raise DirectoryError(connection, f"Airflow Connection {conn_id!r}: invalid extra ({problems}); "
                                             f"known extras: {known}") from None
        host, scheme, port_in_host = _split_host((getattr(info, "host", None) or "").strip())
        if not host:
            raise DirectoryError(connection, f"Airflow Connection {conn_id!r} has no host: set the domain "
                                             "controller or LDAP server's host name")
        if scheme not in (None, "ldap", "ldaps"):
            raise DirectoryError(connection, f"Airflow Connection {conn_id!r}: host scheme {scheme!r} is not "
                                             "ldap:// or ldaps://")
        tls: TlsMode = extras.tls or ("ldaps" if extras.use_ssl or scheme == "ldaps" else
                                      "start_tls" if extras.start_tls else "none")
        port = getattr(info, "port", None) or port_in_host or (636 if tls == "ldaps" else 389)
        password = getattr(info, "password", None)
        login = getattr(info, "login", None) or None
        if extras.ca_file and not extras.verify:
            raise DirectoryError(connection, f"Airflow Connection {conn_id!r}: ca_file is set but verify is "
                                             "false; remove one of them")
        return cls(
            connection=connection, conn_id=conn_id, host=host, port=int(port), bind_dn=login,
            password=SecretStr(password) if password else None, tls=tls, verify=extras.verify,
            ca_file=extras.ca_file, page_size=extras.page_size, range_size=extras.range_size,
            connect_timeout=extras.connect_timeout, receive_timeout=extras.receive_timeout,
            retries=extras.retries, server_type=extras.server_type, delta_method=extras.delta_method,
            dirsync_object_security=extras.dirsync_object_security, accesslog_base=extras.accesslog_base,
            accesslog_max_age_days=extras.accesslog_max_age_days, extras=extras,
        )


def _split_host(text: str) -> tuple[str, str | None, int | None]:
    """``ldaps://dc1:636`` → (``dc1``, ``ldaps``, 636); a bare host → (host, None, None)."""
    scheme = None
    if "://" in text:
        scheme, _, text = text.partition("://")
        scheme = scheme.lower()
        text = text.strip("/")
    port = None
    if text.count(":") == 1:  # host:port (an IPv6 literal has several colons)
        name, _, digits = text.partition(":")
        if digits.isdigit():
            text, port = name, int(digits)
    return text, scheme, port


def effective_connection(conn: DirectoryConnection, settings: LdapConnectionSettings) -> DirectoryConnection:
    """``conn`` with the scope the YAML leaves out filled in from the Connection extras (the YAML wins)."""
    extras = settings.extras
    update: dict[str, Any] = {}
    if not conn.containers and extras.base_dns:
        update["containers"] = tuple(extras.base_dns)
    if conn.filter is None and extras.filter:
        update["filter"] = extras.filter
    if conn.person_object_classes is None and extras.person_object_classes is not None:
        update["person_object_classes"] = tuple(extras.person_object_classes)
    if conn.group_object_classes is None and extras.group_object_classes is not None:
        update["group_object_classes"] = tuple(extras.group_object_classes)
    out = conn.model_copy(update=update) if update else conn
    if not out.containers:
        raise DirectoryError(conn.name, f"no containers: list base DNs under 'containers' in the configuration or "
                                        f"as 'base_dns' in the extras of Airflow Connection {conn.conn_id!r}")
    if "filter" in update:
        from profile_sync.directory.ldap_filter import parse_filter

        parse_filter(update["filter"])  # a bad filter in the extras fails here, naming it
    return out
