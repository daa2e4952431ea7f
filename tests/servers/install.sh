#!/usr/bin/env bash
# Install the real servers the integration tests start as throwaway instances:
# OpenLDAP (slapd), Samba AD DC, PostgreSQL, plus iproute2 (`ip netns`) for the
# Samba network namespace, openssl (test CA), LDAP/SASL headers (python-ldap builds),
# Chromium + chromedriver for browser tests, and djpeg (libjpeg-turbo-progs) to decode
# the sample pictures.
#
# Idempotent and non-interactive: only missing packages are installed, and
# `apt-get update` runs only when something has to be installed. No service is
# left running: a policy-rc.d that answers 101 is in place while apt runs, the
# services of freshly installed packages are disabled (the Debian default PostgreSQL
# cluster is set to `manual`), and slapd is preseeded so no default instance is
# created at all. The tests start their own throwaway instances (tests/servers/*.py).
#
# Another apt or dpkg at work (unattended-upgrades, a second install.sh, a developer's
# apt) holds its locks: apt-get is retried while it fails for that reason, for up to
# PSYNC_APT_LOCK_WAIT seconds (default 900), instead of failing at once.
#
# Usage: tests/servers/install.sh   (Debian 12; re-runs itself with sudo when it has
# to install something and is not root; with nothing missing it needs no privileges)
set -euo pipefail

# ------------------------------------------------------------------ lock-aware apt
LOCK_WAIT=${PSYNC_APT_LOCK_WAIT:-900}   # seconds to wait, in all, for other apt/dpkg runs
LOCK_POLL=${PSYNC_APT_LOCK_POLL:-5}     # seconds between attempts
LOCK_MESSAGES='Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock|is locked by another process'

# retry_on_lock LOG COMMAND...: run COMMAND, its output appended to LOG; while it fails because
# another apt/dpkg holds a lock, wait and run it again, for up to LOCK_WAIT seconds in all.
retry_on_lock() {
  local log=$1; shift
  local attempt deadline=$((SECONDS + LOCK_WAIT)) rc
  attempt=$(mktemp /tmp/psync-apt-attempt-XXXXXX.log)
  while true; do
    rc=0
    "$@" >"$attempt" 2>&1 || rc=$?
    cat "$attempt" >>"$log"
    if ((rc == 0)); then rm -f "$attempt"; return 0; fi
    if ! grep -qE "$LOCK_MESSAGES" "$attempt" || ((SECONDS >= deadline)); then
      rm -f "$attempt"
      return "$rc"
    fi
    echo "install.sh: another apt/dpkg holds its lock; waiting (at most $((deadline - SECONDS)) s more)" >&2
    sleep "$LOCK_POLL"
  done
}

main() {
  export DEBIAN_FRONTEND=noninteractive
  start_ts=$(date +%s.%N)

  # Package set. --no-install-recommends keeps it small; samba-ad-provision is only a
  # Recommends of samba-ad-dc but provisioning needs its setup files, so it is named.
  PACKAGES=(
    slapd ldap-utils
    samba-ad-dc samba-ad-provision
    postgresql
    iproute2 openssl
    libldap2-dev libsasl2-dev
    chromium chromium-driver
    libjpeg-turbo-progs
    redis-server
  )

  missing=()
  for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    if [[ $status != ii* ]]; then
      missing+=("$pkg")
    fi
  done

  if ((${#missing[@]} > 0)) && [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      echo "install.sh: missing ${missing[*]}; re-running with sudo"
      exec sudo -- bash "$0" "$@"
    fi
    echo "install.sh: missing ${missing[*]} and not root: run it as root" >&2
    exit 1
  fi

  if ((${#missing[@]} == 0)); then
    echo "install.sh: all packages already installed: ${PACKAGES[*]}"
  else
    echo "install.sh: installing: ${missing[*]}"
    # No default slapd instance (DESIGN §6b).
    log=$(mktemp /tmp/psync-install-XXXXXX.log)
    retry_on_lock "$log" bash -c 'echo "slapd slapd/no_configuration boolean true" | debconf-set-selections' ||
      { cat "$log" >&2; exit 1; }

    # Keep apt from starting services (slapd, samba, postgresql) that would grab ports.
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [[ ! -e $policy ]]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy"
      chmod 0755 "$policy"
      own_policy=1
    fi
    cleanup() { if ((own_policy)); then rm -f "$policy"; fi; }
    trap cleanup EXIT

    if ! { retry_on_lock "$log" apt-get update -qq &&
           retry_on_lock "$log" apt-get install -y -q --no-install-recommends \
             -o DPkg::Lock::Timeout="$LOCK_WAIT" "${missing[@]}"; }; then
      tail -40 "$log" >&2
      echo "install.sh: apt-get failed; full log: $log" >&2
      exit 1
    fi
    rm -f "$log"
    cleanup
    trap - EXIT
  fi

  # Services of packages installed by this run must not listen now or after a reboot:
  # stop what apt may have started and disable it. Packages that were already installed
  # are the machine owner's business and left alone.
  installed_now() {
    local p
    for p in "${missing[@]}"; do [[ $p == "$1" ]] && return 0; done
    return 1
  }
  stop_by_pidfile() {
    local pidfile=$1
    if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      echo "install.sh: stopping pid $(cat "$pidfile") ($pidfile)"
      kill -TERM "$(cat "$pidfile")" || true
    fi
  }
  disable_service() {
    local svc=$1
    if command -v deb-systemd-helper >/dev/null 2>&1; then
      deb-systemd-helper disable "$svc.service" >/dev/null 2>&1 || true
    fi
    if [[ -e /etc/init.d/$svc ]] && command -v update-rc.d >/dev/null 2>&1; then
      update-rc.d "$svc" disable >/dev/null 2>&1 || true
    fi
  }
  if installed_now postgresql && command -v pg_lsclusters >/dev/null 2>&1; then
    while read -r ver name _port status _rest; do
      [[ -z ${ver:-} || $ver == Ver ]] && continue
      if [[ $status == online* ]]; then
        echo "install.sh: stopping PostgreSQL cluster $ver/$name"
        pg_ctlcluster "$ver" "$name" stop -m fast || true
      fi
      conf=/etc/postgresql/$ver/$name/start.conf
      if [[ -f $conf ]] && grep -qx auto "$conf"; then
        echo "install.sh: setting $conf to manual"
        sed -i 's/^auto$/manual/' "$conf"
      fi
    done < <(pg_lsclusters 2>/dev/null)
    disable_service postgresql
  fi
  if installed_now slapd; then
    stop_by_pidfile /run/slapd/slapd.pid
    disable_service slapd
  fi
  if installed_now samba-ad-dc; then
    for svc_pid in samba-ad-dc:samba smbd:smbd nmbd:nmbd winbind:winbindd; do
      stop_by_pidfile "/run/samba/${svc_pid#*:}.pid"
      disable_service "${svc_pid%%:*}"
    done
  fi

  end_ts=$(date +%s.%N)
  echo "install.sh: installed ${#missing[@]} package(s)${missing:+: ${missing[*]}}"
  for pkg in "${PACKAGES[@]}"; do
    printf '  %-22s %s\n' "$pkg" "$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || echo '?')"
  done
  awk -v a="$start_ts" -v b="$end_ts" 'BEGIN { printf "install.sh: done in %.1f s\n", b - a }'
}

# Sourced (by a test of retry_on_lock): define the functions only.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
