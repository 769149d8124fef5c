"""Appending to the hash-chained release log, and verifying it (docs/keys.md).

    set -a; . var/services.env; set +a
    .venv/bin/python bench/audit_chain.py --database-url "$MYNA_TEST_DATABASE_URL" \
        --redis-url "$MYNA_TEST_REDIS_URL" [--records 2000] [--threads 8]

Empties the given test database (as every test does), enrolls one resident, appends
``--records`` releases from ``--threads`` threads of one app (each insert takes the chain-head
row lock and commits), then times :func:`~idp.storage.audit.verify_chain` over them.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from provider_support import enroll_test_resident, make_app

from idp.extensions import close_connections
from idp.storage.audit import record_release, verify_chain
from idp.storage.base import db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    app = make_app(args.database_url, args.redis_url)
    with app.app_context():
        resident_id = enroll_test_resident().id
    each = args.records // args.threads

    def append(index: int) -> None:
        with app.app_context():
            for i in range(each):
                record_release(
                    resident_id=resident_id,
                    client_id=f"rp-{index}",
                    items=["name", "address"],
                    request_id=f"{index}-{i}",
                )
            db.session.remove()

    threads = [threading.Thread(target=append, args=(i,)) for i in range(args.threads)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    appended = time.perf_counter() - started
    with app.app_context():
        started = time.perf_counter()
        report = verify_chain()
        verified = time.perf_counter() - started
    close_connections(app)
    total = each * args.threads
    rate = total / appended
    print(f"append: {total} records, {args.threads} threads, {appended:.2f} s, {rate:.0f}/s")
    rate = report.records / verified
    print(f"verify: {report.records} records, {verified:.2f} s, {rate:.0f}/s, ok={report.ok}")


if __name__ == "__main__":
    main()
