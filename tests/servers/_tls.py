"""A throwaway CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._util import require_binary, run

__all__ = ["TlsFiles", "make_server_certificate"]


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a test CA and a server certificate it signed."""

    ca_file: Path
    """CA certificate: what a client passes as its trust anchor (ldap3 ``Tls(ca_certs_file=...)``)."""
    cert_file: Path
    """Server certificate (SAN: the host names and 127.0.0.1)."""
    key_file: Path
    """Server private key, unencrypted, mode 0600."""


def make_server_certificate(
    directory: Path,
    host_names: Sequence[str] = ("localhost",),
    days: int = 3650,
) -> TlsFiles:
    """Create ``ca.pem``, ``server.pem``, ``server.key`` in *directory* (EC P-256, fast to make)."""
    openssl = require_binary("openssl", "openssl")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_pem = directory / "ca.key", directory / "ca.pem"
    key, csr, pem = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    san = ",".join([*(f"DNS:{h}" for h in host_names), "IP:127.0.0.1"])
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={san}\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(
        [openssl, "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_pem),
         "-days", str(days), "-subj", "/CN=Profile Sync test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        timeout=30, what="openssl req (CA)",
    )
    run(
        [openssl, "req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={host_names[0]}"],
        timeout=30, what="openssl req (server)",
    )
    run(
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_pem), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(pem), "-days", str(days), "-extfile", str(ext)],
        timeout=30, what="openssl x509 (sign)",
    )
    for path in (ca_key, key):
        path.chmod(0o600)
    return TlsFiles(ca_file=ca_pem, cert_file=pem, key_file=key)
