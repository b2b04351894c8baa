# shellcheck shell=bash
# Sourced by dev/services: one service section (see docs/services.md).

SERVICES+=(postgres)

# ---------------------------------------------------------------------------------------
# PostgreSQL 15

readonly PG_BIN=/usr/lib/postgresql/15/bin
readonly PG_PORT=55432
readonly PG_HOME="$DIR/postgres"
readonly PG_DATA="$PG_HOME/data"
readonly PG_RUN="$PG_HOME/run"
readonly PG_LOG="$PG_HOME/postgres.log"

postgres_log() { printf '%s\n' "$PG_LOG"; }

postgres_packages() {
    local file
    for file in "$PG_BIN"/{postgres,initdb,pg_ctl,pg_isready,psql} \
        /usr/share/postgresql/15/extension/pgcrypto.control; do
        if [[ ! -e $file ]]; then
            echo postgresql-15 postgresql-client-15
            return
        fi
    done
}

postgres_settings() {
    local prefix=STRONGROOM_TEST_POSTGRES
    echo "${prefix}_HOST=$HOST"
    echo "${prefix}_PORT=$PG_PORT"
    echo "${prefix}_USER=$SR_USER"
    echo "${prefix}_PASSWORD=$SR_PASSWORD"
    echo "${prefix}_DATABASE=postgres"
    echo "${prefix}_URL=postgresql://$SR_USER:$SR_PASSWORD@$HOST:$PG_PORT/postgres"
    echo "${prefix}_BINDIR=$PG_BIN"
}

postgres_running() { pid_alive "$PG_DATA/postmaster.pid"; }

postgres_answering() {
    [[ -x $PG_BIN/psql ]] || return 1
    "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -t 3 || return 1
    PGPASSWORD=$SR_PASSWORD PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -w -q -At \
        -h "$HOST" -p "$PG_PORT" -U "$SR_USER" -d postgres -c 'SELECT 1' >/dev/null 2>&1
}

postgres_init() {
    local pwfile="$PG_HOME/.initdb-password"
    say "postgres: creating a cluster in $PG_DATA"
    rm -rf "$PG_DATA"
    (umask 077 && printf '%s\n' "$SR_PASSWORD" >"$pwfile")
    chown postgres: "$pwfile"
    if ! as_user postgres "$PG_BIN/initdb" -D "$PG_DATA" -U "$SR_USER" --pwfile="$pwfile" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 --data-checksums >>"$PG_LOG" 2>&1; then
        rm -f "$pwfile"
        start_failed postgres "$PG_LOG" "initdb failed"
    fi
    rm -f "$pwfile"
    echo "include_if_exists = 'strongroom.conf'" >>"$PG_DATA/postgresql.conf"
    touch "$PG_HOME/.initialized"
}

postgres_start() {
    if postgres_running && postgres_answering; then
        say "postgres: already answering on $HOST:$PG_PORT"
        return
    fi
    check_user postgres
    make_dir "$PG_HOME" postgres 755
    make_dir "$PG_RUN" postgres 755
    make_log "$PG_LOG" postgres
    if ! postgres_running; then
        port_free_for postgres "$PG_PORT"
        [[ -e $PG_HOME/.initialized ]] || postgres_init
        # Rewritten on every start so that the script, not a stale file, decides.
        cat >"$PG_DATA/strongroom.conf" <<EOF
# Written by dev/services on every start: change the script, not this file.
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
password_encryption = 'scram-sha-256'
log_line_prefix = '%m [%p] %q%u@%d '
# Scratch data for tests: speed over crash safety.
fsync = off
synchronous_commit = off
EOF
        chown postgres: "$PG_DATA/strongroom.conf"
        say "postgres: starting on $HOST:$PG_PORT"
        as_user postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$TIMEOUT" -s start \
            >/dev/null 2>&1 || start_failed postgres "$PG_LOG" "pg_ctl start failed"
    fi
    wait_until postgres "$PG_LOG" postgres_answering
}

postgres_stop() {
    postgres_running || return 0
    say "postgres: stopping"
    as_user postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t "$TIMEOUT" -s stop ||
        die "postgres did not stop; its log is $PG_LOG"
}
