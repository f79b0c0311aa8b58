#!/usr/bin/env bash
# Build and install the pgvector extension for PostgreSQL 15 on Debian 12.
#
# Debian 12 ships no postgresql-15-pgvector package. We take Debian's own pgvector source package
# from the next release (trixie), fetched with `apt-get source` through a deb-src entry that is built
# from this machine's own apt configuration, using a private apt state folder: the system's apt
# sources and lists are not touched. apt checks the download against the signed Sources index
# (the .dsc's checksums); we check the tarball's sha256 against the .dsc once more before building.
#
# Needs: postgresql-server-dev-15, build-essential (devtools/bootstrap.sh installs them). Run as root.
# Usage: devtools/pgvector.sh [--force]
set -euo pipefail

PGVECTOR_VERSION="${PGVECTOR_VERSION:-0.8.0}"
SOURCE_SUITE="${PGVECTOR_SOURCE_SUITE:-trixie}"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"

say() { echo "pgvector: $*"; }
die() { echo "pgvector: ERROR: $*" >&2; exit 1; }

sharedir="$("$PG_CONFIG" --sharedir 2>/dev/null)" || die "$PG_CONFIG not found: install postgresql-server-dev-15 first"
if [[ "${1:-}" != "--force" && -f "$sharedir/extension/vector.control" ]]; then
    say "already installed ($sharedir/extension/vector.control)"
    exit 0
fi
[[ $(id -u) -eq 0 ]] || die "must run as root (installs into $sharedir)"

# The Debian mirror this machine already uses (deb822 format first, then the legacy one-line format).
uri=""
if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    uri="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
fi
if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
    uri="$(awk '$1 == "deb" && $2 !~ /^\[/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)"
fi
[[ -n "$uri" ]] || die "could not find a Debian mirror URI in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"

work="$(mktemp -d /tmp/pgvector-build.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt/lists/partial" "$work/src"
chmod 755 "$work"
# apt downloads as the unprivileged _apt user when it can write the target folder.
if id _apt >/dev/null 2>&1; then chown _apt "$work/src" "$work/apt/lists/partial"; fi

printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" "$SOURCE_SUITE" >"$work/apt/$SOURCE_SUITE-src.sources"
apt_opts=(
    -o Dir::Etc::SourceList=/dev/null
    -o "Dir::Etc::SourceParts=$work/apt"
    -o "Dir::State::Lists=$work/apt/lists"
    -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
)

say "fetching the $SOURCE_SUITE source index (private apt state in $work)"
apt-get "${apt_opts[@]}" update -qq || die "apt-get update for the $SOURCE_SUITE deb-src entry failed"

say "downloading Debian's pgvector source package"
(cd "$work/src" && apt-get "${apt_opts[@]}" -qq source --download-only pgvector) \
    || die "apt-get source pgvector failed"

tarball="$(ls "$work/src/pgvector_${PGVECTOR_VERSION}.orig.tar."* 2>/dev/null | head -n1 || true)"
if [[ -z "$tarball" ]]; then
    die "expected pgvector_${PGVECTOR_VERSION}.orig.tar.* from $SOURCE_SUITE, got: $(ls "$work/src")"
fi
dsc="$(ls "$work/src"/pgvector_*.dsc | head -n1)"

# apt verified every file against the signed index; check the tarball against the .dsc again, visibly.
name="$(basename "$tarball")"
want="$(awk -v f="$name" '/^Checksums-Sha256:/{on=1; next} /^[^ ]/{on=0} on && $3 == f {print $1}' "$dsc")"
have="$(sha256sum "$tarball" | awk '{print $1}')"
[[ -n "$want" && "$want" == "$have" ]] || die "sha256 mismatch for $name: .dsc says '${want}', file is '${have}'"
say "$name sha256 $have (matches $(basename "$dsc"))"

mkdir -p "$work/build"
tar -xf "$tarball" -C "$work/build" --strip-components=1
say "building pgvector $PGVECTOR_VERSION"
make -C "$work/build" -s -j"$(nproc)" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >"$work/build.log" 2>&1 \
    || { tail -n 40 "$work/build.log" >&2; die "build failed"; }
make -C "$work/build" -s PG_CONFIG="$PG_CONFIG" OPTFLAGS="" install >>"$work/build.log" 2>&1 \
    || { tail -n 40 "$work/build.log" >&2; die "make install failed"; }

[[ -f "$sharedir/extension/vector.control" ]] || die "install finished but $sharedir/extension/vector.control is missing"
say "installed pgvector $PGVECTOR_VERSION into $sharedir/extension"
