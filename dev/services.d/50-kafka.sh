# shellcheck shell=bash
# Sourced by dev/services: one service section (see docs/services.md).

SERVICES+=(kafka)

# ---------------------------------------------------------------------------------------
# Apache Kafka 4 in KRaft mode: one node that is broker and controller, from the release
# jars on Maven Central (dev/kafka/pom.xml), run with Java 17.
#
# Two client listeners: PLAINTEXT (no login) and SASL_PLAINTEXT with the PLAIN mechanism
# and the project's one login, so tests can check both a working and a refused login.

readonly KAFKA_PORT=59092
readonly KAFKA_SASL_PORT=59094
readonly KAFKA_CONTROLLER_PORT=59093
readonly KAFKA_HOME="$DIR/kafka"
readonly KAFKA_DATA="$KAFKA_HOME/data"
readonly KAFKA_CONF="$KAFKA_HOME/server.properties"
readonly KAFKA_LOG4J="$KAFKA_HOME/log4j2.properties"
readonly KAFKA_PID="$KAFKA_HOME/kafka.pid"
readonly KAFKA_LOG="$KAFKA_HOME/kafka.log"
readonly KAFKA_CLUSTER_ID_FILE="$KAFKA_HOME/cluster.id"
readonly KAFKA_JAVA=/usr/lib/jvm/java-17-openjdk-amd64/bin/java
readonly KAFKA_POM="$SCRIPT_DIR/kafka/pom.xml"
# The broker starts slower than the other servers (a JVM, then the KRaft quorum), more so
# on a loaded machine: it gets at least three minutes.
readonly KAFKA_TIMEOUT=$((TIMEOUT > 180 ? TIMEOUT : 180))

kafka_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM"; }

# The jars of one pom: cached by the pom's content, so a change of version rebuilds.
kafka_jars_cache() { printf '%s\n' "$CACHE_DIR/kafka/$(sha256sum "$KAFKA_POM" | cut -c1-16)/jars"; }

# The broker runs as user kafka, which cannot read a cache under /root: it gets a copy.
kafka_lib() { printf '%s\n' "$KAFKA_HOME/lib-$(kafka_version)"; }

kafka_log() { printf '%s\n' "$KAFKA_LOG"; }

kafka_packages() {
    [[ -x $KAFKA_JAVA ]] || echo openjdk-17-jre-headless
    command -v mvn >/dev/null || echo maven
    [[ -x /usr/bin/kcat ]] || echo kcat
}

kafka_settings() {
    local prefix=STRONGROOM_TEST_KAFKA
    echo "${prefix}_HOST=$HOST"
    echo "${prefix}_PORT=$KAFKA_PORT"
    echo "${prefix}_SASL_PORT=$KAFKA_SASL_PORT"
    echo "${prefix}_USER=$SR_USER"
    echo "${prefix}_PASSWORD=$SR_PASSWORD"
    echo "${prefix}_URL=kafka://$HOST:$KAFKA_PORT"
    echo "${prefix}_VERSION=$(kafka_version)"
}

# Resolve the broker's jars with Maven into the cache (idempotent; from nothing when the
# cache is empty). The local Maven repository lives in the cache too.
kafka_build() {
    local jars
    jars=$(kafka_jars_cache)
    [[ -e $jars/.complete ]] && return
    say "kafka: resolving Apache Kafka $(kafka_version) from Maven Central into $jars"
    rm -rf "$jars.tmp"
    mkdir -p "$jars.tmp"
    mvn -B -q -Dstyle.color=never -f "$KAFKA_POM" -Dmaven.repo.local="$CACHE_DIR/kafka/m2" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$jars.tmp" >&2 ||
        die "kafka: Maven could not resolve the broker's jars (dev/kafka/pom.xml)"
    touch "$jars.tmp/.complete"
    rm -rf "$jars"
    mv "$jars.tmp" "$jars"
}

kafka_running() { pid_alive "$KAFKA_PID"; }

# A metadata request over the SASL listener with the project's login: the broker answers
# it only once it is registered with its controller.
kafka_answering() {
    [[ -x /usr/bin/kcat ]] || return 1
    local reply
    reply=$(timeout 10 /usr/bin/kcat -L -m 5 -b "$HOST:$KAFKA_SASL_PORT" \
        -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN \
        -X sasl.username="$SR_USER" -X sasl.password="$SR_PASSWORD" 2>/dev/null) || return 1
    [[ $reply == *" 1 brokers:"* ]]
}

