"""What strongroom's messages say: a run summary per resource, a failure with its hint."""

from __future__ import annotations

from html.parser import HTMLParser

from strongroom.notify.messages import build_message, seconds, size

RUN_EVENT = {
    "schema_version": 1,
    "id": 7,
    "type": "backup.run.completed",
    "subject": "run-1",
    "at": "2030-01-01T03:10:00+00:00",
    "payload": {
        "run_id": "run-1",
        "plan": "production",
        "rule": "nightly",
        "vault": "main",
        "state": "PARTIAL",
        "counts": {"jobs": 2},
        "logical_size": 3 * 1024**3,
        "stored_size": 1024**3,
        "duration_seconds": 600,
        "problems": [],
    },
}
SUMMARY = {
    "resources": [
        {
            "resource": "orders-db",
            "state": "COMPLETED",
            "attempts": 1,
            "duration_seconds": 125,
            "logical_size": 2 * 1024**3,
            "stored_size": 1024**3,
            "recovery_point": "p-1",
            "error": None,
        },
        {
            "resource": "cache",
            "state": "FAILED",
            "attempts": 3,
            "duration_seconds": 4,
            "logical_size": None,
            "stored_size": None,
            "recovery_point": None,
            "error": {"code": "NetworkError", "message": "connection refused"},
        },
    ]
}


class Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_row = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr" and ("class", "component") in attrs:
            self._in_row = True
            self.rows.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._in_row = False

    def handle_data(self, data: str) -> None:
        if self._in_row and data.strip():
            self.rows[-1].append(data.strip())


def test_a_run_summary_has_one_row_per_resource_and_the_totals() -> None:
    message = build_message(RUN_EVENT, severity="warning", details={"run_summary": SUMMARY})

    assert message.title == "run PARTIAL: production/nightly"
    parser = Rows()
    parser.feed(message.html)
    assert parser.rows == [
        ["orders-db", "COMPLETED", "1", "2m 5s", "2.0 GiB", "1.0 GiB", "p-1"],
        ["cache", "FAILED", "3", "4.0s", "-", "-", "-", "connection refused"],
    ]
    assert "totals: 2 job(s), 3.0 GiB logical, 1.0 GiB stored, 10m 0s" in message.text
    assert "cache: FAILED, 3 attempt(s)" in message.text


def test_markup_in_event_data_is_escaped_in_the_html() -> None:
    event = {**RUN_EVENT, "payload": {**RUN_EVENT["payload"], "plan": "<script>x</script>"}}

    message = build_message(event, severity="info")

    assert "<script>" not in message.html and "&lt;script&gt;" in message.html


def test_sizes_and_durations_read_as_people_write_them() -> None:
    assert [size(0), size(1536), size(5 * 1024**4), size(None)] == [
        "0 B",
        "1.5 KiB",
        "5.0 TiB",
        "-",
    ]
    assert [seconds(0.25), seconds(61), seconds(7320), seconds(None)] == [
        "0.2s",
        "1m 1s",
        "2h 2m",
        "-",
    ]
