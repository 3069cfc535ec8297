"""Issue 9: Django 5's bulk_create through bindproxy onto a MariaDB bind and a SQLite bind.

On PostgreSQL, Django's bulk_create sends one `INSERT … SELECT * FROM UNNEST((%s)::type[], …) RETURNING id`
with the columns as arrays (psycopg 3's client-side binding writes them as array literals). bindproxy turns it
into a multi-row INSERT for the translated binds. Django itself runs the test (a subprocess: its settings are
process-wide); the rows are then counted and spot-checked on each engine directly.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import MY_HOST, MY_PORT, MY_USER, PG_HOST, PG_PORT, PG_USER, PROXY_DBNAME, PROXY_USER, my_admin

N = 1000

SCRIPT = r"""
import datetime
import decimal
import json
import os
import sys

import django
from django.conf import settings

settings.configure(
    DATABASES={"default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": os.environ["BP_PORT"],
        "NAME": os.environ["BP_DB"],
        "USER": os.environ["BP_USER"],
    }},
    INSTALLED_APPS=[],
    USE_TZ=False,
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()
from django.db import connection, models  # noqa: E402


def model(name, table):
    attrs = {
        "__module__": __name__,
        "name": models.CharField(max_length=100),
        "qty": models.IntegerField(null=True),
        "price": models.DecimalField(max_digits=10, decimal_places=2),
        "active": models.BooleanField(),
        "born": models.DateField(null=True),
        "seen": models.DateTimeField(null=True),
        "Meta": type("Meta", (), {"app_label": "bulk", "db_table": table, "managed": False}),
    }
    return type(name, (models.Model,), attrs)


n = int(os.environ["BP_N"])
out = {}
sent = []


def capture(execute, sql, params, many, context):
    sent.append(sql)
    return execute(sql, params, many, context)


for name, table in (("OnMaria", "my_bulk"), ("OnSqlite", "lite_bulk")):
    M = model(name, table)
    objs = [
        M(
            name=f"n{i} 'q' \"d\" {{b}} ,x" if i % 7 else f"plain{i}",
            qty=None if i % 10 == 3 else i * 3 - 500,
            price=decimal.Decimal(i) / 4,
            active=bool(i % 2),
            born=None if i % 11 == 0 else datetime.date(2000, 1, 1) + datetime.timedelta(days=i),
            seen=datetime.datetime(2024, 2, 29, 12, 0, 0) + datetime.timedelta(seconds=i * 3601, microseconds=i),
        )
        for i in range(n)
    ]
    sent.clear()
    with connection.execute_wrapper(capture):
        made = M.objects.bulk_create(objs)
    out[table] = {
        "unnest": sum("UNNEST(" in s for s in sent),
        "statements": len([s for s in sent if s.lstrip().upper().startswith("INSERT")]),
        "ids": sorted(o.pk for o in made),
        "count": M.objects.count(),
        "spot": [[o.name, o.qty, str(o.price), o.active, str(o.born), str(o.seen)]
                 for o in M.objects.order_by("id").filter(id__in=[made[0].pk, made[3].pk, made[7].pk, made[-1].pk])],
    }
print(json.dumps(out))
"""


def expected(i: int) -> list:
    import datetime
    born = None if i % 11 == 0 else datetime.date(2000, 1, 1) + datetime.timedelta(days=i)
    seen = datetime.datetime(2024, 2, 29, 12, 0, 0) + datetime.timedelta(seconds=i * 3601, microseconds=i)
    return [
        f"n{i} 'q' \"d\" {{b}} ,x" if i % 7 else f"plain{i}",
        None if i % 10 == 3 else i * 3 - 500,
        str((Decimal(i) / 4).quantize(Decimal("0.01"))),
        bool(i % 2),
        str(born),
        str(seen),
    ]


DDL = ("CREATE TABLE {t} (id serial PRIMARY KEY, name varchar(100) NOT NULL, qty integer, price numeric(10,2) "
       "NOT NULL, active boolean NOT NULL, born date, seen timestamp)")


@pytest.fixture
def bulk_proxy(backends, mariadb, start_proxy):
    my_db = backends.mysql_db("djbulk")
    lite = backends.sqlite_path("djbulk")
    cfg = {
        "default_bind": "pg",
        "binds": {
            "pg": f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{backends.db('main')}?sslmode=disable",
            "my": f"mysql://{MY_USER}@{MY_HOST}:{MY_PORT}/{my_db}",
            "lite": f"sqlite:///{lite}",
        },
        "tables": {"my_*": "my", "lite_*": "lite"},
    }
    p = start_proxy(cfg, "djbulk")
    with p.connect() as c:
        for t in ("my_bulk", "lite_bulk"):
            c.execute(f"DROP TABLE IF EXISTS {t}")
            c.execute(DDL.format(t=t))
    yield p, my_db, lite


def test_django_bulk_create_unnest(bulk_proxy, tmp_path):
    p, my_db, lite = bulk_proxy
    script = tmp_path / "bulk.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, BP_PORT=str(p.port), BP_DB=PROXY_DBNAME, BP_USER=PROXY_USER, BP_N=str(N))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, f"Django failed:\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}"
    out = json.loads(run.stdout.strip().splitlines()[-1])
    for table in ("my_bulk", "lite_bulk"):
        r = out[table]
        # Django took its UNNEST path, in one INSERT, and got every generated key back
        assert r["unnest"] == 1 and r["statements"] == 1, r
        assert r["count"] == N, r
        assert len(set(r["ids"])) == N, r
        assert r["spot"] == [expected(i) for i in (0, 3, 7, N - 1)], r["spot"]

    # on the engines themselves
    with my_admin(my_db) as m, m.cursor() as cur:
        cur.execute("SELECT count(*), count(qty), count(born), sum(active), sum(price) FROM my_bulk")
        my_counts = cur.fetchone()
        cur.execute("SELECT name, qty, price, active, born, seen FROM my_bulk ORDER BY id LIMIT 1 OFFSET 7")
        my_row = cur.fetchone()
    with sqlite3.connect(lite) as s:
        lite_counts = s.execute("SELECT count(*), count(qty), count(born), sum(active), "
                                "sum(price) FROM lite_bulk").fetchone()
        lite_row = s.execute("SELECT name, qty, price, active, born, seen FROM lite_bulk ORDER BY id "
                             "LIMIT 1 OFFSET 7").fetchone()
    want_counts = (N, N - sum(1 for i in range(N) if i % 10 == 3), N - sum(1 for i in range(N) if i % 11 == 0),
                   N // 2, sum((Decimal(i) / 4).quantize(Decimal("0.01")) for i in range(N)))
    assert (my_counts[0], my_counts[1], my_counts[2], int(my_counts[3]), Decimal(my_counts[4])) == want_counts
    assert (lite_counts[0], lite_counts[1], lite_counts[2], lite_counts[3],
            Decimal(str(lite_counts[4])).quantize(Decimal("0.01"))) == want_counts
    e = expected(7)
    assert [my_row[0], my_row[1], str(my_row[2]), bool(my_row[3]), str(my_row[4]), str(my_row[5])] == e, my_row
    assert [lite_row[0], lite_row[1], f"{Decimal(str(lite_row[2])):.2f}", bool(lite_row[3]), lite_row[4],
            lite_row[5]] == e, lite_row
