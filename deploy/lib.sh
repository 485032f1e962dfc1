# shellcheck shell=bash
# Shared set-up for deploy/run.sh and deploy/test.sh. Source it, don't run it.
#
# Every ensure_* function is idempotent: it does nothing (and prints nothing) when what it
# ensures is already there, and says on stderr what it installs when it has to install.
# All of them work on a fresh machine of the project's kind: only the package registries
# (PyPI, the Go module proxy, Debian's packages) are reached.

# The repository root: the parent of the folder this file is in.
DSGW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DSGW_ROOT

OPA_VERSION="v1.21.3"

# pip, go and the caches below need a home; a bare CI environment might not set HOME.
if [ -z "${HOME:-}" ]; then
    HOME="$(getent passwd "$(id -u)" | cut -d: -f6)"
    export HOME
fi

dsgw_log() { printf 'dsgw: %s\n' "$*" >&2; }
dsgw_die() { printf 'dsgw: ERROR: %s\n' "$*" >&2; exit 1; }

# Serialise installs between concurrent runs in the same tree (several people and their
# tools share it): take an exclusive lock on file "$1" through fd 9 (released by
# dsgw_unlock, or when the process exits). Without flock, go on unlocked.
dsgw_lock() {
    command -v flock >/dev/null 2>&1 || return 0
    exec 9>"$1"
    if ! flock -n 9; then
        dsgw_log "waiting for another dsgw set-up that holds $1"
        flock 9
    fi
}
dsgw_unlock() { exec 9>&-; }

# Run a command as root: directly when we are root, else through sudo when there is one.
dsgw_as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        dsgw_die "need root to run '$*' (not root, and no sudo)"
    fi
}

# True when "$1" is a Python interpreter of version 3.11 or newer.
dsgw_python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}

# Sets DSGW_PYTHON to a Python 3.11+ interpreter.
ensure_python() {
    if [ -n "${DSGW_PYTHON:-}" ] && dsgw_python_ok "$DSGW_PYTHON"; then
        return 0
    fi
    local cand
    for cand in python3.11 python3; do
        if command -v "$cand" >/dev/null 2>&1 && dsgw_python_ok "$cand"; then
            DSGW_PYTHON="$(command -v "$cand")"
            export DSGW_PYTHON
            return 0
        fi
    done
    dsgw_die "no Python 3.11+ found (tried 'python3.11' and 'python3' on PATH); install one, e.g. 'apt-get install python3 python3-venv' on Debian 12"
}

