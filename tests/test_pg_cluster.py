"""The PostgreSQL fixtures: each test gets an empty database of its own, by a URL that psycopg and
another process (psql here; `tsk server` in the fleet tests) can use."""

from __future__ import annotations

import shutil
import subprocess

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict


def _tables(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    return [str(r[0]) for r in rows]


# Two tests that each find their database empty, then fill it: whichever runs second would see the
# other's table if the databases were shared.
@pytest.mark.parametrize("table", ["tasks_a", "tasks_b"])
def test_each_test_has_an_empty_database_of_its_own(pg_url: str, table: str) -> None:
    with psycopg.connect(pg_url) as conn:
        assert _tables(conn) == []
        conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, title text NOT NULL)")
        conn.execute(f"INSERT INTO {table} (title) VALUES (%s), (%s)", ("fix the build", "write docs"))
        conn.commit()
    with psycopg.connect(pg_url) as conn:
        assert _tables(conn) == [table]
        assert conn.execute(f"SELECT id, title FROM {table} ORDER BY id").fetchall() == [
            (1, "fix the build"), (2, "write docs")]


def test_another_process_can_use_the_url(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE marker (v int)")
        conn.execute("INSERT INTO marker VALUES (42)")
        conn.commit()
    psql = shutil.which("psql")
    assert psql, "no psql on PATH; run scripts/postgres"
    done = subprocess.run([psql, "-X", pg_url, "-c", "select 1"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([psql, "-XAt", pg_url, "-c", "SELECT v FROM marker"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "42"), done.stderr


def test_a_database_is_dropped_with_sessions_still_on_it(pg_cluster) -> None:  # type: ignore[no-untyped-def]
    url = pg_cluster.create_database()
    lingering = psycopg.connect(url)
    try:
        pg_cluster.drop_database(url)
        with psycopg.connect(pg_cluster.url("postgres")) as conn:
            name = conninfo_to_dict(url)["dbname"]
            assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)).fetchone() == (0,)
    finally:
        lingering.close()
