use super::*;
#[test]
fn eyeball() {
    let stmts = [
        "CREATE TABLE sa_author (\n id SERIAL NOT NULL, \n name VARCHAR(100) NOT NULL, \n PRIMARY KEY (id)\n)",
        "CREATE TABLE public.sa_book (id SERIAL NOT NULL, title VARCHAR(200), author_id INTEGER, price NUMERIC(10, 2), PRIMARY KEY (id), FOREIGN KEY(author_id) REFERENCES sa_author (id))",
        "CREATE TABLE t (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), flag boolean DEFAULT false, ts timestamptz DEFAULT now(), d date DEFAULT CURRENT_DATE, j jsonb, b bytea, email text UNIQUE, \"Key\" int)",
        "CREATE INDEX ix_sa_author_name ON sa_author (name)",
        "INSERT INTO sa_author (name) VALUES ($1::VARCHAR) RETURNING sa_author.id",
        "INSERT INTO public.sa_book (title, author_id, price) VALUES ('t', 1, 1.5) RETURNING public.sa_book.id",
        "SELECT public.sa_book.title, sa_author.name FROM public.sa_book JOIN sa_author ON public.sa_book.author_id = sa_author.id WHERE sa_author.name LIKE 'a%' ORDER BY public.sa_book.id LIMIT 10",
        "UPDATE public.sa_book SET price=(public.sa_book.price + 1) WHERE public.sa_book.id = 1",
        "SELECT a.id FROM sa_author AS a WHERE a.name ILIKE $2 AND a.id = $1 AND a.id IN ($1, $3) OR a.name || 'x' = $4 OFFSET $5",
        "INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
        "INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING",
        "SELECT x::int, '2024-01-01'::date, 't'::boolean, true, now(), CURRENT_TIMESTAMP FROM t WHERE d BETWEEN $1 AND $2",
        "DELETE FROM t WHERE id = $1 RETURNING *",
        "BEGIN ISOLATION LEVEL SERIALIZABLE",
        "DROP TABLE IF EXISTS a CASCADE",
        "DROP INDEX ix",
    ];
    for t in [Target::MySql, Target::Sqlite] {
        for s in stmts {
            match rewrite_sql(s, t) {
                Ok(r) => for r in r { println!("{t:?}: {}\n   params={:?} hints={:?} types={:?} ret={:?} before={:?}", r.sql, r.params, r.param_hints, r.pg_types, r.returning, r.before) },
                Err(e) => println!("{t:?}: ERR {e}"),
            }
        }
    }
}
#[test]
fn find_panic() {
    for s in ["SELECT '42'::int + 1, CAST('2024-01-02' AS date), 'a' || name || 'z' FROM sa_author WHERE id = 1", "SELECT 'x' || NULL IS NULL", "CREATE TABLE flags (id integer PRIMARY KEY, active boolean NOT NULL DEFAULT false, note text)", "INSERT INTO flags (id, active) VALUES (1, true), (2, FALSE), (3, DEFAULT)"] {
        eprintln!("{s}");
        eprintln!("{:?}", rewrite_sql(s, Target::MySql).map(|v| v[0].sql.clone()));
    }
}