# Prints the hash of what `pip install -e .` builds from: pyproject.toml, setup.py and the C
# extensions' sources, so that a changed C file is rebuilt on the next run.
dsgw_install_inputs() {
    (cd "$DSGW_ROOT" && { cat pyproject.toml setup.py gateway/dataplane/*.c 2>/dev/null || true; }) \
        | sha256sum | cut -d' ' -f1
}

# Creates .venv (when missing or broken) and installs the project with its test extras into
# it whenever the venv is new or what it builds from (dsgw_install_inputs) changed since the
# last install.
ensure_venv() {
    local venv="$DSGW_ROOT/.venv"
    local stamp="$venv/.dsgw-installed"
    local want have=""
    want="$(dsgw_install_inputs)"
    if dsgw_python_ok "$venv/bin/python" && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    dsgw_lock "${TMPDIR:-/tmp}/dsgw-venv-$(printf '%s' "$DSGW_ROOT" | sha256sum | cut -c1-16).lock"
    if [ -e "$venv" ] && ! dsgw_python_ok "$venv/bin/python"; then
        dsgw_log "the virtualenv $venv is broken (its python does not run or is older than 3.11); re-creating it"
        rm -rf "$venv"
    fi
    if [ ! -x "$venv/bin/python" ]; then
        ensure_python
        dsgw_log "creating the virtualenv $venv with $DSGW_PYTHON"
        "$DSGW_PYTHON" -m venv "$venv" \
            || dsgw_die "could not create $venv (on Debian: apt-get install python3-venv)"
    fi
    [ -f "$stamp" ] && have="$(cat "$stamp")"
    if [ "$want" != "$have" ]; then
        dsgw_log "installing dsgw and its test extras into $venv (pip install -e '.[test]')"
        local t0=$SECONDS
        (cd "$DSGW_ROOT" && PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
            "$venv/bin/python" -m pip install -q -e '.[test]') >&2 \
            || dsgw_die "pip install -e '.[test]' failed"
        printf '%s\n' "$want" >"$stamp"
        dsgw_log "installed in $((SECONDS - t0)) s"
    fi
    dsgw_unlock
}

# Prints the version that "$1 version" reports (e.g. 1.21.3), or nothing.
dsgw_opa_version() {
    "$1" version 2>/dev/null | sed -n 's/^Version: *//p' | head -n1
}

# Sets and exports DSGW_OPA_BIN: $DSGW_OPA_BIN if executable, else an OPA 1.x on PATH, else
# the pinned build in the cache, else builds the pinned version there with `go install`.
ensure_opa() {
    if [ -n "${DSGW_OPA_BIN:-}" ]; then
        [ -x "$DSGW_OPA_BIN" ] || dsgw_die "DSGW_OPA_BIN=$DSGW_OPA_BIN is not an executable file"
        export DSGW_OPA_BIN
        return 0
    fi
    local onpath
    if onpath="$(command -v opa 2>/dev/null)"; then
        case "$(dsgw_opa_version "$onpath")" in
            1.*) DSGW_OPA_BIN="$onpath"; export DSGW_OPA_BIN; return 0 ;;
        esac
    fi
    local cache="${XDG_CACHE_HOME:-$HOME/.cache}/dsgw/opa-${OPA_VERSION}"
    if [ -x "$cache/opa" ] && [ "$(dsgw_opa_version "$cache/opa")" = "${OPA_VERSION#v}" ]; then
        DSGW_OPA_BIN="$cache/opa"; export DSGW_OPA_BIN
        return 0
    fi
    if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
        PATH="$PATH:/usr/local/go/bin"; export PATH
    fi
    command -v go >/dev/null 2>&1 \
        || dsgw_die "OPA ${OPA_VERSION} is needed and not found (no DSGW_OPA_BIN, no opa 1.x on PATH, nothing in $cache), and there is no Go toolchain to build it with"
    mkdir -p "$cache"
    dsgw_lock "$cache.lock"
    if [ -x "$cache/opa" ] && [ "$(dsgw_opa_version "$cache/opa")" = "${OPA_VERSION#v}" ]; then
        dsgw_unlock  # another run built it while we waited
        DSGW_OPA_BIN="$cache/opa"; export DSGW_OPA_BIN
        return 0
    fi
    dsgw_log "building OPA ${OPA_VERSION} into $cache with $(go version | cut -d' ' -f3) (go install; takes a minute or two)"
    local t0=$SECONDS tmp
    # Build into a private folder, then move into place, so an interrupted build never
    # leaves a half-written binary in the cache.
    tmp="$(mktemp -d "$cache/.build.XXXXXX")"
    if ! GOBIN="$tmp" CGO_ENABLED=0 go install "github.com/open-policy-agent/opa@${OPA_VERSION}" \
        >"$cache/build.log" 2>&1; then
        tail -n 30 "$cache/build.log" >&2
        rm -rf "$tmp"
        dsgw_die "go install github.com/open-policy-agent/opa@${OPA_VERSION} failed (full log: $cache/build.log)"
    fi
    mv -f "$tmp/opa" "$cache/opa"
    rm -rf "$tmp"
    [ "$(dsgw_opa_version "$cache/opa")" = "${OPA_VERSION#v}" ] \
        || dsgw_die "the OPA just built in $cache does not report version ${OPA_VERSION#v}"
    dsgw_unlock
    dsgw_log "built OPA ${OPA_VERSION} in $((SECONDS - t0)) s"
    DSGW_OPA_BIN="$cache/opa"; export DSGW_OPA_BIN
}

# Prints the bin folder of the newest Debian PostgreSQL server install, or nothing.
dsgw_pg_bindir() {
    local b best="" ver bestver=""
    for b in /usr/lib/postgresql/*/bin; do
        [ -x "$b/pg_ctl" ] && [ -x "$b/initdb" ] && [ -x "$b/postgres" ] || continue
        ver="$(basename "$(dirname "$b")")"
        if [ -z "$best" ] || [ "$(printf '%s\n%s\n' "$bestver" "$ver" | sort -V | tail -n1)" = "$ver" ]; then
            best="$b"; bestver="$ver"
        fi
    done
    printf '%s' "$best"
}

# Sets and exports DSGW_PG_BINDIR, installing Debian's postgresql package when no server is
# installed. (Debian's package may start a system cluster of its own; the tests don't use it.)
ensure_postgres() {
    local bindir
    bindir="$(dsgw_pg_bindir)"
    if [ -z "$bindir" ]; then
        dsgw_log "no PostgreSQL server under /usr/lib/postgresql; installing Debian's postgresql package"
        local t0=$SECONDS
        dsgw_as_root apt-get update -q >&2 || dsgw_die "apt-get update failed"
        dsgw_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            -o DPkg::Lock::Timeout=300 postgresql >&2 \
            || dsgw_die "apt-get install postgresql failed"
        bindir="$(dsgw_pg_bindir)"
        [ -n "$bindir" ] || dsgw_die "postgresql installed, but no /usr/lib/postgresql/*/bin/pg_ctl found"
        dsgw_log "installed PostgreSQL ($bindir) in $((SECONDS - t0)) s"
    fi
    DSGW_PG_BINDIR="$bindir"; export DSGW_PG_BINDIR
}

# Installs Debian's curl and jq when missing: the README's walkthrough uses them, and a test runs
# that walkthrough as written.
ensure_shell_tools() {
    local missing=() tool
    for tool in curl jq; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    dsgw_log "installing Debian's ${missing[*]} (the README walkthrough and its test use them)"
    dsgw_as_root apt-get update -q >&2 || dsgw_die "apt-get update failed"
    dsgw_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        -o DPkg::Lock::Timeout=300 "${missing[@]}" >&2 \
        || dsgw_die "apt-get install ${missing[*]} failed"
}

# Sets and exports DSGW_NGINX_BIN, installing Debian's nginx package when there is none: the
# scale-out test (tests/e2e/test_scaleout.py) runs a real nginx in front of two gateways and two
# OPA replicas, with the configuration of deploy/nginx/. The package's own service is not used
# (the test runs its own nginx, unprivileged ports, a private prefix).
ensure_nginx() {
    if [ -n "${DSGW_NGINX_BIN:-}" ]; then
        [ -x "$DSGW_NGINX_BIN" ] || dsgw_die "DSGW_NGINX_BIN=$DSGW_NGINX_BIN is not an executable file"
        export DSGW_NGINX_BIN
        return 0
    fi
    local found
    found="$(command -v nginx 2>/dev/null || true)"
    [ -z "$found" ] && [ -x /usr/sbin/nginx ] && found=/usr/sbin/nginx
    if [ -z "$found" ]; then
        dsgw_log "no nginx found; installing Debian's nginx package (the scale-out test runs it)"
        local t0=$SECONDS
        dsgw_as_root apt-get update -q >&2 || dsgw_die "apt-get update failed"
        # policy-rc.d-less containers: the package's post-install may fail to start its service
        # (no init); the binary is what the tests need, so only the binary is checked after.
        dsgw_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            -o DPkg::Lock::Timeout=300 nginx >&2 \
            || [ -x /usr/sbin/nginx ] || dsgw_die "apt-get install nginx failed"
        found="$(command -v nginx 2>/dev/null || true)"
        [ -z "$found" ] && [ -x /usr/sbin/nginx ] && found=/usr/sbin/nginx
        [ -n "$found" ] || dsgw_die "nginx installed, but no nginx binary found"
        dsgw_log "installed nginx ($found) in $((SECONDS - t0)) s"
    fi
    DSGW_NGINX_BIN="$found"; export DSGW_NGINX_BIN
}

VERSITYGW_VERSION="v1.8.0"

# Sets and exports DSGW_S3_BIN: the S3-compatible server the data-plane tests run (Versity
# Gateway, Apache-2.0, a real S3 API over a posix folder). $DSGW_S3_BIN if executable, else the
# pinned build in the cache, else builds it there with `go install` (the Go module proxy serves
# tagged versions of versitygw; MinIO's module has none there). A `version` file beside the
# binary records what was built, since `go install` builds report no version of their own.
ensure_versitygw() {
    if [ -n "${DSGW_S3_BIN:-}" ]; then
        [ -x "$DSGW_S3_BIN" ] || dsgw_die "DSGW_S3_BIN=$DSGW_S3_BIN is not an executable file"
        export DSGW_S3_BIN
        return 0
    fi
    local cache="${XDG_CACHE_HOME:-$HOME/.cache}/dsgw/versitygw-${VERSITYGW_VERSION}"
    if [ -x "$cache/versitygw" ] && [ "$(cat "$cache/version" 2>/dev/null)" = "$VERSITYGW_VERSION" ]; then
        DSGW_S3_BIN="$cache/versitygw"; export DSGW_S3_BIN
        return 0
    fi
    if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
        PATH="$PATH:/usr/local/go/bin"; export PATH
    fi
    command -v go >/dev/null 2>&1 \
        || dsgw_die "versitygw ${VERSITYGW_VERSION} is needed and not found (no DSGW_S3_BIN, nothing in $cache), and there is no Go toolchain to build it with"
    mkdir -p "$cache"
    dsgw_lock "$cache.lock"
    if [ -x "$cache/versitygw" ] && [ "$(cat "$cache/version" 2>/dev/null)" = "$VERSITYGW_VERSION" ]; then
        dsgw_unlock  # another run built it while we waited
        DSGW_S3_BIN="$cache/versitygw"; export DSGW_S3_BIN
        return 0
    fi
    dsgw_log "building versitygw ${VERSITYGW_VERSION} into $cache with $(go version | cut -d' ' -f3) (go install; takes several minutes)"
    local t0=$SECONDS tmp
    tmp="$(mktemp -d "$cache/.build.XXXXXX")"
    if ! GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
        go install "github.com/versity/versitygw/cmd/versitygw@${VERSITYGW_VERSION}" \
        >"$cache/build.log" 2>&1; then
        tail -n 30 "$cache/build.log" >&2
        rm -rf "$tmp"
        dsgw_die "go install github.com/versity/versitygw/cmd/versitygw@${VERSITYGW_VERSION} failed (full log: $cache/build.log)"
    fi
    mv -f "$tmp/versitygw" "$cache/versitygw"
    rm -rf "$tmp"
    printf '%s\n' "$VERSITYGW_VERSION" >"$cache/version"
    dsgw_unlock
    dsgw_log "built versitygw ${VERSITYGW_VERSION} in $((SECONDS - t0)) s"
    DSGW_S3_BIN="$cache/versitygw"; export DSGW_S3_BIN
}

# Sets and exports DSGW_MVN_BIN, DSGW_JAVA_BIN and DSGW_M2_REPO: Java 17 and Maven for the DSP
# TCK harness (tests/tck/). Installs Debian's openjdk-17-jdk-headless and maven only when
# `java` (17 or later) or `mvn` is missing. The Maven repository is a cache under
# ~/.cache/dsgw/m2, so that a second run resolves nothing over the network.
ensure_java_maven() {
    local java_ok=0 major
    if command -v java >/dev/null 2>&1; then
        major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
        [ "${major%%.*}" -ge 17 ] 2>/dev/null && java_ok=1
    fi
    if [ "$java_ok" -ne 1 ] || ! command -v mvn >/dev/null 2>&1; then
        dsgw_log "installing Debian's openjdk-17-jdk-headless and maven (the DSP TCK needs them)"
        local t0=$SECONDS
        dsgw_as_root apt-get update -q >&2 || dsgw_die "apt-get update failed"
        dsgw_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            -o DPkg::Lock::Timeout=300 openjdk-17-jdk-headless maven >&2 \
            || dsgw_die "apt-get install openjdk-17-jdk-headless maven failed"
        dsgw_log "installed Java and Maven in $((SECONDS - t0)) s"
    fi
    DSGW_JAVA_BIN="$(command -v java)"; export DSGW_JAVA_BIN
    DSGW_MVN_BIN="$(command -v mvn)"; export DSGW_MVN_BIN
    DSGW_M2_REPO="${DSGW_M2_REPO:-$HOME/.cache/dsgw/m2}"; export DSGW_M2_REPO
    mkdir -p "$DSGW_M2_REPO"
}

# Sets and exports DSGW_CHROMIUM_BIN: Debian's Chromium for the browser tests (tests/browser/,
# Playwright drives it; no browser is ever downloaded by a test tool), with a CJK font
# (fonts-noto-cjk) so that the zh-CN pages render as text in the screenshots, not as boxes.
# Installs Debian's chromium and fonts-noto-cjk only when either is missing; a stamp in the
# cache records a successful check so that later runs look no further.
ensure_chromium() {
    if [ -n "${DSGW_CHROMIUM_BIN:-}" ]; then
        [ -x "$DSGW_CHROMIUM_BIN" ] || dsgw_die "DSGW_CHROMIUM_BIN=$DSGW_CHROMIUM_BIN is not an executable file"
        export DSGW_CHROMIUM_BIN
        return 0
    fi
    local stamp="${XDG_CACHE_HOME:-$HOME/.cache}/dsgw/chromium.ok"
    local have_font=0
    if [ -x /usr/bin/chromium ] && [ -f "$stamp" ]; then
        DSGW_CHROMIUM_BIN=/usr/bin/chromium; export DSGW_CHROMIUM_BIN
        return 0
    fi
    if command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q .; then
        have_font=1
    fi
    if [ ! -x /usr/bin/chromium ] || [ "$have_font" -ne 1 ]; then
        dsgw_log "installing Debian's chromium and fonts-noto-cjk (the browser tests drive it)"
        local t0=$SECONDS
        mkdir -p "$(dirname "$stamp")"
        dsgw_lock "$(dirname "$stamp")/chromium.lock"
        dsgw_as_root apt-get update -q >&2 || dsgw_die "apt-get update failed"
        dsgw_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            -o DPkg::Lock::Timeout=300 chromium fonts-noto-cjk >&2 \
            || dsgw_die "apt-get install chromium fonts-noto-cjk failed"
        dsgw_unlock
        dsgw_log "installed Chromium and the CJK fonts in $((SECONDS - t0)) s"
    fi
    [ -x /usr/bin/chromium ] || dsgw_die "chromium installed, but /usr/bin/chromium is missing"
    mkdir -p "$(dirname "$stamp")"
    /usr/bin/chromium --version >"$stamp" 2>/dev/null || dsgw_die "/usr/bin/chromium does not run"
    DSGW_CHROMIUM_BIN=/usr/bin/chromium; export DSGW_CHROMIUM_BIN
}
