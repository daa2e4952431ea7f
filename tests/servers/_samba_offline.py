"""Offline seeding of a stopped Samba AD DC: apply LDIF straight to sam.ldb through the dsdb stack.

Run with the system interpreter that has Samba's bindings (``/usr/bin/python3``), never
while ``samba`` runs on the same directory:

    /usr/bin/python3 _samba_offline.py SMB_CONF LDIF_PATH [BATCH]

Opening ``sam.ldb`` with the system session loads the same module stack the LDAP server
uses (samldb, repl_meta_data, linked_attributes, descriptor, ...), so objects get
objectGUID, objectSid, uSNCreated/uSNChanged, replPropertyMetaData, whenCreated and
memberOf backlinks exactly as an LDAP add would give them; only the network, the bind and
one transaction per entry are skipped. Prints one JSON line of counts and timings.
"""

from __future__ import annotations

import json
import sys
import time


def main(smb_conf: str, ldif_path: str, batch: int) -> dict[str, float | int]:
    import ldb
    from samba.auth import system_session
    from samba.param import LoadParm
    from samba.samdb import SamDB

    lp = LoadParm()
    lp.load(smb_conf)
    t0 = time.monotonic()
    # batch_mode:1 drops ldb's per-operation sub-transaction (whose index-cache merge makes
    # every add cost O(entries so far)); a failed operation then fails the whole
    # transaction, which is what we want anyway. Samba's own join/provision use it.
    samdb = SamDB(
        url=lp.private_path("sam.ldb"),
        session_info=system_session(),
        lp=lp,
        options=["batch_mode:1", "transaction_index_cache_size:200000"],
    )
    with open(ldif_path, encoding="utf-8") as fh:
        text = fh.read()
    counts = {"add": 0, "modify": 0, "delete": 0}
    t1 = time.monotonic()
    pending = 0
    samdb.transaction_start()
    try:
        for changetype, msg in samdb.parse_ldif(text):
            if changetype == ldb.CHANGETYPE_MODIFY:
                samdb.modify(msg)
                counts["modify"] += 1
            elif changetype == ldb.CHANGETYPE_DELETE:
                samdb.delete(msg.dn)
                counts["delete"] += 1
            else:  # NONE (plain content record) or ADD
                samdb.add(msg)
                counts["add"] += 1
            pending += 1
            if pending >= batch:
                samdb.transaction_commit()
                samdb.transaction_start()
                pending = 0
    except BaseException:
        samdb.transaction_cancel()
        raise
    samdb.transaction_commit()
    t2 = time.monotonic()
    return {**counts, "open_s": round(t1 - t0, 3), "apply_s": round(t2 - t1, 3)}


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: _samba_offline.py SMB_CONF LDIF_PATH [BATCH]")
    batch_size = int(sys.argv[3]) if len(sys.argv) == 4 else 100_000
    print(json.dumps(main(sys.argv[1], sys.argv[2], batch_size)), flush=True)
