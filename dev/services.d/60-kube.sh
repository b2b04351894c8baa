# shellcheck shell=bash
# Sourced by dev/services: one service section (see docs/services.md).

SERVICES+=(kube)

# ---------------------------------------------------------------------------------------
# Kubernetes API server: kube-apiserver on etcd, no controllers (tests work with objects
# only). Both are built from the Go module proxy by the wrapper modules in dev/kube/
# (kube-apiserver of k8s.io/kubernetes v1.37.2 with its staging modules replaced by their
# published v0.37.2; etcd of go.etcd.io/etcd/server/v3), cached under $CACHE_DIR/kube.
# The script makes its own CA, server and client certificates and a service-account key,
# and writes a kubeconfig with two users: `strongroom` (group system:masters) and
# `strongroom-limited` (no group: it may do only what a test binds to it).

readonly KUBE_PORT=56443
readonly KUBE_ETCD_PORT=52379
readonly KUBE_ETCD_PEER_PORT=52380
readonly KUBE_USER=strongroom-kube
readonly KUBE_HOME="$DIR/kube"
readonly KUBE_BIN="$KUBE_HOME/bin"
readonly KUBE_PKI="$KUBE_HOME/pki"
readonly KUBE_ETCD_DATA="$KUBE_HOME/etcd"
readonly KUBE_CONFIG="$KUBE_HOME/kubeconfig"
readonly KUBE_LOG="$KUBE_HOME/kube-apiserver.log"
readonly KUBE_ETCD_LOG="$KUBE_HOME/etcd.log"
readonly KUBE_PID="$KUBE_HOME/run/kube-apiserver.pid"
readonly KUBE_ETCD_PID="$KUBE_HOME/run/etcd.pid"
readonly KUBE_MODULES="$SCRIPT_DIR/kube"
# The release dev/kube/apiserver/go.mod requires: stamped into the binary, whose /version
# (and so the tests) would say v0.0.0-master otherwise.
readonly KUBE_VERSION=v1.37.2

kube_log() { printf '%s\n' "$KUBE_LOG"; }

kube_packages() {
    [[ -x /usr/bin/openssl && -x /usr/bin/curl ]] || echo openssl curl
}

kube_settings() {
    local prefix=STRONGROOM_TEST_KUBE
    echo "${prefix}_HOST=$HOST"
    echo "${prefix}_PORT=$KUBE_PORT"
    echo "${prefix}_URL=https://$HOST:$KUBE_PORT"
    echo "${prefix}_KUBECONFIG=$KUBE_CONFIG"
    echo "${prefix}_CONTEXT=strongroom"
    echo "${prefix}_LIMITED_CONTEXT=strongroom-limited"
    echo "${prefix}_ETCD_URL=http://$HOST:$KUBE_ETCD_PORT"
}

# The cache key: a change to either wrapper module builds anew.
kube_build_dir() {
    local key
    key=$(cat "$KUBE_MODULES"/apiserver/go.mod "$KUBE_MODULES"/apiserver/go.sum \
        "$KUBE_MODULES"/etcd/go.mod "$KUBE_MODULES"/etcd/go.sum "$KUBE_MODULES"/etcd/main.go \
        <(echo "$KUBE_VERSION") | sha256sum | cut -c1-16)
    printf '%s\n' "$CACHE_DIR/kube/$key"
}

