"""The Celery peer of the end-to-end suite (bench/e2e.ts): a no-op task on a Redis broker.

Worker: `python3 -m celery -A celery_noop worker -Q <queue> --pool prefork|threads -c N ...`
(cwd bench/, env BENCH_REDIS_URL). Producer: `python3 celery_noop.py` reads lines
"fill <queue> <count>" on stdin, publishes <count> noop tasks to <queue> and answers "ok".
No result backend (Celery's default: results are not stored). acks_late, so a task is acked
after it ran, as BullMQ's jobs are (at-least-once); prefetch multiplier left at its default.
"""
import os
import sys

from celery import Celery

app = Celery("celery_noop", broker=os.environ["BENCH_REDIS_URL"])
app.conf.update(
    task_acks_late=True,
    worker_hijack_root_logger=True,
    broker_connection_retry_on_startup=True,
)


@app.task(name="noop")
def noop():
    return None


if __name__ == "__main__":
    with app.producer_or_acquire() as producer:
        for line in sys.stdin:
            command, queue, count = line.split()
            assert command == "fill"
            for _ in range(int(count)):
                noop.apply_async(queue=queue, producer=producer)
            print("ok", flush=True)
