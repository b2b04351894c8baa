# shellcheck shell=bash
# Sourced by dev/services: one service section (see docs/services.md).

SERVICES+=(mariadb)

# ---------------------------------------------------------------------------------------
# MariaDB

readonly MARIADB_PORT=53306
readonly MARIADB_HOME="$DIR/mariadb"
readonly MARIADB_DATA="$MARIADB_HOME/data"
readonly MARIADB_RUN="$MARIADB_HOME/run"
readonly MARIADB_SOCKET="$MARIADB_RUN/mariadbd.sock"
readonly MARIADB_PID="$MARIADB_RUN/mariadbd.pid"
readonly MARIADB_CNF="$MARIADB_HOME/my.cnf"
readonly MARIADB_LOG="$MARIADB_HOME/mariadb.log"

mariadb_log() { printf '%s\n' "$MARIADB_LOG"; }

mariadb_packages() {
    local file
    for file in /usr/sbin/mariadbd /usr/bin/mariadb-install-db /usr/bin/mariadb \
        /usr/bin/mariadb-admin; do
        if [[ ! -e $file ]]; then
            echo mariadb-server mariadb-client
            return
        fi
    done
}

mariadb_settings() {
    local prefix=STRONGROOM_TEST_MARIADB
    echo "${prefix}_HOST=$HOST"
    echo "${prefix}_PORT=$MARIADB_PORT"
    echo "${prefix}_USER=$SR_USER"
    echo "${prefix}_PASSWORD=$SR_PASSWORD"
    echo "${prefix}_URL=mysql://$SR_USER:$SR_PASSWORD@$HOST:$MARIADB_PORT/"
}

mariadb_running() { pid_alive "$MARIADB_PID"; }

# The password goes through the environment, never argv.
mariadb_answering() {
    [[ -x /usr/bin/mariadb ]] || return 1
    MYSQL_PWD=$SR_PASSWORD /usr/bin/mariadb --no-defaults --protocol=tcp -h "$HOST" \
        -P "$MARIADB_PORT" -u "$SR_USER" --connect-timeout=3 -N -B -e 'SELECT 1' >/dev/null 2>&1
}

# Create the strongroom user, or reset its password and grants. root@localhost logs in by
# unix socket as the OS user root, so root has no password; the SQL goes through stdin.
mariadb_provision() {
    /usr/bin/mariadb --no-defaults --protocol=socket --socket="$MARIADB_SOCKET" -u root <<EOF
CREATE USER IF NOT EXISTS '$SR_USER'@'$HOST' IDENTIFIED BY '$SR_PASSWORD';
CREATE USER IF NOT EXISTS '$SR_USER'@'localhost' IDENTIFIED BY '$SR_PASSWORD';
ALTER USER '$SR_USER'@'$HOST' IDENTIFIED BY '$SR_PASSWORD';
ALTER USER '$SR_USER'@'localhost' IDENTIFIED BY '$SR_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$SR_USER'@'$HOST' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$SR_USER'@'localhost' WITH GRANT OPTION;
EOF
}

mariadb_pinged() {
    /usr/bin/mariadb-admin --no-defaults --protocol=socket --socket="$MARIADB_SOCKET" -u root \
        --connect-timeout=3 ping >/dev/null 2>&1
}

mariadb_write_config() {
    cat >"$MARIADB_CNF" <<EOF
# Written by dev/services on every start: change the script, not this file.
[mysqld]
user = mysql
datadir = $MARIADB_DATA
port = $MARIADB_PORT
bind-address = $HOST
socket = $MARIADB_SOCKET
pid-file = $MARIADB_PID
log-error = $MARIADB_LOG
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
# A binary log, so that backups can record a consistency point (mariadb-dump --master-data).
log-bin = mariadb-bin
binlog-format = ROW
server-id = 1
binlog-expire-logs-seconds = 86400
# Scratch data for tests: speed over crash safety.
innodb-flush-log-at-trx-commit = 2
sync-binlog = 0
EOF
    chmod 644 "$MARIADB_CNF"
}

mariadb_init() {
    say "mariadb: creating a data folder in $MARIADB_DATA"
    rm -rf "$MARIADB_DATA"
    (cd "$DIR" && /usr/bin/mariadb-install-db --defaults-file="$MARIADB_CNF" --user=mysql \
        --auth-root-authentication-method=socket --skip-test-db >>"$MARIADB_LOG" 2>&1) ||
        start_failed mariadb "$MARIADB_LOG" "mariadb-install-db failed"
    touch "$MARIADB_HOME/.initialized"
}

mariadb_start() {
    if mariadb_running && mariadb_answering; then
        say "mariadb: already answering on $HOST:$MARIADB_PORT"
        return
    fi
    check_user mysql
    make_dir "$MARIADB_HOME" mysql 755
    make_dir "$MARIADB_RUN" mysql 755
    make_log "$MARIADB_LOG" mysql
    mariadb_write_config
    if ! mariadb_running; then
        port_free_for mariadb "$MARIADB_PORT"
        [[ -e $MARIADB_HOME/.initialized ]] || mariadb_init
        say "mariadb: starting on $HOST:$MARIADB_PORT"
        # Started as root, mariadbd switches to the user named in my.cnf itself, so no
        # wrapper process stays behind; setsid detaches it from the caller's terminal.
        (
            cd "$DIR"
            setsid /usr/sbin/mariadbd --defaults-file="$MARIADB_CNF" \
                </dev/null >>"$MARIADB_LOG" 2>&1 9>&- &
        )
    fi
    wait_until mariadb "$MARIADB_LOG" mariadb_pinged
    mariadb_provision >>"$MARIADB_LOG" 2>&1 ||
        start_failed mariadb "$MARIADB_LOG" "creating user $SR_USER failed"
    wait_until mariadb "$MARIADB_LOG" mariadb_answering
}

mariadb_stop() {
    mariadb_running || return 0
    say "mariadb: stopping"
    stop_pid mariadb "$MARIADB_PID"
}
