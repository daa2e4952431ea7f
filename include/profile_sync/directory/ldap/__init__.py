"""LDAP directory connections (Active Directory, OpenLDAP, other LDAP servers) over ldap3.

* ``config``: :class:`LdapConnectionSettings` from an Airflow Connection (through ``ConnectionInfo``)
* ``client``: the one adapter around ldap3 (connect with retries, paged search, ranged retrieval,
  DirSync, modify, typed errors)
* ``reader``: full imports and the delta dispatch (:class:`LdapDirectoryReader`)
* ``active_directory`` / ``openldap``: delta imports (DirSync / uSNChanged; entryCSN + accesslog)
* ``writer``: write-back (steps 7–8): apply pending directory exports, confirm by re-reading
"""

from profile_sync.directory.ldap.config import LdapConnectionSettings, effective_connection
from profile_sync.directory.ldap.reader import LdapDirectoryReader

__all__ = ["LdapConnectionSettings", "LdapDirectoryReader", "effective_connection"]
