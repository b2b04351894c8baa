# shellcheck shell=bash
# Sourced by dev/services: one service section (see docs/services.md).

SERVICES+=(s3)

# ---------------------------------------------------------------------------------------
# S3: versitygw (Apache-2.0) on its posix backend, built from the Go module proxy at one
# exact version and cached under $CACHE_DIR. Versioning is on (--versioning-dir), so buckets
# made with Object Lock keep every version and the gateway refuses to delete a version
# under retention or legal hold. Three buckets: the primary and the DR region (both with
# Object Lock, hence versioning) and a plain one (neither) for the bad-input tests.
# The root credentials are the project's development login, given through the
# environment, never argv.

readonly S3_VERSION=v1.8.0
readonly S3_MODULE=github.com/versity/versitygw
readonly S3_PORT=57070
readonly S3_REGION=us-east-1
readonly S3_USER=strongroom-s3
readonly S3_HOME="$DIR/s3"
readonly S3_BIN="$S3_HOME/bin"
readonly S3_DATA="$S3_HOME/data"
readonly S3_VERSIONS="$S3_HOME/versions"
readonly S3_LOG="$S3_HOME/versitygw.log"
readonly S3_PID="$S3_HOME/run/versitygw.pid"
readonly S3_BUCKETS=(strongroom-primary strongroom-dr)
readonly S3_PLAIN_BUCKET=strongroom-plain

s3_log() { printf '%s\n' "$S3_LOG"; }

s3_packages() {
    [[ -x /usr/bin/curl ]] || echo curl
}

s3_settings() {
    local prefix=STRONGROOM_TEST_S3
    echo "${prefix}_HOST=$HOST"
    echo "${prefix}_PORT=$S3_PORT"
    echo "${prefix}_URL=http://$HOST:$S3_PORT"
    echo "${prefix}_REGION=$S3_REGION"
    echo "${prefix}_USER=$SR_USER"
    echo "${prefix}_PASSWORD=$SR_PASSWORD"
    echo "${prefix}_BUCKET=${S3_BUCKETS[0]}"
    echo "${prefix}_DR_BUCKET=${S3_BUCKETS[1]}"
    echo "${prefix}_PLAIN_BUCKET=$S3_PLAIN_BUCKET"
    echo "${prefix}_SERVER=versitygw $S3_VERSION (posix backend)"
}

s3_build_dir() { printf '%s\n' "$CACHE_DIR/versitygw-$S3_VERSION"; }

s3_build() {
    local out go
    out=$(s3_build_dir)
    [[ -x $out/versitygw ]] && return 0
    go=$(command -v go || echo /usr/local/go/bin/go)
    [[ -x $go ]] || die "s3: building versitygw needs Go (go not found)"
    say "s3: building versitygw $S3_VERSION into $out (minutes from an empty cache)"
    mkdir -p "$out.tmp"
    local started=$SECONDS
    # Module and build caches live under $CACHE_DIR, so an empty cache is a build from nothing.
    (
        export GOMODCACHE="$CACHE_DIR/go/mod" GOCACHE="$CACHE_DIR/go/build"
        export GOFLAGS="-trimpath -modcacherw" CGO_ENABLED=0 GOTOOLCHAIN=local
        export GOBIN="$out.tmp"
        "$go" install -ldflags='-s -w' "$S3_MODULE/cmd/versitygw@$S3_VERSION"
    ) >"$out.log" 2>&1 || {
        tail -n 30 "$out.log" >&2
        die "s3: the Go build failed; its log is $out.log"
    }
    rm -rf "$out"
    mv "$out.tmp" "$out"
    say "s3: built in $((SECONDS - started))s"
}

s3_running() { pid_alive "$S3_PID"; }

# SHA-256 of an empty body: every request below has none, and S3 wants the payload's hash.
readonly S3_EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# s3_request METHOD PATH [CURL ARGS...]: one request signed (SigV4) with the root login;
# prints the HTTP status.
s3_request() {
    local method=$1 path=$2
    shift 2
    curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X "$method" \
        --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$SR_USER:$SR_PASSWORD" \
        -H "x-amz-content-sha256: $S3_EMPTY_SHA256" \
        "$@" "http://$HOST:$S3_PORT$path" 2>/dev/null
}

s3_answering() {
    [[ $(s3_request GET /) == 200 ]] || return 1
    local bucket
    for bucket in "${S3_BUCKETS[@]}" "$S3_PLAIN_BUCKET"; do
        [[ $(s3_request HEAD "/$bucket") == 200 ]] || return 1
    done
}

# s3_make_bucket NAME [CURL ARGS...]: create a bucket unless it exists.
s3_make_bucket() {
    local bucket=$1 status
    shift
    [[ $(s3_request HEAD "/$bucket") == 200 ]] && return 0
    status=$(s3_request PUT "/$bucket" "$@")
    [[ $status == 200 ]] || die "s3: creating bucket $bucket answered HTTP $status; its log is $S3_LOG"
}

s3_start() {
    if s3_running && s3_answering; then
        say "s3: already answering on $HOST:$S3_PORT"
        return
    fi
    if ! id "$S3_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            "$S3_USER" || die "s3: could not create the system user $S3_USER"
    fi
    check_user "$S3_USER"
    make_dir "$S3_HOME" "$S3_USER" 755
    make_dir "$S3_HOME/run" "$S3_USER" 755
    make_dir "$S3_DATA" "$S3_USER" 750
    make_dir "$S3_VERSIONS" "$S3_USER" 750
    make_dir "$S3_BIN" root 755
    make_log "$S3_LOG" "$S3_USER"
    local built
    built=$(s3_build_dir)
    [[ -x $built/versitygw ]] || die "s3: no build in $built; run 'dev/services up s3'"
    # The cache may sit in root's home, which the server's user cannot enter.
    cmp -s "$built/versitygw" "$S3_BIN/versitygw" || install -m 755 "$built/versitygw" "$S3_BIN/versitygw"
    if ! s3_running; then
        port_free_for s3 "$S3_PORT"
        say "s3: starting versitygw $S3_VERSION on $HOST:$S3_PORT"
        (
            export ROOT_ACCESS_KEY="$SR_USER" ROOT_SECRET_KEY="$SR_PASSWORD" VGW_REGION="$S3_REGION"
            as_user "$S3_USER" setsid sh -c 'echo $$ >"$0"; exec "$@"' "$S3_PID" \
                "$S3_BIN/versitygw" --port "$HOST:$S3_PORT" --quiet \
                posix --versioning-dir "$S3_VERSIONS" "$S3_DATA" \
                </dev/null >>"$S3_LOG" 2>&1 &
        ) 9>&-
    fi
    wait_until s3 "$S3_LOG" s3_request_ok
    local bucket
    for bucket in "${S3_BUCKETS[@]}"; do
        s3_make_bucket "$bucket" -H 'x-amz-bucket-object-lock-enabled: true'
    done
    s3_make_bucket "$S3_PLAIN_BUCKET"
    wait_until s3 "$S3_LOG" s3_answering
}

s3_request_ok() { [[ $(s3_request GET /) == 200 ]]; }

s3_stop() {
    s3_running || return 0
    say "s3: stopping versitygw"
    stop_pid s3 "$S3_PID"
}
