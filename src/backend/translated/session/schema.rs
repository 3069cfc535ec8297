//! Sequences and pg_dump's ALTER TABLE forms on a MySQL/SQLite connection: what
//! `crate::translate::sequence` plans, run here — statements for the engine go the usual way
//! (`exec_parts`); ignored statements answer with their tag (and a NOTICE); a SQLite rebuild runs
//! `backend/translated/rebuild.rs`'s steps in one transaction.
//!
//! Owns: [`TranslatedConn::schema_plan`] and the execution of [`Plan::Ignored`],
//! [`Plan::Rebuild`] and [`Plan::Lock`], and the statement a [`Plan::SequenceState`] becomes.
//!
//! Must never: leave a half-rebuilt table (every step runs in one engine transaction, rolled back
//! on error), or rebuild a table other tables reference from inside the client's transaction
//! (SQLite's DROP TABLE would act on their rows).

use bytes::BytesMut;

use super::{translate_error, TranslatedConn, Tx};
use crate::backend::translated::rebuild;
use crate::error::ProxyError;
use crate::protocol::messages::{notice_response, ErrorFields};
use crate::translate::alter_type;
use crate::translate::sequence::{self, Nullability, Plan, Rebuild};

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// What a stored column holds, for [`alter_type::conversion`].
fn family(t: &crate::backend::translated::types::PgType) -> alter_type::Family {
    use crate::backend::translated::types::PgType as T;
    use alter_type::Family as F;
    match t {
        T::Int2 | T::Int4 | T::Int8 => F::Integer,
        T::Numeric => F::Exact,
        T::Float4 | T::Float8 => F::Float,
        T::Text | T::Varchar => F::Text,
        T::Bool => F::Bool,
        T::Date | T::Time | T::Timestamp | T::Timestamptz => F::Calendar,
        _ => F::Other,
    }
}

