# shellcheck shell=bash
# Sourced by dev/services: one service section (see docs/services.md).

SERVICES+=(chromium)

# ---------------------------------------------------------------------------------------
# Chromium and ChromeDriver (Debian's packages) for the browser tests of the web console.
#
# Not a daemon: each test run starts its own headless Chromium (Playwright, with
# executable_path=/usr/bin/chromium) with a fresh profile, so parallel runs never share a
# browser. "Running" means the binary is installed; "answering" means one headless Chromium
# rendered a page with the flags the tests use. There is no port, so the settings give the
# executable (as a file:// URL, the key every service has) instead of a host and port.

readonly CHROMIUM_BIN=/usr/bin/chromium
readonly CHROMIUM_DRIVER=/usr/bin/chromedriver
readonly CHROMIUM_HOME="$DIR/chromium"
readonly CHROMIUM_LOG="$CHROMIUM_HOME/chromium.log"
# The flags that work on a closed network as root: without the background-networking ones
# Chromium keeps trying Google's hosts and its connections are refused.
readonly CHROMIUM_FLAGS="--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage"

chromium_log() { printf '%s\n' "$CHROMIUM_LOG"; }

chromium_packages() {
    [[ -x $CHROMIUM_BIN ]] || echo chromium
    [[ -x $CHROMIUM_DRIVER ]] || echo chromium-driver
    # Fonts for readable screenshots (already there with WeasyPrint's Pango; cheap if not).
    [[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || echo fonts-dejavu-core
}

chromium_settings() {
    local prefix=STRONGROOM_TEST_CHROMIUM
    echo "${prefix}_URL=file://$CHROMIUM_BIN"
    echo "${prefix}_EXECUTABLE=$CHROMIUM_BIN"
    echo "${prefix}_DRIVER=$CHROMIUM_DRIVER"
    echo "${prefix}_FLAGS=$CHROMIUM_FLAGS"
}

chromium_running() { [[ -x $CHROMIUM_BIN && -x $CHROMIUM_DRIVER ]]; }

# One headless Chromium, with a profile of its own, prints the DOM of a small page.
chromium_answering() {
    chromium_running || return 1
    local profile status=0 dom
    profile=$(mktemp -d "${TMPDIR:-/tmp}/strongroom-chromium.XXXXXX")
    # shellcheck disable=SC2086 # the flags are words on purpose
    dom=$(timeout 60 "$CHROMIUM_BIN" $CHROMIUM_FLAGS --user-data-dir="$profile" \
        --dump-dom 'data:text/html,<p id=probe>strongroom-probe</p>' 2>>"$CHROMIUM_LOG") ||
        status=$?
    rm -rf "$profile"
    ((status == 0)) && [[ $dom == *strongroom-probe* ]]
}

chromium_start() {
    make_dir "$CHROMIUM_HOME" root 755
    make_log "$CHROMIUM_LOG" root
    wait_until chromium "$CHROMIUM_LOG" chromium_answering
}

# Nothing runs between test runs; each run's browser ends with it.
chromium_stop() { return 0; }
