"""Writers from several connections at once queue for the ledger: the chain never forks."""

import threading

from stepout.adapters.db import Database
from tests.integration.builders import at, practice, session
from tests.keys import run_keys

WRITERS = 2
ROUNDS = 25


def test_concurrent_appends_never_fork_the_chain(db: Database, db_url: str) -> None:
    with db.uow() as uow:
        uow.ledger.append([practice()])
        uow.commit()
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        mine = Database.open(db_url, keys=run_keys())  # its own engine and connections
        try:
            start.wait()
            for i in range(ROUNDS):
                with mine.uow() as uow:
                    uow.ledger.append([session(f"s{n}-{i}-a", at(i))])
                    uow.ledger.append([session(f"s{n}-{i}-b", at(i))])
                    uow.commit()
        except BaseException as e:
            errors.append(e)
        finally:
            mine.dispose()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db = Database.open(db_url, keys=run_keys())
    try:
        result = db.verify_ledger()
        assert result.ok, result
        assert result.checked == 1 + WRITERS * ROUNDS * 2
        with db.uow(read_only=True) as uow:
            found = uow.records.sessions(
                f"s{n}-{i}-a" for n in range(WRITERS) for i in range(ROUNDS)
            )
        assert len(found) == WRITERS * ROUNDS
    finally:
        db.dispose()
