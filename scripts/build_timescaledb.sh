#!/usr/bin/env bash
# Builds TimescaleDB (Apache-licensed part) from Debian's source package in trixie against
# this machine's PostgreSQL 15, and installs it into PostgreSQL's directories.
#
# The source comes through apt itself, from the Debian mirror this machine is already
# configured with (read from its apt sources), using a private apt state in a temp folder so
# the machine's own package lists are not touched. apt checks the files against the signed
# archive index.
set -euo pipefail

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822 stanzas: take the URI of the one that serves Debian's bookworm main.
    mirror=$(awk '
        /^URIs:/ {uri=$2} /^Suites:/ {suites=$0} /^Components:/ {comps=$0}
        /^$/ { if (suites ~ /bookworm( |$)/ && comps ~ /main/ && uri != "") {print uri; exit} uri=""; suites=""; comps="" }
        END { if (suites ~ /bookworm( |$)/ && comps ~ /main/ && uri != "") print uri }' "$f" | head -n1)
    [ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $3 == "bookworm" && / main/ {print $2; exit}' /etc/apt/sources.list)
fi
if [ -z "$mirror" ]; then
    echo "[timescaledb] cannot find this machine's Debian mirror in its apt sources" >&2
    exit 1
fi

work=$(mktemp -d /tmp/carebridge-timescaledb.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb-src $mirror trixie main" > "$work/sources.list"
apt_private=(
    -o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
    -o "APT::Sandbox::User=root"
)

echo "[timescaledb] fetching the trixie source package through apt"
$SUDO apt-get "${apt_private[@]}" -qq update
(cd "$work" && $SUDO apt-get "${apt_private[@]}" -qq source --download-only timescaledb >/dev/null)
dsc=$(ls "$work"/timescaledb_*.dsc)
(cd "$work" && dpkg-source --no-check -x "$dsc" src >/dev/null)
echo "[timescaledb] building $(basename "$dsc" .dsc) against $($PG_CONFIG --version)"

# The flags Debian's own rules use, with the tests left out.
cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DPG_CONFIG="$PG_CONFIG" \
    -DAPACHE_ONLY=ON -DSEND_TELEMETRY_DEFAULT=OFF -DUSE_TELEMETRY=OFF \
    -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF >"$work/cmake.log" 2>&1 \
    || { tail -30 "$work/cmake.log" >&2; echo "[timescaledb] cmake failed" >&2; exit 1; }
make -C "$work/build" -j"$(nproc)" >"$work/make.log" 2>&1 \
    || { tail -30 "$work/make.log" >&2; echo "[timescaledb] build failed" >&2; exit 1; }
$SUDO make -C "$work/build" install >"$work/install.log" 2>&1 \
    || { tail -30 "$work/install.log" >&2; echo "[timescaledb] install failed" >&2; exit 1; }
echo "[timescaledb] installed $(grep default_version "$($PG_CONFIG --sharedir)/extension/timescaledb.control")"
