"""The demo app of deploy/docker-compose.yml: one connection string, three databases behind it.

users lives in PostgreSQL, events_2026 in MariaDB, countries in SQLite (deploy/bindproxy.yaml); the app
does not know. One transaction writes to all three.
"""
import os

import psycopg

with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
    conn.execute("CREATE TABLE IF NOT EXISTS users (id serial PRIMARY KEY, name text NOT NULL)")
    conn.execute("CREATE TABLE IF NOT EXISTS events_2026 (id serial PRIMARY KEY, user_id int, kind text)")
    conn.execute("CREATE TABLE IF NOT EXISTS countries (code text PRIMARY KEY, name text)")
    conn.commit()
    with conn.transaction():
        user_id = conn.execute("INSERT INTO users (name) VALUES ('ada') RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO events_2026 (user_id, kind) VALUES (%s, 'signup')", (user_id,))
        conn.execute("INSERT INTO countries VALUES ('fr', 'France') ON CONFLICT (code) DO NOTHING")
    for table in ("users", "events_2026", "countries"):
        print(table, conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