# The -X flags upstream's build (hack/lib/version.sh) sets from git, here from KUBE_VERSION.
kube_version_flags() {
    local minor=${KUBE_VERSION#v1.}
    minor=${minor%%.*}
    local package
    for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        printf -- "-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean " \
            "$package" "$KUBE_VERSION" "$package" "$package" "$minor" "$package"
    done
}

kube_build() {
    local out go
    out=$(kube_build_dir)
    [[ -x $out/kube-apiserver && -x $out/etcd ]] && return 0
    go=$(command -v go || echo /usr/local/go/bin/go)
    [[ -x $go ]] || die "kube: building kube-apiserver and etcd needs Go (go not found)"
    say "kube: building kube-apiserver and etcd into $out (several minutes from an empty cache)"
    mkdir -p "$out.tmp"
    local started=$SECONDS
    # Module and build caches live under $CACHE_DIR, so an empty cache is a build from nothing.
    (
        export GOMODCACHE="$CACHE_DIR/go/mod" GOCACHE="$CACHE_DIR/go/build"
        export GOFLAGS="-trimpath -modcacherw -mod=readonly" CGO_ENABLED=0 GOTOOLCHAIN=local
        cd "$KUBE_MODULES/apiserver" &&
            "$go" build -ldflags="-s -w $(kube_version_flags)" -o "$out.tmp/kube-apiserver" \
                k8s.io/kubernetes/cmd/kube-apiserver &&
            cd "$KUBE_MODULES/etcd" &&
            "$go" build -ldflags='-s -w' -o "$out.tmp/etcd" .
    ) >"$CACHE_DIR/kube/build.log" 2>&1 || {
        tail -n 30 "$CACHE_DIR/kube/build.log" >&2
        die "kube: the Go build failed; its log is $CACHE_DIR/kube/build.log"
    }
    rm -rf "$out"
    mv "$out.tmp" "$out"
    say "kube: built in $((SECONDS - started))s"
}

kube_running() { pid_alive "$KUBE_PID" && pid_alive "$KUBE_ETCD_PID"; }

kube_etcd_answering() {
    curl -fsS --max-time 3 "http://$HOST:$KUBE_ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'
}

kube_answering() {
    [[ -r $KUBE_PKI/admin.crt ]] || return 1
    local reply
    reply=$(curl -fsS --max-time 5 --cacert "$KUBE_PKI/ca.crt" --cert "$KUBE_PKI/admin.crt" \
        --key "$KUBE_PKI/admin.key" "https://$HOST:$KUBE_PORT/readyz" 2>/dev/null) || return 1
    [[ $reply == ok ]]
}

# kube_certificate NAME SUBJECT EXTENSIONS: a key and a certificate signed by the CA.
kube_certificate() {
    local name=$1 subject=$2 extensions=$3
    openssl req -new -newkey rsa:2048 -nodes -keyout "$KUBE_PKI/$name.key" \
        -subj "$subject" -out "$KUBE_PKI/$name.csr" 2>/dev/null
    openssl x509 -req -in "$KUBE_PKI/$name.csr" -CA "$KUBE_PKI/ca.crt" -CAkey "$KUBE_PKI/ca.key" \
        -CAcreateserial -days 3650 -sha256 -out "$KUBE_PKI/$name.crt" \
        -extfile <(printf '%s\n' "$extensions") 2>/dev/null
    rm -f "$KUBE_PKI/$name.csr"
}

kube_init_pki() {
    say "kube: making a CA, certificates and a service-account key in $KUBE_PKI"
    rm -rf "$KUBE_PKI"
    mkdir -p "$KUBE_PKI"
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$KUBE_PKI/ca.key" -days 3650 \
        -subj "/CN=strongroom-dev-kube-ca" -out "$KUBE_PKI/ca.crt" 2>/dev/null
    kube_certificate apiserver "/CN=kube-apiserver" \
        "subjectAltName=IP:$HOST,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth"
    kube_certificate admin "/O=system:masters/CN=strongroom" "extendedKeyUsage=clientAuth"
    kube_certificate limited "/CN=strongroom-limited" "extendedKeyUsage=clientAuth"
    openssl genrsa -out "$KUBE_PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$KUBE_PKI/sa.key" -pubout -out "$KUBE_PKI/sa.pub" 2>/dev/null
    chown -R "$KUBE_USER:" "$KUBE_PKI"
    chmod 700 "$KUBE_PKI"
    kube_write_kubeconfig
}

kube_base64() { base64 -w0 <"$1"; }

# Root-only: it holds the admin key. Tests run as root.
kube_write_kubeconfig() {
    (umask 077 && cat >"$KUBE_CONFIG.tmp" <<EOF
# Written by dev/services: change the script, not this file.
apiVersion: v1
kind: Config
clusters:
- name: strongroom-dev
  cluster:
    server: https://$HOST:$KUBE_PORT
    certificate-authority-data: $(kube_base64 "$KUBE_PKI/ca.crt")
users:
- name: strongroom
  user:
    client-certificate-data: $(kube_base64 "$KUBE_PKI/admin.crt")
    client-key-data: $(kube_base64 "$KUBE_PKI/admin.key")
- name: strongroom-limited
  user:
    client-certificate-data: $(kube_base64 "$KUBE_PKI/limited.crt")
    client-key-data: $(kube_base64 "$KUBE_PKI/limited.key")
contexts:
- name: strongroom
  context: {cluster: strongroom-dev, user: strongroom}
- name: strongroom-limited
  context: {cluster: strongroom-dev, user: strongroom-limited}
current-context: strongroom
EOF
    )
    mv -f "$KUBE_CONFIG.tmp" "$KUBE_CONFIG"
}

# kube_spawn PIDFILE LOG COMMAND...: start detached as $KUBE_USER; the shell that writes
# the pid file execs the server, so the file holds the server's own pid.
kube_spawn() {
    local pidfile=$1 log=$2
    shift 2
    (as_user "$KUBE_USER" setsid sh -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
        </dev/null >>"$log" 2>&1 &) 9>&-
}

kube_start() {
    if kube_running && kube_answering; then
        say "kube: already answering on $HOST:$KUBE_PORT"
        return
    fi
    if ! id "$KUBE_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            "$KUBE_USER" || die "kube: could not create the system user $KUBE_USER"
    fi
    check_user "$KUBE_USER"
    make_dir "$KUBE_HOME" "$KUBE_USER" 755
    make_dir "$KUBE_HOME/run" "$KUBE_USER" 755
    make_dir "$KUBE_BIN" root 755
    make_log "$KUBE_LOG" "$KUBE_USER"
    make_log "$KUBE_ETCD_LOG" "$KUBE_USER"
    local built
    built=$(kube_build_dir)
    [[ -x $built/kube-apiserver ]] || die "kube: no build in $built; run 'dev/services up kube'"
    # The cache may sit in root's home, which the server's user cannot enter.
    local binary
    for binary in kube-apiserver etcd; do
        cmp -s "$built/$binary" "$KUBE_BIN/$binary" || install -m 755 "$built/$binary" "$KUBE_BIN/$binary"
    done
    [[ -r $KUBE_PKI/sa.key ]] || kube_init_pki
    if ! pid_alive "$KUBE_ETCD_PID"; then
        port_free_for etcd "$KUBE_ETCD_PORT"
        port_free_for etcd "$KUBE_ETCD_PEER_PORT"
        make_dir "$KUBE_ETCD_DATA" "$KUBE_USER" 700
        say "kube: starting etcd on $HOST:$KUBE_ETCD_PORT"
        # Scratch data for tests: speed over crash safety (no fsync).
        kube_spawn "$KUBE_ETCD_PID" "$KUBE_ETCD_LOG" "$KUBE_BIN/etcd" --name strongroom \
            --data-dir "$KUBE_ETCD_DATA" \
            --listen-client-urls "http://$HOST:$KUBE_ETCD_PORT" \
            --advertise-client-urls "http://$HOST:$KUBE_ETCD_PORT" \
            --listen-peer-urls "http://$HOST:$KUBE_ETCD_PEER_PORT" \
            --initial-advertise-peer-urls "http://$HOST:$KUBE_ETCD_PEER_PORT" \
            --initial-cluster "strongroom=http://$HOST:$KUBE_ETCD_PEER_PORT" \
            --unsafe-no-fsync --quota-backend-bytes 4294967296 --log-level warn
    fi
    wait_until etcd "$KUBE_ETCD_LOG" kube_etcd_answering
    if ! pid_alive "$KUBE_PID"; then
        port_free_for kube "$KUBE_PORT"
        say "kube: starting kube-apiserver on $HOST:$KUBE_PORT"
        kube_spawn "$KUBE_PID" "$KUBE_LOG" "$KUBE_BIN/kube-apiserver" \
            --bind-address "$HOST" --advertise-address "$HOST" --secure-port "$KUBE_PORT" \
            --etcd-servers "http://$HOST:$KUBE_ETCD_PORT" \
            --tls-cert-file "$KUBE_PKI/apiserver.crt" \
            --tls-private-key-file "$KUBE_PKI/apiserver.key" \
            --client-ca-file "$KUBE_PKI/ca.crt" \
            --service-account-issuer https://kubernetes.default.svc \
            --service-account-key-file "$KUBE_PKI/sa.pub" \
            --service-account-signing-key-file "$KUBE_PKI/sa.key" \
            --authorization-mode RBAC --service-cluster-ip-range 10.96.0.0/16 \
            --endpoint-reconciler-type none \
            --max-requests-inflight 800 --max-mutating-requests-inflight 400 \
            --v 1
    fi
    # The first start compiles every built-in schema and writes the RBAC defaults: slow on
    # a loaded machine, so it gets four times the usual wait.
    local deadline=$((SECONDS + TIMEOUT * 4))
    until kube_answering; do
        ((SECONDS < deadline)) || start_failed kube "$KUBE_LOG" "did not answer within $((TIMEOUT * 4))s"
        sleep 0.5
    done
}

kube_stop() {
    if pid_alive "$KUBE_PID"; then
        say "kube: stopping kube-apiserver"
        stop_pid kube "$KUBE_PID"
    fi
    if pid_alive "$KUBE_ETCD_PID"; then
        say "kube: stopping etcd"
        stop_pid etcd "$KUBE_ETCD_PID"
    fi
}