fn quote_my(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

impl TranslatedConn {
    /// The plan of `sql` when it is a sequence statement or one of pg_dump's ALTER TABLE forms.
    pub(super) fn schema_plan(&self, sql: &str) -> Option<Result<Plan, ProxyError>> {
        sequence::plan(sql, self.bind.target())
            .map(|r| r.map_err(|e| translate_error(&self.bind, e)))
    }

    /// Runs an ignored statement or a rebuild; returns the tag. (Engine plans run as usual.)
    pub(super) async fn run_schema(
        &mut self,
        plan: &Plan,
        out: &mut BytesMut,
    ) -> Result<String, ProxyError> {
        match self.tx {
            Tx::Failed | Tx::ImplicitFailed => return Err(ProxyError::InFailedTransaction),
            Tx::Prepared => return Err(self.prepared_error()),
            _ => {}
        }
        match plan {
            Plan::Ignored { tag, notice } => {
                if let Some(message) = notice {
                    notice_response(
                        out,
                        &ErrorFields {
                            severity: "NOTICE",
                            code: "00000",
                            message,
                            detail: None,
                            hint: None,
                        },
                    );
                }
                Ok((*tag).to_string())
            }
            Plan::Rebuild(r) => self.rebuild(r).await.map(|()| r.tag.to_string()),
            Plan::Lock { probes } => self.lock(probes).await.map(|()| "LOCK TABLE".to_string()),
            Plan::AlterType(a) if self.bind.target() == crate::translate::Target::Sqlite => self
                .sqlite_alter_type(a)
                .await
                .map(|()| "ALTER TABLE".to_string()),
            Plan::Engine(_)
            | Plan::SequenceState { .. }
            | Plan::MysqlNullability { .. }
            | Plan::AlterType(_) => Ok(String::new()),
        }
    }

    /// `SELECT last_value, is_called FROM s` (pg_dump reading a sequence) as the statement that
    /// reads what `s` is on this engine: a sequence made by `translate/sequence.rs` (MariaDB's own,
    /// or a row of SQLite's `bindproxy_sequences`), or the auto-increment counter of the column
    /// `<table>_<column>_seq` names (a serial column: PostgreSQL's implicit sequence). The counter
    /// gives PostgreSQL's pair: the last key handed out and true, or 1 and false before the first.
    /// 42P01 when `s` is none of these.
    pub(super) async fn sequence_state(
        &mut self,
        sequence: &str,
    ) -> Result<Vec<crate::translate::Rewritten>, ProxyError> {
        let seq = literal(sequence);
        let mysql = self.bind.is_mysql();
        let sql = if mysql {
            let own = self
                .catalog_rows(&format!(
                    "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {seq} AND TABLE_TYPE = 'SEQUENCE'"
                ))
                .await?;
            if !own.is_empty() {
                // NOCACHE sequences: the next value is the one not yet handed out.
                Some(format!(
                    "SELECT CASE WHEN next_not_cached_value = start_value THEN start_value ELSE next_not_cached_value - increment END AS last_value, next_not_cached_value <> start_value AS is_called FROM `{}`",
                    sequence.replace('`', "``")
                ))
            } else {
                let owner = self
                    .catalog_rows(&format!(
                        "SELECT TABLE_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND EXTRA LIKE '%auto_increment%' AND CONCAT(TABLE_NAME, '_', COLUMN_NAME, '_seq') = {seq}"
                    ))
                    .await?;
                owner.first().and_then(|r| r.first()).map(|t| {
                    format!(
                        "SELECT CASE WHEN AUTO_INCREMENT > 1 THEN AUTO_INCREMENT - 1 ELSE 1 END AS last_value, AUTO_INCREMENT > 1 AS is_called FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {}",
                        literal(t)
                    )
                })
            }
        } else {
            let own = self
                .catalog_rows(&format!(
                    "SELECT q.owner_table IS NOT NULL FROM sqlite_master m, \"{}\" q WHERE m.name = '{}' AND q.name = {seq}",
                    crate::translate::sequence::SQLITE_SEQUENCES,
                    crate::translate::sequence::SQLITE_SEQUENCES,
                ))
                .await
                .unwrap_or_default();
            match own.first().and_then(|r| r.first()).map(String::as_str) {
                // A sequence whose table's key counter runs ahead of the row (rows inserted
                // without a key): the later of the two.
                Some("1") => Some(format!(
                    "SELECT CASE WHEN s.seq > q.last_value THEN s.seq ELSE q.last_value END AS last_value, CASE WHEN s.seq > q.last_value THEN 1 ELSE q.is_called END AS is_called FROM \"{t}\" q LEFT JOIN sqlite_sequence s ON s.name = q.owner_table WHERE q.name = {seq}",
                    t = crate::translate::sequence::SQLITE_SEQUENCES
                )),
                Some(_) => Some(format!(
                    "SELECT last_value, is_called FROM \"{}\" WHERE name = {seq}",
                    crate::translate::sequence::SQLITE_SEQUENCES
                )),
                None => {
                    let owner = self
                        .catalog_rows(&format!(
                            "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c WHERE m.type = 'table' AND c.pk = 1 AND lower(c.type) = 'integer' AND m.name || '_' || c.name || '_seq' = {seq} AND EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence')"
                        ))
                        .await?;
                    owner.first().and_then(|r| r.first()).map(|t| {
                        format!(
                            "SELECT CASE WHEN n > 0 THEN n ELSE 1 END AS last_value, n > 0 AS is_called FROM (SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = {}), 0) AS n)",
                            literal(t)
                        )
                    })
                }
            }
        };
        let Some(sql) = sql else {
            return Err(translate_error(
                &self.bind,
                crate::translate::TranslateError::NoSuchRelation(sequence.to_owned()),
            ));
        };
        let known = |t: &str| {
            Some(crate::translate::ResultType::Known {
                typname: t.into(),
                typmod: -1,
            })
        };
        Ok(vec![crate::translate::Rewritten {
            sql,
            before: vec![],
            params: vec![],
            kind: crate::translate::Kind::Select,
            returning: None,
            param_hints: vec![],
            pg_types: vec![],
            tag_hint: crate::translate::TagHint::Select,
            drop_index_lookup: None,
            tables: vec![],
            result_types: vec![known("int8"), known("bool")],
        }])
    }

    /// 23502 when `column` of `table` holds a NULL (before `SET NOT NULL`), in PostgreSQL's words.
    async fn no_nulls(&mut self, table: &str, column: &str) -> Result<(), ProxyError> {
        let e = self.engine()?;
        let sql = format!(
            "SELECT 1 FROM {} WHERE {} IS NULL LIMIT 1",
            e.quote_ident(table),
            e.quote_ident(column)
        );
        if self.catalog_rows(&sql).await?.is_empty() {
            return Ok(());
        }
        Err(super::tx_error(
            "23502",
            format!("column \"{column}\" of relation \"{table}\" contains null values"),
        ))
    }

    /// `ALTER TABLE t ALTER COLUMN c {SET|DROP} NOT NULL` on MySQL: `MODIFY` with the column's
    /// whole definition as information_schema gives it (type, character set and collation,
    /// default, AUTO_INCREMENT, ON UPDATE, the `pg:` comment), only the nullability changed.
    /// PostgreSQL's errors first: 42703 (no such column), 42P16 (DROP NOT NULL of a key column),
    /// 23502 (SET NOT NULL over NULLs); a generated column is refused (0A000).
    pub(super) async fn mysql_nullability(
        &mut self,
        table: &str,
        column: &str,
        nullability: Nullability,
    ) -> Result<Vec<crate::translate::Rewritten>, ProxyError> {
        let rows = self
            .catalog_rows(&format!(
                "SELECT COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME, COLUMN_DEFAULT, EXTRA, COLUMN_COMMENT, COLUMN_KEY, IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {} AND COLUMN_NAME = {}",
                literal(table),
                literal(column)
            ))
            .await?;
        let Some(c) = rows.first() else {
            return Err(super::translate_error(
                &self.bind,
                crate::translate::TranslateError::NoSuchColumn {
                    table: table.into(),
                    column: column.into(),
                },
            ));
        };
        let field = |i: usize| c.get(i).map(String::as_str).unwrap_or("");
        let (ty, charset, collation, default, extra, comment, key, nullable) = (
            field(0),
            field(1),
            field(2),
            field(3),
            field(4).to_ascii_lowercase(),
            field(5),
            field(6),
            field(7),
        );
        let mut sql = format!(
            "ALTER TABLE {} MODIFY {} {ty}",
            quote_my(table),
            quote_my(column)
        );
        match nullability {
            Nullability::Nullable if key == "PRI" => {
                return Err(super::translate_error(
                    &self.bind,
                    crate::translate::TranslateError::InPrimaryKey(column.into()),
                ))
            }
            Nullability::NotNull if nullable == "YES" => self.no_nulls(table, column).await?,
            _ => {}
        }
        if !charset.is_empty() && !collation.is_empty() {
            sql.push_str(&format!(" CHARACTER SET {charset} COLLATE {collation}"));
        }
        sql.push_str(match nullability {
            Nullability::NotNull => " NOT NULL",
            Nullability::Nullable => " NULL",
        });
        // MariaDB writes a default as an expression (`'text'`, `0`, `current_timestamp(6)`,
        // `NULL`); absent: no default.
        if !default.is_empty() && !default.eq_ignore_ascii_case("null") {
            let default = match crate::backend::translated::types::mariadb_string(default) {
                Some(text) => literal(&text),
                None => default.to_string(),
            };
            sql.push_str(&format!(" DEFAULT ({default})"));
        }
        if extra.contains("auto_increment") {
            sql.push_str(" AUTO_INCREMENT");
        }
        if let Some(on_update) = extra.find("on update ") {
            sql.push_str(&format!(" {}", &field(4)[on_update..]));
        }
        if extra.contains("generated") || extra.contains("virtual") || extra.contains("stored") {
            return Err(ProxyError::FeatureNotSupported(format!(
                "changing NOT NULL of the generated column \"{column}\" is not supported on bind \"{}\"",
                self.bind.name
            )));
        }
        if !comment.is_empty() {
            sql.push_str(&format!(" COMMENT {}", literal(comment)));
        }
        Ok(vec![crate::translate::Rewritten {
            sql,
            before: vec![],
            params: vec![],
            kind: crate::translate::Kind::AlterTable,
            returning: None,
            param_hints: vec![],
            pg_types: vec![],
            tag_hint: crate::translate::TagHint::Fixed("ALTER TABLE"),
            drop_index_lookup: None,
            tables: vec![],
            result_types: vec![],
        }])
    }

    /// PostgreSQL's answer to `ALTER COLUMN … TYPE` before anything changes: 42804 without an
    /// assignment cast, 0A000 for a conversion the engine would store differently, 22003/22001
    /// when a value does not fit the new type.
    async fn convertible(
        &mut self,
        a: &alter_type::AlterType,
        from: alter_type::Family,
    ) -> Result<(), ProxyError> {
        match alter_type::conversion(from, &a.to) {
            alter_type::Conversion::Taken => {}
            alter_type::Conversion::NeedsUsing => {
                return Err(translate_error(
                    &self.bind,
                    alter_type::needs_using(&a.column, &a.to),
                ))
            }
            alter_type::Conversion::Refused => {
                return Err(ProxyError::FeatureNotSupported(format!(
                    "changing column \"{}\" ({from:?}) to type {} is not supported on bind \"{}\"",
                    a.column,
                    alter_type::sql_name(&a.to),
                    self.bind.name
                )))
            }
        }
        if let Some((sql, e)) = alter_type::probe(self.bind.target(), a, from) {
            if !self.catalog_rows(&sql).await?.is_empty() {
                return Err(translate_error(&self.bind, e));
            }
        }
        Ok(())
    }

    /// `ALTER TABLE t ALTER COLUMN c TYPE ty` on MySQL: `MODIFY` with the new type and the rest of
    /// the column's definition as information_schema gives it (NOT NULL, default, AUTO_INCREMENT
    /// of an integer, the character set of a text kept as text), the `pg:` comment renamed.
    pub(super) async fn mysql_alter_type(
        &mut self,
        a: &alter_type::AlterType,
    ) -> Result<Vec<crate::translate::Rewritten>, ProxyError> {
        let rows = self
            .catalog_rows(&format!(
                "SELECT DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME, COLUMN_DEFAULT, EXTRA, COLUMN_COMMENT, IS_NULLABLE, COLUMN_KEY FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {} AND COLUMN_NAME = {}",
                literal(&a.table),
                literal(&a.column)
            ))
            .await?;
        let Some(c) = rows.first() else {
            return Err(translate_error(
                &self.bind,
                crate::translate::TranslateError::NoSuchColumn {
                    table: a.table.clone(),
                    column: a.column.clone(),
                },
            ));
        };
        let field = |i: usize| c.get(i).map(String::as_str).unwrap_or("");
        let (data_type, column_type, charset, collation, default, extra, comment, nullable) = (
            field(0),
            field(1),
            field(2),
            field(3),
            field(4),
            field(5).to_ascii_lowercase(),
            field(6),
            field(7),
        );
        let from = family(&crate::backend::translated::types::mysql_info_schema_type(
            data_type,
            column_type,
            comment,
            false,
        ));
        if extra.contains("generated") || extra.contains("virtual") || extra.contains("stored") {
            return Err(ProxyError::FeatureNotSupported(format!(
                "changing the type of the generated column \"{}\" is not supported on bind \"{}\"",
                a.column, self.bind.name
            )));
        }
        self.convertible(a, from).await?;
        if alter_type::unbounded_text(&a.to) && !field(8).is_empty() {
            // MariaDB indexes no LONGTEXT column without a prefix length.
            return Err(ProxyError::FeatureNotSupported(format!(
                "changing the indexed column \"{}\" to an unbounded text type is not supported on bind \"{}\"",
                a.column, self.bind.name
            )));
        }
        let (ty, pg_comment) = alter_type::mysql_column(a);
        let mut sql = format!(
            "ALTER TABLE {} MODIFY {} {ty}",
            quote_my(&a.table),
            quote_my(&a.column)
        );
        let text_to_text = from == alter_type::Family::Text
            && alter_type::Family::of(&a.to) == alter_type::Family::Text;
        if text_to_text && !charset.is_empty() && !collation.is_empty() {
            sql.push_str(&format!(" CHARACTER SET {charset} COLLATE {collation}"));
        }
        sql.push_str(if nullable == "NO" {
            " NOT NULL"
        } else {
            " NULL"
        });
        if !default.is_empty() && !default.eq_ignore_ascii_case("null") {
            let default = match crate::backend::translated::types::mariadb_string(default) {
                Some(text) => literal(&text),
                None => default.to_string(),
            };
            sql.push_str(&format!(" DEFAULT ({default})"));
        }
        if extra.contains("auto_increment") {
            if alter_type::Family::of(&a.to) != alter_type::Family::Integer {
                return Err(ProxyError::FeatureNotSupported(format!(
                    "changing the serial column \"{}\" to a type that is not an integer is not supported on bind \"{}\"",
                    a.column, self.bind.name
                )));
            }
            sql.push_str(" AUTO_INCREMENT");
        }
        sql.push_str(&format!(" COMMENT {}", literal(&pg_comment)));
        Ok(vec![crate::translate::Rewritten {
            sql,
            before: vec![],
            params: vec![],
            kind: crate::translate::Kind::AlterTable,
            returning: None,
            param_hints: vec![],
            pg_types: vec![],
            tag_hint: crate::translate::TagHint::Fixed("ALTER TABLE"),
            drop_index_lookup: None,
            tables: vec![],
            result_types: vec![],
        }])
    }

    /// `ALTER TABLE t ALTER COLUMN c TYPE ty` on SQLite: a rebuild whose new column has the new
    /// declared type and check, the rows copied through the conversion.
    async fn sqlite_alter_type(&mut self, a: &alter_type::AlterType) -> Result<(), ProxyError> {
        let exists = self
            .catalog_rows(&format!(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = {}",
                literal(&a.table)
            ))
            .await?;
        if exists.is_empty() {
            return Err(translate_error(
                &self.bind,
                crate::translate::TranslateError::NoSuchRelation(a.table.clone()),
            ));
        }
        let rows = self
            .catalog_rows(&format!(
                "SELECT type, pk FROM pragma_table_info({}) WHERE name = {}",
                literal(&a.table),
                literal(&a.column)
            ))
            .await?;
        let Some(c) = rows.first() else {
            return Err(translate_error(
                &self.bind,
                crate::translate::TranslateError::NoSuchColumn {
                    table: a.table.clone(),
                    column: a.column.clone(),
                },
            ));
        };
        let decl = c.first().cloned().unwrap_or_default();
        let in_key = c.get(1).is_some_and(|k| k != "0");
        if in_key && decl.eq_ignore_ascii_case("INTEGER") {
            return Err(ProxyError::FeatureNotSupported(format!(
                "changing the type of \"{}\", the rowid key of a SQLite table, is not supported on bind \"{}\"",
                a.column, self.bind.name
            )));
        }
        let from = family(&crate::backend::translated::types::sqlite_decl_type(Some(
            &decl,
        )));
        self.convertible(a, from).await?;
        let (to, check) = alter_type::sqlite_column(a);
        let copy = alter_type::sqlite_copy(&a.column, from, &a.to);
        self.rebuild(&Rebuild {
            table: a.table.clone(),
            change: sequence::Change::ColumnType {
                column: a.column.clone(),
                from: decl,
                to,
                check,
                copy,
            },
            tag: "ALTER TABLE",
        })
        .await
    }

    /// `LOCK … IN ACCESS SHARE MODE`: a read of each table inside the transaction
    /// (`translate/lock.rs` says why that holds the lock); 25P01 outside a transaction block, as
    /// PostgreSQL answers.
    async fn lock(&mut self, probes: &[String]) -> Result<(), ProxyError> {
        if self.tx == Tx::Idle {
            return Err(ProxyError::NoTransactionBlock("LOCK TABLE"));
        }
        self.start_lazy().await?;
        for sql in probes {
            self.batch(sql).await?;
        }
        Ok(())
    }

    async fn rebuild(&mut self, r: &Rebuild) -> Result<(), ProxyError> {
        let rows = self
            .catalog_rows(&format!(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = {}",
                literal(&r.table)
            ))
            .await?;
        let Some(create) = rows.first().and_then(|r| r.first()).cloned() else {
            return Err(translate_error(
                &self.bind,
                crate::translate::TranslateError::NoSuchRelation(r.table.clone()),
            ));
        };
        let Some(definition) = rebuild::rebuilt_definition(&create, &r.change)
            .map_err(|e| match e {
                crate::translate::TranslateError::NoSuchColumn { column, .. } => {
                    crate::translate::TranslateError::NoSuchColumn {
                        table: r.table.clone(),
                        column,
                    }
                }
                e => e,
            })
            .map_err(|e| translate_error(&self.bind, e))?
        else {
            return Ok(());
        };
        if let sequence::Change::Nullability {
            column,
            nullability: Nullability::NotNull,
        } = &r.change
        {
            self.no_nulls(&r.table, column).await?;
        }
        let extra: Vec<String> = self
            .catalog_rows(&format!(
                "SELECT sql FROM sqlite_master WHERE tbl_name = {} AND type IN ('index', 'trigger') AND sql IS NOT NULL",
                literal(&r.table)
            ))
            .await?
            .into_iter()
            .filter_map(|mut r| r.pop())
            .collect();
        let counter = rebuild::Counter::of(&create, &definition);
        let select = match &r.change {
            sequence::Change::ColumnType { column, copy, .. } => {
                rebuild::select_list(&create, column, copy).ok_or_else(|| {
                    translate_error(
                        &self.bind,
                        crate::translate::TranslateError::unsupported(
                            "rebuilding a table whose definition SQLite does not show",
                        ),
                    )
                })?
            }
            _ => "*".to_string(),
        };
        let mut steps = rebuild::steps(&r.table, &definition, &extra, counter, &select);
        if let sequence::Change::SerialKey { sequence, .. } = &r.change {
            steps.extend(rebuild::serial_steps(&r.table, sequence));
        }
        let own = self.tx == Tx::Idle;
        if !own {
            let referenced = self
                .catalog_rows(&format!(
                    "SELECT 1 FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table' AND f.\"table\" = {} AND m.name <> {}",
                    literal(&r.table),
                    literal(&r.table)
                ))
                .await?;
            if !referenced.is_empty() {
                return Err(ProxyError::FeatureNotSupported(format!(
                    "this ALTER TABLE rebuilds table \"{}\" on SQLite, which other tables reference; run it outside a transaction block",
                    r.table
                )));
            }
            self.start_lazy().await?;
            self.batch("PRAGMA defer_foreign_keys = ON").await?;
            for s in &steps {
                self.batch(s).await?;
            }
            self.bind.columns.clear();
            return Ok(());
        }
        // Outside a transaction: foreign keys off (a pragma SQLite takes only outside one) while
        // the table is swapped, then checked before COMMIT.
        self.batch("PRAGMA foreign_keys = OFF").await?;
        let result = async {
            self.begin_engine().await?;
            for s in &steps {
                self.batch(s).await?;
            }
            let bad = self
                .catalog_rows(&format!("PRAGMA foreign_key_check({})", literal(&r.table)))
                .await?;
            if !bad.is_empty() {
                return Err(super::tx_error(
                    "23503",
                    format!(
                        "insert or update on table \"{}\" violates foreign key constraint",
                        r.table
                    ),
                ));
            }
            self.batch("COMMIT").await
        }
        .await;
        if result.is_err() {
            let _ = self.batch("ROLLBACK").await;
        }
        let on = self.batch("PRAGMA foreign_keys = ON").await;
        self.bind.columns.clear();
        result?;
        on
    }
}
