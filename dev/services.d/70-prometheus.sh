# shellcheck shell=bash
# Sourced by dev/services: one service section (see docs/services.md).

SERVICES+=(prometheus)

# ---------------------------------------------------------------------------------------
# Prometheus (Debian's package), scraping the targets tests drop into its targets folder
# (file service discovery) every second, plus promtool for `promtool check metrics`.

readonly PROM_PORT=59090
readonly PROM_HOME="$DIR/prometheus"
readonly PROM_DATA="$PROM_HOME/data"
readonly PROM_TARGETS="$PROM_HOME/targets"
readonly PROM_CONF="$PROM_HOME/prometheus.yml"
readonly PROM_PID="$PROM_HOME/prometheus.pid"
readonly PROM_LOG="$PROM_HOME/prometheus.log"

prometheus_log() { printf '%s\n' "$PROM_LOG"; }

prometheus_packages() {
    if [[ ! -e /usr/bin/prometheus || ! -e /usr/bin/promtool ]]; then
        echo prometheus
    fi
}

prometheus_settings() {
    local prefix=STRONGROOM_TEST_PROMETHEUS
    echo "${prefix}_HOST=$HOST"
    echo "${prefix}_PORT=$PROM_PORT"
    echo "${prefix}_URL=http://$HOST:$PROM_PORT"
    echo "${prefix}_TARGETS=$PROM_TARGETS"
    echo "${prefix}_PROMTOOL=/usr/bin/promtool"
}

prometheus_running() { pid_alive "$PROM_PID"; }

prometheus_answering() {
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
        "http://$HOST:$PROM_PORT/-/ready" >/dev/null 2>&1
}

prometheus_start() {
    if prometheus_running && prometheus_answering; then
        say "prometheus: already answering on $HOST:$PROM_PORT"
        return
    fi
    check_user prometheus
    make_dir "$PROM_HOME" prometheus 755
    make_dir "$PROM_DATA" prometheus 750
    # Tests (root) write target files here; prometheus only reads them.
    make_dir "$PROM_TARGETS" root 755
    make_log "$PROM_LOG" prometheus
    cat >"$PROM_CONF" <<EOF2
# Written by dev/services on every start: change the script, not this file.
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: strongroom-tests
    file_sd_configs:
      - files: ['$PROM_TARGETS/*.json']
        refresh_interval: 1s
EOF2
    chmod 644 "$PROM_CONF"
    if ! prometheus_running; then
        port_free_for prometheus "$PROM_PORT"
        say "prometheus: starting on $HOST:$PROM_PORT"
        # The shell writes its pid and becomes prometheus (exec), so the pid file names it.
        as_user prometheus setsid sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$PROM_PID" \
            /usr/bin/prometheus \
            --config.file="$PROM_CONF" \
            --storage.tsdb.path="$PROM_DATA" \
            --storage.tsdb.retention.time=1d \
            --web.listen-address="$HOST:$PROM_PORT" \
            </dev/null >>"$PROM_LOG" 2>&1 9>&- &
    fi
    wait_until prometheus "$PROM_LOG" prometheus_answering
}

prometheus_stop() {
    prometheus_running || return 0
    say "prometheus: stopping"
    stop_pid prometheus "$PROM_PID"
}
