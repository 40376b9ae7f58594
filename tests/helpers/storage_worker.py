"""A separate process that writes to or reads from a state database, for storage tests.

python -m tests.helpers.storage_worker write DB NAME COUNT STEPS   (COUNT 0 = until killed)
python -m tests.helpers.storage_worker read DB SECONDS
Writers print "committed N" after each transaction.
"""

from __future__ import annotations

import asyncio
import sys
import time

from storage import Queries, open_database
from tests.helpers.builders import new_deployment


async def write(db_path: str, name: str, count: int, steps: int) -> None:
    db = await open_database(db_path)
    queries = Queries(db)
    deployment = await queries.get_deployment(name)
    if deployment is None:
        deployment = await queries.create_deployment(new_deployment(name, repo="o/r"), actor="test")
    done = 0
    while count == 0 or done < count:
        await queries.queue_run(
            deployment.id,
            "deploy",
            trigger="test",
            actor=f"writer-{name}",
            steps=[f"step-{i}" for i in range(steps)],
            commit_message=f"steps={steps}",
        )
        done += 1
        print(f"committed {done}", flush=True)
    await db.close()


async def read(db_path: str, seconds: float) -> None:
    db = await open_database(db_path)
    reads = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await db.fetchall(
            "SELECT r.id, count(s.id) FROM runs r JOIN steps s ON s.run_id = r.id GROUP BY r.id"
        )
        reads += 1
    await db.close()
    print(f"reads {reads}", flush=True)


def main() -> None:
    mode = sys.argv[1]
    if mode == "write":
        asyncio.run(write(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
    else:
        asyncio.run(read(sys.argv[2], float(sys.argv[3])))


if __name__ == "__main__":
    main()
