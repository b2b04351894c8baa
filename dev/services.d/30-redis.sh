# shellcheck shell=bash
# Sourced by dev/services: one service section (see docs/services.md).

SERVICES+=(redis)

# ---------------------------------------------------------------------------------------
# Redis

readonly REDIS_PORT=56379
readonly REDIS_HOME="$DIR/redis"
readonly REDIS_DATA="$REDIS_HOME/data"
readonly REDIS_CONF="$REDIS_HOME/redis.conf"
readonly REDIS_PID="$REDIS_HOME/redis.pid"
readonly REDIS_LOG="$REDIS_HOME/redis.log"

redis_log() { printf '%s\n' "$REDIS_LOG"; }

redis_packages() {
    if [[ ! -e /usr/bin/redis-server || ! -e /usr/bin/redis-cli ]]; then
        echo redis-server redis-tools
    fi
}

redis_settings() {
    local prefix=STRONGROOM_TEST_REDIS
    echo "${prefix}_HOST=$HOST"
    echo "${prefix}_PORT=$REDIS_PORT"
    echo "${prefix}_USER=$SR_USER"
    echo "${prefix}_PASSWORD=$SR_PASSWORD"
    echo "${prefix}_URL=redis://$SR_USER:$SR_PASSWORD@$HOST:$REDIS_PORT/0"
}

redis_running() { pid_alive "$REDIS_PID"; }

redis_answering() {
    [[ -x /usr/bin/redis-cli ]] || return 1
    local reply
    reply=$(REDISCLI_AUTH=$SR_PASSWORD timeout 5 /usr/bin/redis-cli --no-auth-warning \
        -h "$HOST" -p "$REDIS_PORT" --user "$SR_USER" ping 2>/dev/null) || return 1
    [[ $reply == PONG ]]
}

redis_start() {
    if redis_running && redis_answering; then
        say "redis: already answering on $HOST:$REDIS_PORT"
        return
    fi
    check_user redis
    make_dir "$REDIS_HOME" redis 755
    make_dir "$REDIS_DATA" redis 750
    make_log "$REDIS_LOG" redis
    # Holds the password, so only root and redis read it.
    (umask 027 && cat >"$REDIS_CONF" <<EOF
# Written by dev/services on every start: change the script, not this file.
bind $HOST
port $REDIS_PORT
protected-mode yes
daemonize yes
supervised no
pidfile $REDIS_PID
logfile $REDIS_LOG
dir $REDIS_DATA
dbfilename dump.rdb
save 3600 1 300 100 60 10000
appendonly no
requirepass $SR_PASSWORD
user $SR_USER on >$SR_PASSWORD ~* &* +@all
EOF
    )
    chown root:redis "$REDIS_CONF"
    chmod 640 "$REDIS_CONF"
    if ! redis_running; then
        port_free_for redis "$REDIS_PORT"
        say "redis: starting on $HOST:$REDIS_PORT"
        # daemonize yes: the server forks and this returns once the config is accepted.
        as_user redis /usr/bin/redis-server "$REDIS_CONF" </dev/null >>"$REDIS_LOG" 2>&1 ||
            start_failed redis "$REDIS_LOG" "redis-server refused to start"
    fi
    wait_until redis "$REDIS_LOG" redis_answering
}

redis_stop() {
    redis_running || return 0
    say "redis: stopping"
    stop_pid redis "$REDIS_PID"
}
