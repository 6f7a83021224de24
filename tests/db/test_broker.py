"""Queue depths read through kombu, on both brokers nurture runs on, from one connection."""

from __future__ import annotations

from pathlib import Path

import redis
from kombu import Connection, Exchange, Queue

from nurture.broker import QUEUES, BrokerGauge
from tests.conftest import REDIS_URL


def publish(url: str, queue: str, count: int) -> None:
    with Connection(url) as connection:
        target = Queue(queue, Exchange(queue), routing_key=queue)
        producer = connection.Producer()
        for n in range(count):
            producer.publish(
                {"n": n}, exchange=target.exchange, routing_key=queue, declare=[target]
            )


def test_the_embedded_broker_counts_what_waits(tmp_path: Path) -> None:
    url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    gauge = BrokerGauge(url)
    try:
        assert gauge.depths() == dict.fromkeys(QUEUES, 0)
        publish(url, "sms", 3)
        publish(url, "email", 1)
        assert gauge.depths() == {"dispatch": 0, "email": 1, "sms": 3}
        assert gauge.reachable()
    finally:
        gauge.close()


def test_redis_priority_sub_queues_count_and_one_connection_serves_every_read() -> None:
    url = REDIS_URL.rsplit("/", 1)[0] + "/12"
    client = redis.Redis.from_url(url)
    client.flushdb()
    gauge = BrokerGauge(url)
    try:
        client.rpush("sms", "a", "b")
        client.rpush("sms\x06\x163", "c")  # kombu's priority step 3 of the same queue
        assert gauge.depths() == {"dispatch": 0, "email": 0, "sms": 3}
        first = client.client_list()
        for _ in range(5):
            gauge.depths()
        assert len(client.client_list()) == len(first)  # no new connection per read
    finally:
        gauge.close()
        client.flushdb()
        client.close()


def test_an_unreachable_broker_reads_as_unknown_not_as_an_error() -> None:
    gauge = BrokerGauge("redis://127.0.0.1:1/0", timeout=0.5)
    assert gauge.depths() == dict.fromkeys(QUEUES)
    assert not gauge.reachable()
