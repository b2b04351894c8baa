"""Smoke tests of the real servers that `dev/services up` starts.

Each test logs in with the project's credentials through the Python client that strongroom's
own tests use, writes real data, reads it back and removes it again. Names are unique per run
because several test runs may share the servers.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from botocore.exceptions import ClientError
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic
from playwright.sync_api import sync_playwright
from psycopg import sql
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.services import (
    ChromiumService,
    KafkaService,
    KubeService,
    MariaDBService,
    PostgresService,
    PrometheusService,
    RedisService,
    S3Service,
    unique_name,
)
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

ROWS = [(1, "alpha"), (2, "beta"), (3, "gamma")]


def test_postgres_is_version_15_and_stores_rows_with_pgcrypto(
    postgres_service: PostgresService,
) -> None:
    database = unique_name("sr_smoke")
    with postgres_service.connect(autocommit=True) as admin:
        assert admin.info.server_version // 10000 == 15
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        with postgres_service.connect(database) as connection:
            connection.execute("CREATE EXTENSION pgcrypto")
            connection.execute(
                "CREATE TABLE item (id integer PRIMARY KEY, name text NOT NULL, digest bytea)"
            )
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO item (id, name, digest) VALUES (%s, %s, digest(%s, 'sha256'))",
                    [(number, name, name) for number, name in ROWS],
                )
            rows = connection.execute("SELECT id, name, digest FROM item ORDER BY id").fetchall()
    finally:
        with postgres_service.connect(autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )

    assert rows == [(number, name, hashlib.sha256(name.encode()).digest()) for number, name in ROWS]


def test_mariadb_stores_rows_and_checksums_tables(mariadb_service: MariaDBService) -> None:
    database = unique_name("sr_smoke")
    with closing(mariadb_service.connect()) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW GRANTS FOR CURRENT_USER()")
        grants = " ".join(row[0] for row in cursor.fetchall())
        assert "ALL PRIVILEGES ON *.*" in grants
        assert "WITH GRANT OPTION" in grants

        cursor.execute(f"CREATE DATABASE `{database}`")
        try:
            cursor.execute(
                f"CREATE TABLE `{database}`.item "
                "(id INT PRIMARY KEY, name VARCHAR(50) NOT NULL) ENGINE=InnoDB"
            )
            cursor.executemany(f"INSERT INTO `{database}`.item VALUES (%s, %s)", ROWS)
            cursor.execute(f"CREATE TABLE `{database}`.copy LIKE `{database}`.item")
            cursor.execute(f"INSERT INTO `{database}`.copy SELECT * FROM `{database}`.item")
            connection.commit()

            cursor.execute(f"SELECT id, name FROM `{database}`.item ORDER BY id")
            rows = [tuple(row) for row in cursor.fetchall()]
            cursor.execute(f"CHECKSUM TABLE `{database}`.item, `{database}`.copy")
            checksums = dict(cursor.fetchall())
            cursor.execute(f"UPDATE `{database}`.copy SET name = 'changed' WHERE id = 2")
            connection.commit()
            cursor.execute(f"CHECKSUM TABLE `{database}`.copy")
            changed = cursor.fetchone()[1]
        finally:
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")

    assert rows == ROWS
    item, copy = checksums[f"{database}.item"], checksums[f"{database}.copy"]
    assert item is not None
    assert item == copy
    assert changed != item


def test_redis_stores_a_key_and_refuses_anonymous_clients(redis_service: RedisService) -> None:
    key = unique_name("strongroom:smoke")
    value = b"\x00binary\xffpayload"
    with closing(redis_service.connect()) as client:
        try:
            client.set(key, value, ex=600)
            stored = client.get(key)
            ttl = client.ttl(key)
        finally:
            client.delete(key)
        assert client.exists(key) == 0

    assert stored == value
    assert 0 < ttl <= 600

    # No retries: redis-py retries connection errors, and a refused login is one.
    anonymous = redis.Redis(
        host=redis_service.host, port=redis_service.port, retry=Retry(NoBackoff(), 0)
    )
    with closing(anonymous), pytest.raises(redis.AuthenticationError):
        anonymous.ping()


def test_kafka_is_version_4_keeps_transactions_and_refuses_a_wrong_password(
    kafka_service: KafkaService,
) -> None:
    assert kafka_service.version.startswith("4.")
    topic = unique_name("sr-smoke")
    admin = kafka_service.connect()
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(60)
    try:
        # kcat, an independent client, writes a keyed record with headers over SASL.
        subprocess.run(
            ["kcat", "-P", "-b", kafka_service.sasl_bootstrap, "-t", topic, "-p", "1", "-K", ":",
             "-H", "origin=kcat", "-H", "origin=again",
             "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=PLAIN",
             "-X", f"sasl.username={kafka_service.user}",
             "-X", f"sasl.password={kafka_service.password}"],
            input=b"key-1:value-1\n", check=True, timeout=60,
        )  # fmt: skip
        # One committed and one aborted transaction on partition 0.
        producer = Producer(kafka_service.client_config(**{"transactional.id": topic}))
        producer.init_transactions(60)
        for value, commit in ((b"kept", True), (b"aborted", False)):
            producer.begin_transaction()
            producer.produce(topic, value=value, partition=0)
            if commit:
                producer.commit_transaction(60)
            else:
                producer.abort_transaction(60)
        consumer = Consumer(
            kafka_service.sasl_config(
                **{"group.id": topic, "isolation.level": "read_committed",
                   "enable.partition.eof": True, "auto.offset.reset": "earliest"}
            )
        )  # fmt: skip
        try:
            consumer.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
            records, ends = [], 0
            while ends < 2:
                message = consumer.poll(30)
                assert message is not None, "the broker sent nothing for 30 s"
                if message.error():
                    assert message.error().code() == KafkaError._PARTITION_EOF
                    ends += 1
                    continue
                records.append(
                    (message.partition(), message.key(), message.value(), message.headers())
                )
        finally:
            consumer.close()
    finally:
        admin.delete_topics([topic])[topic].result(60)

    assert sorted(records, key=lambda record: record[0]) == [
        (0, None, b"kept", None),
        (1, b"key-1", b"value-1", [("origin", b"kcat"), ("origin", b"again")]),
    ]
    # librdkafka reports a refused login through its error callback, then keeps retrying.
    errors: list[KafkaError] = []
    wrong = Consumer(
        kafka_service.sasl_config(
            password="wrong", **{"group.id": topic, "error_cb": errors.append}
        )
    )
    try:
        with pytest.raises(KafkaException):
            wrong.list_topics(timeout=10)
    finally:
        wrong.close()
    assert KafkaError._AUTHENTICATION in {error.code() for error in errors}


def test_s3_keeps_versions_and_refuses_to_delete_a_locked_one(s3_service: S3Service) -> None:
    client = s3_service.connect()
    key = unique_name("smoke") + "/locked"
    for bucket in (s3_service.bucket, s3_service.dr_bucket):
        lock = client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
        assert lock["ObjectLockEnabled"] == "Enabled"
        assert client.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    with pytest.raises(ClientError) as no_lock:
        client.get_object_lock_configuration(Bucket=s3_service.plain_bucket)
    assert no_lock.value.response["Error"]["Code"] == "ObjectLockConfigurationNotFoundError"
    assert client.get_bucket_versioning(Bucket=s3_service.plain_bucket).get("Status") is None

    # COMPLIANCE for an hour: nobody may delete this version before then, not even root.
    written = client.put_object(
        Bucket=s3_service.bucket,
        Key=key,
        Body=b"kept",
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(hours=1),
    )
    client.put_object(Bucket=s3_service.bucket, Key=key, Body=b"newer, unlocked")
    versions = client.list_object_versions(Bucket=s3_service.bucket, Prefix=key)["Versions"]
    with pytest.raises(ClientError) as refused:
        client.delete_object(
            Bucket=s3_service.bucket,
            Key=key,
            VersionId=written["VersionId"],
            BypassGovernanceRetention=True,
        )
    kept = client.get_object(Bucket=s3_service.bucket, Key=key, VersionId=written["VersionId"])

    assert len(versions) == 2
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert kept["Body"].read() == b"kept"


def test_kube_apiserver_stores_objects_in_etcd_and_enforces_rbac(
    kube_service: KubeService,
) -> None:
    from kubernetes.client import ApiException, CoreV1Api, VersionApi

    namespace = unique_name("sr-smoke").replace("_", "-").lower()
    value = "caf\u00e9\n\u2603"
    with kube_service.connect() as admin_client:
        version = VersionApi(admin_client).get_code()
        core = CoreV1Api(admin_client)
        core.create_namespace({"metadata": {"name": namespace}})
        try:
            core.create_namespaced_config_map(
                namespace, {"metadata": {"name": "smoke"}, "data": {"text": value}}
            )
            stored = core.read_namespaced_config_map("smoke", namespace).data
            with (
                kube_service.connect(kube_service.limited_context) as limited_client,
                pytest.raises(ApiException) as refused,
            ):
                CoreV1Api(limited_client).read_namespaced_config_map("smoke", namespace)
            core.delete_namespaced_config_map("smoke", namespace)
            with pytest.raises(ApiException) as gone:
                core.read_namespaced_config_map("smoke", namespace)
        finally:
            # No namespace controller runs: the namespace is emptied above, then finalized.
            core.delete_namespace(namespace)
            core.replace_namespace_finalize(
                namespace, {"metadata": {"name": namespace}, "spec": {"finalizers": []}}
            )

    assert version.git_version.startswith("v1.37.")
    assert stored == {"text": value}
    assert refused.value.status == 403
    assert gone.value.status == 404


def test_prometheus_scrapes_a_target_file_dropped_into_its_folder(
    prometheus_service: PrometheusService,
) -> None:
    name = unique_name("sr_smoke")
    target = prometheus_service.targets / f"{name}.json"
    # Prometheus scrapes itself through the file: the target shows up as `up == 1`.
    address = prometheus_service.url.removeprefix("http://")
    target.write_text(json.dumps([{"targets": [address], "labels": {"smoke": name}}]))
    try:
        result = wait_for(lambda: prometheus_service.query(f'up{{smoke="{name}"}} == 1'))
    finally:
        target.unlink()
    assert result[0]["metric"]["smoke"] == name


SMOKE_PAGE = b"""<!doctype html><title>smoke</title>
<button id="press">press</button><p id="said">not pressed</p>
<script>document.getElementById("press").onclick =
  () => { document.getElementById("said").textContent = "pressed"; };</script>"""


class _SmokePageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(SMOKE_PAGE)))
        self.end_headers()
        self.wfile.write(SMOKE_PAGE)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test's output quiet."""


@contextmanager
def _serving_smoke_page() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SmokePageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_chromium_runs_a_pages_script_and_matches_its_driver(
    chromium_service: ChromiumService,
) -> None:
    driver = subprocess.run(
        [chromium_service.driver, "--version"], capture_output=True, text=True, check=True
    ).stdout
    with _serving_smoke_page() as address, sync_playwright() as playwright:
        browser = chromium_service.connect(playwright)
        try:
            page = browser.new_page()
            page.goto(address)
            page.click("#press")
            said = page.text_content("#said")
            screenshot = page.screenshot()
            version = browser.version
        finally:
            browser.close()
    assert said == "pressed"
    assert screenshot.startswith(b"\x89PNG")
    # Debian ships both from one source package: the driver speaks to this very browser.
    assert driver.split()[1] == version
