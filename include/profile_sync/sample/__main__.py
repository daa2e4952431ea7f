"""Command line: ``python -m profile_sync.sample --people 2000 --out sample.ldif``.

Writes the sample directory as LDIF and prints what it wrote (to stderr when the LDIF goes to
stdout with ``--out -``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from profile_sync.sample.generator import generate
from profile_sync.sample.ldif_writer import write_ldif
from profile_sync.sample.model import FLAVOURS


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m profile_sync.sample",
        description="Write a deterministic sample directory (people, groups, OUs) as LDIF.",
    )
    parser.add_argument("--people", type=_count, default=2000,
                        help="accounts to generate, service accounts included (default 2000)")
    parser.add_argument("--groups", type=_count, default=100,
                        help="groups to generate (default 100)")
    parser.add_argument("--seed", type=int, default=42,
                        help="random seed; the same arguments give the same bytes (default 42)")
    parser.add_argument("--flavour", choices=FLAVOURS, default="active_directory",
                        help="active_directory (DC=contoso,DC=com) or inetorgperson "
                             "(dc=example,dc=org, for OpenLDAP)")
    parser.add_argument("--out", required=True,
                        help="LDIF file to write (parent folders are created), or - for stdout")
    parser.add_argument("--no-version-line", dest="version_line", action="store_false",
                        help="leave out 'version: 1' (OpenLDAP 2.5 slapadd rejects it)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Generate, write, report; return the exit status."""
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    directory = generate(people=args.people, groups=args.groups, seed=args.seed)
    if args.out == "-":
        summary = write_ldif(directory, sys.stdout, args.flavour, version_line=args.version_line)
        where, report = "stdout", sys.stderr
    else:
        parent = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(parent, exist_ok=True)
        summary = write_ldif(directory, args.out, args.flavour, version_line=args.version_line)
        where, report = args.out, sys.stdout
    elapsed = time.perf_counter() - started
    print(
        f"wrote {summary.people} people, {summary.groups} groups and {summary.containers} "
        f"containers ({summary.records} records, {summary.flavour}, seed {args.seed}) "
        f"to {where} in {elapsed:.2f} s",
        file=report,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