kafka_write_config() {
    cat >"$KAFKA_CONF" <<CONF
# Written by dev/services on every start: change the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,SASL_PLAINTEXT://$HOST:$KAFKA_SASL_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,SASL_PLAINTEXT://$HOST:$KAFKA_SASL_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SR_USER="$SR_PASSWORD";
log.dirs=$KAFKA_DATA
num.partitions=1
auto.create.topics.enable=false
# One node: every internal topic has one replica, so groups and transactions work.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
log.segment.bytes=67108864
CONF
    cat >"$KAFKA_LOG4J" <<CONF
# Written by dev/services on every start: change the script, not this file.
appender.out.type=Console
appender.out.name=out
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=out
logger.kafka.name=kafka
logger.kafka.level=INFO
logger.state.name=state.change.logger
logger.state.level=WARN
CONF
}

kafka_start() {
    if kafka_running && kafka_answering; then
        say "kafka: already answering on $HOST:$KAFKA_PORT"
        return
    fi
    id kafka >/dev/null 2>&1 ||
        useradd --system --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin kafka
    check_user kafka
    make_dir "$KAFKA_HOME" kafka 755
    make_dir "$KAFKA_DATA" kafka 750
    make_log "$KAFKA_LOG" kafka
    local lib
    lib=$(kafka_lib)
    if [[ ! -e $lib/.complete ]]; then
        rm -rf "$lib"
        cp -r "$(kafka_jars_cache)" "$lib"
        chmod -R a+rX "$lib"
    fi
    kafka_write_config
    chmod 644 "$KAFKA_CONF" "$KAFKA_LOG4J"
    local java=("$KAFKA_JAVA" -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
        -Dlog4j2.configurationFile="$KAFKA_LOG4J" -cp "$lib/*")
    if kafka_running; then
        wait_for_kafka
        return
    fi
    port_free_for kafka "$KAFKA_PORT"
    port_free_for kafka "$KAFKA_SASL_PORT"
    port_free_for kafka "$KAFKA_CONTROLLER_PORT"
    if [[ ! -s $KAFKA_CLUSTER_ID_FILE ]]; then
        "${java[@]}" kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOG" >"$KAFKA_CLUSTER_ID_FILE" ||
            start_failed kafka "$KAFKA_LOG" "kafka-storage random-uuid failed"
    fi
    if [[ ! -e $KAFKA_DATA/meta.properties ]]; then
        say "kafka: formatting storage in $KAFKA_DATA"
        as_user kafka "${java[@]}" kafka.tools.StorageTool format --ignore-formatted \
            -t "$(cat "$KAFKA_CLUSTER_ID_FILE")" -c "$KAFKA_CONF" >>"$KAFKA_LOG" 2>&1 ||
            start_failed kafka "$KAFKA_LOG" "kafka-storage format failed"
    fi
    say "kafka: starting Apache Kafka $(kafka_version) on $HOST:$KAFKA_PORT (SASL $KAFKA_SASL_PORT)"
    # setsid: the broker leaves this script's session; the shell writes its own pid, then
    # becomes the JVM (exec), so the pid file names the broker. 9>&- on the background
    # subshell too: it lives as long as the broker and must not hold the services lock.
    as_user kafka setsid sh -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_PID" \
        "${java[@]}" kafka.Kafka "$KAFKA_CONF" </dev/null >>"$KAFKA_LOG" 2>&1 9>&- &
    wait_for_kafka
}

wait_for_kafka() {
    local deadline=$((SECONDS + KAFKA_TIMEOUT))
    until kafka_answering; do
        if ((SECONDS >= deadline)); then
            start_failed kafka "$KAFKA_LOG" "did not answer within ${KAFKA_TIMEOUT}s"
        fi
        if ((SECONDS > 2)) && ! kafka_running && [[ -s $KAFKA_PID ]]; then
            start_failed kafka "$KAFKA_LOG" "the broker exited"
        fi
        sleep 0.5
    done
}

kafka_stop() {
    kafka_running || return 0
    say "kafka: stopping"
    stop_pid kafka "$KAFKA_PID"
}
