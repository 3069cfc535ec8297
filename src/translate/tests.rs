//! Rendered-SQL tests, one feature per test, on both targets.

use super::*;

fn one(sql: &str, t: Target) -> Rewritten {
    let mut v = rewrite_sql(sql, t).unwrap_or_else(|e| panic!("{sql} on {t:?}: {e}"));
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn my(sql: &str) -> String {
    one(sql, Target::MySql).sql
}

fn lite(sql: &str) -> String {
    one(sql, Target::Sqlite).sql
}

fn rejected(sql: &str, t: Target) -> String {
    match rewrite_sql(sql, t) {
        Err(TranslateError::Unsupported { construct }) => construct,
        other => panic!("{sql} on {t:?}: expected Unsupported, got {other:?}"),
    }
}

fn col(table: &str, column: &str) -> Option<ColumnRef> {
    Some(ColumnRef {
        table: table.into(),
        column: column.into(),
    })
}

#[test]
fn identifiers_are_folded_and_quoted() {
    assert_eq!(
        my("SELECT Name, \"Key\" FROM Users"),
        "SELECT `name`, `Key` FROM `users`"
    );
    assert_eq!(
        lite("SELECT Name, \"Key\" FROM Users"),
        "SELECT \"name\", \"Key\" FROM \"users\""
    );
    assert_eq!(
        my("SELECT public.t.a FROM public.t"),
        "SELECT `t`.`a` FROM `t`"
    );
    assert_eq!(my("SELECT \"we`ird\" FROM t"), "SELECT `we``ird` FROM `t`");
    assert!(rejected("SELECT * FROM other.t", Target::MySql).contains("schema"));
}

#[test]
fn placeholders_order_and_repeats() {
    let r = one(
        "SELECT * FROM t WHERE a = $2 AND b = $1 OR a = $2",
        Target::MySql,
    );
    assert_eq!(
        r.sql,
        "SELECT * FROM `t` WHERE `a` = ? AND `b` = ? OR `a` = ?"
    );
    assert_eq!(r.params, [1, 0, 1]);
    assert_eq!(r.param_hints, [col("t", "b"), col("t", "a")]);
    assert!(matches!(
        rewrite_sql("SELECT $0", Target::Sqlite),
        Err(TranslateError::Invalid(_))
    ));
}

#[test]
fn param_hints_resolve_aliases_and_statements() {
    let r = one(
        "SELECT u.id FROM users AS u JOIN orders o ON o.user_id = u.id WHERE u.name IN ($1, $2) AND o.total BETWEEN $3 AND $4 LIMIT $5",
        Target::Sqlite,
    );
    assert_eq!(
        r.param_hints,
        [
            col("users", "name"),
            col("users", "name"),
            col("orders", "total"),
            col("orders", "total"),
            None
        ]
    );
    assert_eq!(r.pg_types, [(4, "int8".to_string())]);
    let r = one("INSERT INTO t (a, b) VALUES ($1, $2)", Target::MySql);
    assert_eq!(r.param_hints, [col("t", "a"), col("t", "b")]);
    let r = one("UPDATE t SET a = $1 WHERE id = $2", Target::MySql);
    assert_eq!(r.param_hints, [col("t", "a"), col("t", "id")]);
    let r = one("DELETE FROM t WHERE $1 = id", Target::MySql);
    assert_eq!(r.param_hints, [col("t", "id")]);
    // Ambiguous unqualified column with two tables: unknown.
    let r = one("SELECT 1 FROM a, b WHERE x = $1", Target::MySql);
    assert_eq!(r.param_hints, [None]);
}

#[test]
fn casts() {
    let r = one(
        "SELECT x::int, CAST(y AS numeric(10,2)), z::text, $1::VARCHAR FROM t",
        Target::MySql,
    );
    assert_eq!(
        r.sql,
        "SELECT CAST(`x` AS SIGNED) AS `x`, CAST(`y` AS DECIMAL(10,2)) AS `y`, CAST(`z` AS CHAR) AS `z`, ? AS `varchar` FROM `t`"
    );
    assert_eq!(r.pg_types, [(0, "varchar".to_string())]);
    assert_eq!(
        lite("SELECT x::int, '2024-01-01'::date, d::date, 't'::boolean, x::float8 FROM t"),
        "SELECT CAST(\"x\" AS INTEGER) AS \"x\", '2024-01-01' AS \"date\", date(\"d\") AS \"d\", 1 AS \"bool\", CAST(\"x\" AS REAL) AS \"x\" FROM \"t\""
    );
    assert_eq!(
        my("SELECT DATE '2024-01-01'"),
        "SELECT CAST('2024-01-01' AS DATE) AS `date`"
    );
    assert!(rejected("SELECT 'x'::regclass", Target::MySql).contains("regclass"));
    assert!(rejected("SELECT a::boolean FROM t", Target::MySql).contains("boolean"));
    assert!(rejected("SELECT a::int[] FROM t", Target::Sqlite).contains("array"));
}

#[test]
fn like_and_ilike() {
    assert_eq!(
        my("SELECT * FROM t WHERE a LIKE 'x%'"),
        "SELECT * FROM `t` WHERE `a` LIKE 'x%' ESCAPE '\\'"
    );
    assert_eq!(
        my("SELECT * FROM t WHERE a ILIKE $1"),
        "SELECT * FROM `t` WHERE LOWER(`a`) LIKE LOWER(?) ESCAPE '\\'"
    );
    assert_eq!(
        lite("SELECT * FROM t WHERE a NOT ILIKE 'x%' ESCAPE '!'"),
        "SELECT * FROM \"t\" WHERE LOWER(\"a\") NOT LIKE LOWER('x%') ESCAPE '!'"
    );
}

#[test]
fn concat_operator() {
    assert_eq!(
        my("SELECT a || 'x' || b FROM t"),
        "SELECT CONCAT(`a`, 'x', `b`) AS `?column?` FROM `t`"
    );
    assert_eq!(
        lite("SELECT a || 'x' FROM t"),
        "SELECT \"a\" || 'x' AS \"?column?\" FROM \"t\""
    );
    assert_eq!(
        my("SELECT concat(a, b) FROM t"),
        "SELECT CONCAT_WS('', `a`, `b`) AS `concat` FROM `t`"
    );
}

#[test]
fn booleans() {
    assert_eq!(
        my("SELECT * FROM t WHERE b = true OR c = FALSE"),
        "SELECT * FROM `t` WHERE `b` = true OR `c` = false"
    );
    assert_eq!(
        lite("SELECT * FROM t WHERE b = true OR c IS FALSE"),
        "SELECT * FROM \"t\" WHERE \"b\" = 1 OR \"c\" IS FALSE"
    );
    assert_eq!(
        my("SELECT a IS DISTINCT FROM b FROM t"),
        "SELECT NOT (`a` <=> `b`) AS `?column?` FROM `t`"
    );
}

#[test]
fn limit_offset_fetch() {
    assert_eq!(
        my("SELECT a FROM t LIMIT 5 OFFSET 10"),
        "SELECT `a` FROM `t` LIMIT 5 OFFSET 10"
    );
    assert_eq!(
        my("SELECT a FROM t OFFSET 10"),
        "SELECT `a` FROM `t` LIMIT 18446744073709551615 OFFSET 10"
    );
    assert_eq!(
        lite("SELECT a FROM t OFFSET 10 ROWS"),
        "SELECT \"a\" FROM \"t\" LIMIT -1 OFFSET 10"
    );
    assert_eq!(
        lite("SELECT a FROM t FETCH FIRST 3 ROWS ONLY"),
        "SELECT \"a\" FROM \"t\" LIMIT 3"
    );
    assert_eq!(lite("SELECT a FROM t LIMIT ALL"), "SELECT \"a\" FROM \"t\"");
}

#[test]
fn order_by_null_placement() {
    assert_eq!(
        my("SELECT a FROM t ORDER BY a"),
        "SELECT `a` FROM `t` ORDER BY `a` IS NULL ASC, `a`"
    );
    assert_eq!(
        my("SELECT a FROM t ORDER BY a DESC"),
        "SELECT `a` FROM `t` ORDER BY `a` IS NULL DESC, `a` DESC"
    );
    assert_eq!(
        my("SELECT a FROM t ORDER BY a NULLS FIRST"),
        "SELECT `a` FROM `t` ORDER BY `a`"
    );
    assert_eq!(
        lite("SELECT a FROM t ORDER BY a DESC"),
        "SELECT \"a\" FROM \"t\" ORDER BY \"a\" DESC NULLS FIRST"
    );
}

#[test]
fn time_functions() {
    assert_eq!(
        my("SELECT now(), CURRENT_TIMESTAMP, CURRENT_DATE"),
        "SELECT CURRENT_TIMESTAMP(6) AS `now`, CURRENT_TIMESTAMP(6) AS `current_timestamp`, CURRENT_DATE AS `current_date`"
    );
    assert_eq!(
        lite("SELECT now(), CURRENT_DATE"),
        "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now') AS \"now\", CURRENT_DATE AS \"current_date\""
    );
    assert_eq!(
        my("SELECT length(a) FROM t"),
        "SELECT CHAR_LENGTH(`a`) AS `length` FROM `t`"
    );
}

#[test]
fn returning() {
    let r = one(
        "INSERT INTO sa_author (name) VALUES ($1::VARCHAR) RETURNING sa_author.id",
        Target::MySql,
    );
    assert_eq!(
        r.sql,
        "INSERT INTO `sa_author` (`name`) VALUES (?) RETURNING `id`"
    );
    let ret = r.returning.unwrap();
    assert_eq!(ret.columns, ["id"]);
    assert!(ret.native);
    let em = ret.emulation.unwrap();
    assert_eq!(em.insert_sql, "INSERT INTO `sa_author` (`name`) VALUES (?)");
    assert_eq!(em.table, "`sa_author`");
    assert_eq!(em.select_list, "`id`");
    assert_eq!(r.tag_hint, TagHint::Insert);
    let r = one(
        "INSERT INTO t (a) VALUES (1), (2) RETURNING id AS x",
        Target::MySql,
    );
    assert_eq!(r.returning.unwrap().emulation, None);
    let r = one("UPDATE t SET a = 1 RETURNING t.a", Target::Sqlite);
    assert_eq!(r.sql, "UPDATE \"t\" SET \"a\" = 1 RETURNING \"a\"");
    assert!(
        rejected("UPDATE t SET a = 1 RETURNING a", Target::MySql).contains("RETURNING on UPDATE")
    );
    assert_eq!(
        my("DELETE FROM t WHERE id = 1 RETURNING *"),
        "DELETE FROM `t` WHERE `id` = 1 RETURNING *"
    );
}

#[test]
fn on_conflict() {
    assert_eq!(
        my("INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING"),
        "INSERT INTO `kv` (`k`, `v`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `k` = `k`"
    );
    assert_eq!(
        my("INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, n = kv.n + 1"),
        "INSERT INTO `kv` (`k`, `v`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `v` = VALUES(`v`), `n` = `n` + 1"
    );
    assert_eq!(
        lite("INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v"),
        "INSERT INTO \"kv\" (\"k\", \"v\") VALUES (?, ?) ON CONFLICT(\"k\") DO UPDATE SET \"v\" = \"excluded\".\"v\""
    );
    assert!(rejected(
        "INSERT INTO kv (k) VALUES (1) ON CONFLICT ON CONSTRAINT kv_pkey DO NOTHING",
        Target::MySql
    )
    .contains("ON CONSTRAINT"));
    assert!(rejected(
        "INSERT INTO kv (k) VALUES (1) ON CONFLICT (k) DO NOTHING RETURNING k",
        Target::MySql
    )
    .contains("RETURNING"));
}

#[test]
fn sqlalchemy_create_table() {
    let pg = "CREATE TABLE public.sa_book (\n\t\tid SERIAL NOT NULL, \n\t\ttitle VARCHAR(200), \n\t\tauthor_id INTEGER, \n\t\tprice NUMERIC(10, 2), \n\t\tPRIMARY KEY (id), \n\t\tFOREIGN KEY(author_id) REFERENCES sa_author (id)\n\t)";
    assert_eq!(
        my(pg),
        "CREATE TABLE `sa_book` (`id` INT NOT NULL AUTO_INCREMENT COMMENT 'pg:int4', `title` VARCHAR(200) COMMENT 'pg:varchar', `author_id` INT COMMENT 'pg:int4', `price` DECIMAL(10,2) COMMENT 'pg:numeric', PRIMARY KEY (`id`), FOREIGN KEY (`author_id`) REFERENCES `sa_author` (`id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    );
    assert_eq!(
        lite(pg),
        "CREATE TABLE \"sa_book\" (\"id\" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL CONSTRAINT \"bindproxy_int4\" CHECK (\"id\" BETWEEN -2147483648 AND 2147483647), \"title\" VARCHAR(200), \"author_id\" INT CONSTRAINT \"bindproxy_int4\" CHECK (\"author_id\" BETWEEN -2147483648 AND 2147483647), \"price\" NUMERIC(10,2), FOREIGN KEY (\"author_id\") REFERENCES \"sa_author\" (\"id\"))"
    );
    let r = one(pg, Target::Sqlite);
    assert_eq!(r.kind, Kind::CreateTable);
    assert_eq!(r.tag_hint.tag(0), "CREATE TABLE");
}

#[test]
fn column_types() {
    let pg = "CREATE TABLE x (a uuid, b jsonb, c json, d timestamptz, e timestamp without time zone, f boolean DEFAULT true, g bytea, h double precision, i real, j text UNIQUE, k varchar, l date, m bigint, n smallint, o numeric)";
    assert_eq!(
        my(pg),
        "CREATE TABLE `x` (`a` CHAR(36) COMMENT 'pg:uuid', `b` JSON COMMENT 'pg:jsonb', `c` JSON COMMENT 'pg:json', `d` DATETIME(6) COMMENT 'pg:timestamptz', `e` DATETIME(6) COMMENT 'pg:timestamp', `f` BOOLEAN DEFAULT true COMMENT 'pg:bool', `g` LONGBLOB COMMENT 'pg:bytea', `h` DOUBLE COMMENT 'pg:float8', `i` FLOAT COMMENT 'pg:float4', `j` VARCHAR(255) UNIQUE COMMENT 'pg:text', `k` LONGTEXT COMMENT 'pg:varchar', `l` DATE COMMENT 'pg:date', `m` BIGINT COMMENT 'pg:int8', `n` SMALLINT COMMENT 'pg:int2', `o` DECIMAL(65,30) COMMENT 'pg:numeric') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    );
    assert_eq!(
        lite(pg),
        concat!(
            "CREATE TABLE \"x\" (\"a\" UUID, \"b\" JSONB, \"c\" JSON, ",
            "\"d\" TIMESTAMPTZ CONSTRAINT \"bindproxy_timestamp\" CHECK (\"d\" IS NULL OR (datetime(\"d\") IS NOT NULL AND date(\"d\") IS substr(\"d\", 1, 10))), ",
            "\"e\" TIMESTAMP CONSTRAINT \"bindproxy_timestamp\" CHECK (\"e\" IS NULL OR (datetime(\"e\") IS NOT NULL AND date(\"e\") IS substr(\"e\", 1, 10))), ",
            "\"f\" BOOLEAN DEFAULT 1, \"g\" BYTEA, \"h\" DOUBLE PRECISION, \"i\" REAL, \"j\" TEXT UNIQUE, \"k\" VARCHAR, ",
            "\"l\" DATE CONSTRAINT \"bindproxy_date\" CHECK (date(\"l\") IS \"l\"), ",
            "\"m\" BIGINT CONSTRAINT \"bindproxy_int8\" CHECK (\"m\" BETWEEN -9223372036854775808 AND 9223372036854775807), ",
            "\"n\" SMALLINT CONSTRAINT \"bindproxy_int2\" CHECK (\"n\" BETWEEN -32768 AND 32767), \"o\" NUMERIC)"
        )
    );
    assert_eq!(pg_type_from_sqlite_decltype("TIMESTAMPTZ"), "timestamptz");
    assert_eq!(pg_type_from_sqlite_decltype("NUMERIC(10,2)"), "numeric");
    assert_eq!(pg_type_from_mysql_comment("pg:uuid"), Some("uuid"));
    assert!(rejected("CREATE TABLE x (a int[])", Target::MySql).contains("array"));
    assert!(rejected("CREATE TABLE x (a interval)", Target::Sqlite).contains("interval"));
}

#[test]
fn identity_and_serial_keys() {
    assert_eq!(
        lite("CREATE TABLE x (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v text)"),
        "CREATE TABLE \"x\" (\"id\" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, \"v\" TEXT)"
    );
    assert_eq!(
        my("CREATE TABLE x (id bigserial PRIMARY KEY)"),
        "CREATE TABLE `x` (`id` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY COMMENT 'pg:int8') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    );
    assert!(rejected(
        "CREATE TABLE x (id serial, k int, PRIMARY KEY (id, k))",
        Target::Sqlite
    )
    .contains("SERIAL"));
    // Inline REFERENCES becomes a table constraint on MySQL (which ignores the inline form).
    assert_eq!(
        my("CREATE TABLE c (p int REFERENCES par (id) ON DELETE CASCADE)"),
        "CREATE TABLE `c` (`p` INT COMMENT 'pg:int4', FOREIGN KEY (`p`) REFERENCES `par` (`id`) ON DELETE CASCADE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    );
}

#[test]
fn indexes_and_drops() {
    assert_eq!(
        my("CREATE UNIQUE INDEX IF NOT EXISTS ix ON public.t (a, b DESC)"),
        "CREATE UNIQUE INDEX IF NOT EXISTS `ix` ON `t` (`a`, `b` DESC)"
    );
    assert_eq!(
        lite("CREATE INDEX ON t (a)"),
        "CREATE INDEX \"t_a_idx\" ON \"t\" (\"a\")"
    );
    assert_eq!(
        lite("CREATE INDEX ix ON t (a) WHERE b IS NOT NULL"),
        "CREATE INDEX \"ix\" ON \"t\" (\"a\") WHERE \"b\" IS NOT NULL"
    );
    assert!(rejected("CREATE INDEX ix ON t USING gin (a)", Target::Sqlite).contains("gin"));
    assert_eq!(
        my("DROP TABLE IF EXISTS a, b CASCADE"),
        "DROP TABLE IF EXISTS `a`, `b`"
    );
    assert!(rejected("DROP TABLE a, b", Target::Sqlite).contains("several"));
    assert_eq!(
        lite("DROP INDEX IF EXISTS ix"),
        "DROP INDEX IF EXISTS \"ix\""
    );
    let r = one("DROP INDEX ix", Target::MySql);
    assert_eq!(r.sql, "");
    assert_eq!(
        r.drop_index_lookup,
        Some(DropIndexLookup {
            index: "ix".into(),
            if_exists: false
        })
    );
    assert_eq!(mysql_drop_index_sql("ix", "t"), "DROP INDEX `ix` ON `t`");
    assert_eq!(
        my("ALTER TABLE t ADD COLUMN age integer"),
        "ALTER TABLE `t` ADD COLUMN `age` INT COMMENT 'pg:int4'"
    );
    assert_eq!(
        lite("ALTER TABLE t RENAME COLUMN a TO b"),
        "ALTER TABLE \"t\" RENAME COLUMN \"a\" TO \"b\""
    );
}

#[test]
fn transactions() {
    let r = one("BEGIN ISOLATION LEVEL REPEATABLE READ", Target::MySql);
    assert_eq!(
        r.before,
        ["SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"]
    );
    assert_eq!(r.sql, "START TRANSACTION");
    assert_eq!(r.tag_hint.tag(0), "BEGIN");
    assert_eq!(
        one("START TRANSACTION", Target::Sqlite).tag_hint.tag(0),
        "START TRANSACTION"
    );
    assert_eq!(lite("BEGIN ISOLATION LEVEL SERIALIZABLE"), "BEGIN");
    let ro = one("BEGIN READ ONLY", Target::Sqlite);
    assert_eq!(
        (ro.sql.as_str(), ro.before.as_slice()),
        (
            "BEGIN",
            &[crate::translate::SQLITE_READ_ONLY.to_string()][..]
        )
    );
    assert_eq!(my("SAVEPOINT Sp1"), "SAVEPOINT `sp1`");
    assert_eq!(
        one("SAVEPOINT Sp1", Target::MySql).kind,
        Kind::Savepoint("sp1".into())
    );
    assert_eq!(my("RELEASE sp1"), "RELEASE SAVEPOINT `sp1`");
    assert_eq!(lite("RELEASE SAVEPOINT sp1"), "RELEASE \"sp1\"");
    assert_eq!(my("ROLLBACK TO sp1"), "ROLLBACK TO SAVEPOINT `sp1`");
    assert_eq!(lite("ROLLBACK TO SAVEPOINT sp1"), "ROLLBACK TO \"sp1\"");
    assert_eq!(
        one("ROLLBACK TO sp1", Target::Sqlite).kind,
        Kind::RollbackTo("sp1".into())
    );
    assert_eq!(my("COMMIT"), "COMMIT");
    assert_eq!(lite("END"), "COMMIT");
    assert_eq!(lite("ABORT"), "ROLLBACK");
}

#[test]
fn rejected_constructs() {
    for (sql, t, what) in [
        (
            "SELECT DISTINCT ON (a) a FROM t",
            Target::MySql,
            "DISTINCT ON",
        ),
        (
            "SELECT * FROM t, LATERAL (SELECT 1) x",
            Target::Sqlite,
            "LATERAL",
        ),
        ("COPY t FROM STDIN", Target::MySql, "COPY"),
        ("LISTEN ch", Target::Sqlite, "LISTEN"),
        ("SELECT * FROM t FOR UPDATE", Target::Sqlite, "FOR UPDATE"),
        (
            "SELECT a FROM t FULL OUTER JOIN u ON true",
            Target::MySql,
            "FULL OUTER JOIN",
        ),
        ("SELECT * FROM ONLY t", Target::MySql, "ONLY"),
        ("SELECT a ~ 'x' FROM t", Target::MySql, "operator"),
        ("SELECT a FROM t WHERE a = ANY($1)", Target::MySql, "ANY"),
        (
            "SELECT string_agg(a, ',') FROM t",
            Target::MySql,
            "string_agg",
        ),
        ("SET search_path TO x", Target::MySql, "SET"),
        ("SELECT 2 ^ 3", Target::MySql, "operator"),
        (
            "UPDATE t SET a = 1 FROM u WHERE u.id = t.id",
            Target::MySql,
            "UPDATE … FROM",
        ),
    ] {
        let c = rejected(sql, t);
        assert!(c.contains(what), "{sql}: {c}");
    }
}

#[test]
fn column_names_follow_postgresql() {
    assert_eq!(
        my("SELECT count(*), max(x), x::text, 1, 'a' || b, t.c, (SELECT y FROM u LIMIT 1), CASE WHEN a THEN 1 END, EXISTS (SELECT 1 FROM u), '1'::int, d AS e FROM t"),
        "SELECT COUNT(*) AS `count`, MAX(`x`) AS `max`, CAST(`x` AS CHAR) AS `x`, 1 AS `?column?`, CONCAT('a', `b`) AS `?column?`, `t`.`c`, (SELECT `y` FROM `u` LIMIT 1) AS `y`, CASE WHEN `a` THEN 1 END AS `case`, EXISTS (SELECT 1 FROM `u`) AS `exists`, 1 AS `int4`, `d` AS `e` FROM `t`"
    );
}

#[test]
fn literal_casts_are_converted() {
    assert_eq!(
        my("SELECT '\\xdeadbeef'::bytea, '2024-01-02 03:04:05+02'::timestamptz"),
        "SELECT X'deadbeef' AS `bytea`, CAST('2024-01-02 01:04:05' AS DATETIME(6)) AS `timestamptz`"
    );
}

#[test]
fn literals_are_verbatim() {
    assert_eq!(
        my("SELECT 'a\\b''c', E'x\\ty'"),
        "SELECT 'a\\b''c' AS `?column?`, 'x\ty' AS `?column?`"
    );
    assert_eq!(lite("SELECT $$it's$$"), "SELECT 'it''s' AS \"?column?\"");
}

#[test]
fn sqlalchemy_insertmanyvalues_becomes_multi_row_values() {
    // psycopg 3: placeholders, some with their own cast.
    let sql = "INSERT INTO sa_a (name, active, price) SELECT p0::VARCHAR, p1::BOOLEAN, p2::NUMERIC(10, 2) \
               FROM (VALUES ($1::VARCHAR, $2, $3, 0), ($4::VARCHAR, $5, $6, 1)) \
               AS imp_sen(p0, p1, p2, sen_counter) ORDER BY sen_counter \
               RETURNING sa_a.id, sa_a.id AS id__1";
    let r = one(sql, Target::Sqlite);
    assert_eq!(
        r.sql,
        "INSERT INTO \"sa_a\" (\"name\", \"active\", \"price\") VALUES (?, ?, ?), (?, ?, ?) \
         RETURNING \"id\", \"id\" AS \"id__1\""
    );
    assert_eq!(r.params, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(
        r.pg_types,
        vec![
            (0, "varchar".into()),
            (1, "bool".into()),
            (2, "numeric".into()),
            (3, "varchar".into()),
            (4, "bool".into()),
            (5, "numeric".into())
        ]
    );
    assert_eq!(r.param_hints[4], col("sa_a", "active"));
    assert_eq!(
        r.returning.as_ref().map(|x| x.columns.clone()),
        Some(vec!["id".to_string(), "id__1".to_string()])
    );
    let m = one(sql, Target::MySql);
    assert_eq!(
        m.sql,
        "INSERT INTO `sa_a` (`name`, `active`, `price`) VALUES (?, ?, ?), (?, ?, ?) \
         RETURNING `id`, `id` AS `id__1`"
    );
    // psycopg2: literals inlined; rows taken in counter order; casts rendered per the usual rules.
    let sql2 = "INSERT INTO sa_a (name, active, price, at) \
                SELECT p0::VARCHAR, p1::BOOLEAN, p2::NUMERIC(10, 2), p3::TIMESTAMP WITH TIME ZONE \
                FROM (VALUES ('z', true, 2, NULL, 1), ('y', false, NULL, '2020-01-02T03:04:05+00:00'::timestamptz, 0)) \
                AS imp_sen(p0, p1, p2, p3, sen_counter) ORDER BY sen_counter RETURNING sa_a.id, sa_a.id AS id__1";
    assert_eq!(
        lite(sql2),
        "INSERT INTO \"sa_a\" (\"name\", \"active\", \"price\", \"at\") VALUES \
         ('y', 0, NULL, '2020-01-02 03:04:05'), ('z', 1, CAST(2 AS NUMERIC), NULL) \
         RETURNING \"id\", \"id\" AS \"id__1\""
    );
    assert_eq!(
        my(sql2),
        "INSERT INTO `sa_a` (`name`, `active`, `price`, `at`) VALUES \
         ('y', false, NULL, CAST('2020-01-02 03:04:05' AS DATETIME(6))), ('z', true, CAST(2 AS DECIMAL(10,2)), NULL) \
         RETURNING `id`, `id` AS `id__1`"
    );
    // Not the shape: a WHERE, or a counter that is selected, stays outside the subset.
    assert!(rejected(
        "INSERT INTO t (a) SELECT p0 FROM (VALUES (1, 0)) AS s(p0, c) WHERE p0 > 0 ORDER BY c",
        Target::Sqlite
    )
    .contains("column list"));
}

fn known(t: &str, typmod: i32) -> Option<ResultType> {
    Some(ResultType::Known {
        typname: t.into(),
        typmod,
    })
}

#[test]
fn result_types_of_expressions() {
    let r = one(
        "SELECT count(id) AS count_1, count(*), sum(n), avg(n), max(t.n), n::text, \
         x::numeric(10,2), 1, 1.5, 'a', 'a' || b, lower(b), a = 1, EXISTS (SELECT 1), n + 1, \
         CASE WHEN a THEN 'x' END, coalesce(b, NULL), id, * FROM t WHERE x = $1",
        Target::Sqlite,
    );
    // a wildcard: the list does not line up with the output columns
    assert!(r.result_types.is_empty());
    let r = one(
        "SELECT count(id) AS count_1, count(*), sum(n), avg(n), max(t.n), n::text, \
         x::numeric(10,2), 1, 1.5, 'a', 'a' || b, lower(b), a = 1, EXISTS (SELECT 1), n + 1, \
         CASE WHEN a THEN 'x' END, coalesce(b, NULL), id, u.id FROM t WHERE x = $1",
        Target::Sqlite,
    );
    let c = |n: &str| ResultType::Column(col("t", n).unwrap());
    assert_eq!(
        r.result_types,
        vec![
            known("int8", -1),
            known("int8", -1),
            Some(ResultType::Sum(Box::new(c("n")))),
            Some(ResultType::Avg(Box::new(c("n")))),
            Some(c("n")),
            known("text", -1),
            known("numeric", (10 << 16 | 2) + 4),
            known("int4", -1),
            Some(ResultType::NumericLiteral { scale: 1 }),
            known("text", -1),
            known("text", -1),
            known("text", -1),
            known("bool", -1),
            known("bool", -1),
            Some(ResultType::Arith(
                Box::new(c("n")),
                known("int4", -1).map(Box::new).unwrap()
            )),
            known("text", -1),
            Some(c("b")),
            Some(c("id")),
            None,
        ]
    );
    // RETURNING
    let r = one(
        "INSERT INTO t (a) VALUES (1) RETURNING t.id, id AS id__1, a + 1.5",
        Target::Sqlite,
    );
    assert_eq!(
        r.result_types,
        vec![
            Some(c("id")),
            Some(c("id")),
            Some(ResultType::Arith(
                Box::new(c("a")),
                Box::new(ResultType::NumericLiteral { scale: 1 })
            ))
        ]
    );
}

#[test]
fn sqlite_divisors_are_guarded_outside_ddl() {
    // A zero divisor raises 22012 (the executor registers bindproxy_divisor); other values pass
    // through unchanged, so SQLite's integer truncation stays.
    assert_eq!(
        lite("SELECT a / b, a % 2 FROM t WHERE a / $1 > 1"),
        "SELECT \"a\" / bindproxy_divisor(\"b\") AS \"?column?\", \"a\" % bindproxy_divisor(2) AS \"?column?\" FROM \"t\" WHERE \"a\" / bindproxy_divisor(?) > 1"
    );
    assert_eq!(
        lite("UPDATE t SET a = a / (b - 1)"),
        "UPDATE \"t\" SET \"a\" = \"a\" / bindproxy_divisor((\"b\" - 1))"
    );
    // MySQL: unchanged (strict mode raises in writes; the executor turns the read warning 1365
    // into the error).
    assert_eq!(
        my("SELECT a / b FROM t"),
        "SELECT `a` / `b` AS `?column?` FROM `t`"
    );
    // DDL expressions are stored in the schema: never bindproxy's function there.
    assert_eq!(
        lite("CREATE TABLE t (a numeric CHECK (a / 2 < 10))"),
        "CREATE TABLE \"t\" (\"a\" NUMERIC CHECK (\"a\" / 2 < 10))"
    );
}
