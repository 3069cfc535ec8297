//! COPY on a MySQL/SQLite connection: `COPY … FROM STDIN` loads the client's CopyData into the
//! table in batches of multi-row INSERTs, `COPY … TO STDOUT` streams a SELECT as CopyData.
//!
//! Owns: [`CopyIn`] (a COPY FROM in progress: the decoder, the pending batch, the row count) and the
//! [`TranslatedConn`] methods the session calls for CopyData / CopyDone / CopyFail.
//!
//! Rows go to the engine as bound parameters of `INSERT INTO t (cols) VALUES ($1, …), (…)`,
//! rendered by `crate::translate` like any client INSERT (never values pasted into SQL). A COPY
//! runs inside one transaction: the client's block when one is open (a failure fails the block),
//! else its own, committed at CopyDone (simple query) or at Sync (extended protocol), rolled back
//! on any error or CopyFail, so that all rows or none are loaded.
//!
//! Must never: commit part of a COPY that failed, or write to the client anything but what
//! PostgreSQL would (CopyInResponse, CopyOutResponse, CopyData, CopyDone, CommandComplete).

use bytes::BytesMut;

use super::{RowSink, TranslatedConn, Tx};
use crate::backend::translated::copy::{
    self, check_width, field_value, CopyError, CopyStmt, Decoder, Direction, Encoder, Format,
    Record, Source,
};
use crate::backend::translated::types::{PgType, Value};
use crate::backend::translated::Column;
use crate::error::ProxyError;
use crate::protocol::messages::command_complete;
use crate::translate::{Kind, Rewritten};

/// Bound parameters per INSERT of a batch: well below MySQL's 65535 and SQLite's 32766.
const PARAMS_PER_BATCH: usize = 16_000;
/// Rows per INSERT at most.
const ROWS_PER_BATCH: usize = 2_000;

/// How the COPY was sent, which decides who ends its implicit transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A simple Query: CopyDone ends it, and ReadyForQuery follows.
    Query,
    /// Parse/Bind/Execute: the client's Sync ends it.
    Extended,
}

/// A COPY FROM STDIN in progress.
pub(crate) struct CopyIn {
    via: Via,
    relation: String,
    names: Vec<String>,
    types: Vec<PgType>,
    binary: bool,
    decoder: Decoder,
    batch: Vec<Value>,
    batch_rows: usize,
    per_batch: usize,
    count: u64,
    insert: Insert,
    /// The SQL of a full batch, rendered once.
    full_sql: Option<String>,
}

impl TranslatedConn {
    /// The COPY statement of `sql` on this bind, if it is one.
    pub(super) fn copy_statement(&self, sql: &str) -> Option<Result<CopyStmt, ProxyError>> {
        copy::parse(sql, &self.bind.name).map(|r| r.map_err(ProxyError::from))
    }

    /// A COPY FROM STDIN waiting for the client's data: how it was sent.
    pub fn copy_in_progress(&self) -> Option<Via> {
        self.copy_in.as_ref().map(|c| c.via)
    }

    /// Starts a COPY: FROM STDIN writes CopyInResponse and waits for data; TO STDOUT runs the
    /// whole COPY. Returns the tag when the COPY is over (TO), None while data is awaited (FROM).
    pub(super) async fn copy_start(
        &mut self,
        stmt: &CopyStmt,
        out: &mut BytesMut,
        via: Via,
    ) -> Result<Option<String>, ProxyError> {
        match self.tx {
            Tx::Failed | Tx::ImplicitFailed => return Err(ProxyError::InFailedTransaction),
            Tx::Prepared => return Err(self.prepared_error()),
            _ => {}
        }
        match stmt.direction {
            Direction::ToStdout => self.copy_out(stmt, out).await.map(Some),
            Direction::FromStdin => {
                self.copy_in_start(stmt, out, via).await?;
                Ok(None)
            }
        }
    }

    /// The columns of `SELECT <cols> FROM <table>` (or of the COPY's query) as the engine
    /// describes them, with the statement rendered for the engine.
    async fn copy_columns(&mut self, select: &str) -> Result<(Rewritten, Vec<Column>), ProxyError> {
        let parts = self.rewrite(select).await?;
        let [part] = parts.as_slice() else {
            return Err(CopyError::Unsupported("COPY (query) must be one SELECT".into()).into());
        };
        if part.kind != Kind::Select {
            return Err(CopyError::Unsupported(
                "COPY (query) TO STDOUT supports SELECT queries only on this bind".into(),
            )
            .into());
        }
        let mut columns = self.engine()?.prepare(&part.sql).await?.columns;
        super::super::restype::apply(self.engine()?, &part.result_types, &mut columns).await;
        Ok((part.clone(), columns))
    }

    fn select_for(stmt: &CopyStmt) -> String {
        match (&stmt.source, stmt.table_sql()) {
            (Source::Query(q), _) => q.clone(),
            (_, Some(t)) => {
                let cols = if stmt.columns.is_empty() {
                    "*".to_string()
                } else {
                    stmt.columns
                        .iter()
                        .map(|c| copy::quote_ident(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!("SELECT {cols} FROM {t}")
            }
            (_, None) => String::new(),
        }
    }

    async fn copy_out(
        &mut self,
        stmt: &CopyStmt,
        out: &mut BytesMut,
    ) -> Result<String, ProxyError> {
        let (part, columns) = self.copy_columns(&Self::select_for(stmt)).await?;
        let format = stmt.options.format;
        copy::response(out, b'H', format, columns.len());
        let mut encoder = Encoder::new(stmt.options.clone(), columns.clone());
        let mut head = Vec::new();
        encoder.header(&mut head);
        if !head.is_empty() {
            copy::copy_data(out, &head);
        }
        let binary = vec![format == Format::Binary; columns.len()];
        let rows = {
            let mut sink = RowSink::portal(out, columns, binary, 0);
            sink.copy = Some(Box::new(encoder));
            self.run_part(&part, &[], &mut sink, false).await?;
            sink.count
        };
        let encoder = Encoder::new(stmt.options.clone(), vec![]);
        let mut tail = Vec::new();
        encoder.trailer(&mut tail);
        if !tail.is_empty() {
            copy::copy_data(out, &tail);
        }
        copy::copy_done(out);
        Ok(format!("COPY {rows}"))
    }

    async fn copy_in_start(
        &mut self,
        stmt: &CopyStmt,
        out: &mut BytesMut,
        via: Via,
    ) -> Result<(), ProxyError> {
        let Some(table_sql) = stmt.table_sql() else {
            return Err(CopyError::Unsupported("COPY FROM needs a table".into()).into());
        };
        let probe = format!("{} LIMIT 0", Self::select_for(stmt));
        let (_, columns) = self.copy_columns(&probe).await?;
        let names: Vec<String> = if stmt.columns.is_empty() {
            columns.iter().map(|c| c.name.clone()).collect()
        } else {
            stmt.columns.clone()
        };
        let types: Vec<PgType> = columns.iter().map(|c| c.ty).collect();
        // The COPY's transaction: the client's block, or its own.
        match self.tx {
            Tx::Idle => {
                self.begin_engine().await?;
                self.tx = Tx::Implicit;
            }
            Tx::Block => self.start_lazy().await?,
            _ => {}
        }
        let insert = self.insert_for(&table_sql, &names).await?;
        let per_batch = match insert {
            Insert::Expand { .. } => {
                (PARAMS_PER_BATCH / names.len().max(1)).clamp(1, ROWS_PER_BATCH)
            }
            Insert::RowByRow(_) => 1,
        };
        copy::response(out, b'G', stmt.options.format, names.len());
        self.copy_in = Some(Box::new(CopyIn {
            via,
            relation: stmt.relation().to_string(),
            decoder: Decoder::new(stmt.options.clone(), names.clone()),
            binary: stmt.options.format == Format::Binary,
            names,
            types,
            batch: Vec::new(),
            batch_rows: 0,
            per_batch,
            count: 0,
            insert,
            full_sql: None,
        }));
        Ok(())
    }

    /// CopyData of a COPY FROM STDIN. Nothing is written unless it fails: then the COPY is over,
    /// its transaction rolled back (or the client's block failed), and the error returned.
    /// Without a COPY in progress (it failed earlier) the data is dropped, as PostgreSQL does.
    pub async fn copy_data(&mut self, data: &[u8]) -> Result<(), ProxyError> {
        let Some(mut c) = self.copy_in.take() else {
            return Ok(());
        };
        c.decoder.push(data);
        match self.copy_rows(&mut c, false).await {
            Ok(_) => {
                self.copy_in = Some(c);
                Ok(())
            }
            Err(e) => {
                self.on_error(c.via == Via::Query).await;
                Err(e)
            }
        }
    }

    /// CopyDone: the last rows, CommandComplete `COPY n`; a COPY sent as a simple Query commits
    /// its own transaction now.
    pub async fn copy_done(&mut self, out: &mut BytesMut) -> Result<(), ProxyError> {
        let Some(mut c) = self.copy_in.take() else {
            return Ok(());
        };
        let r = async {
            self.copy_rows(&mut c, true).await?;
            c.decoder.check_finished(&c.relation)?;
            self.flush_batch(&mut c).await
        }
        .await;
        if let Err(e) = r {
            self.on_error(c.via == Via::Query).await;
            return Err(e);
        }
        if c.via == Via::Query && self.tx == Tx::Implicit {
            self.end_transaction(true).await?;
        }
        command_complete(out, &format!("COPY {}", c.count));
        Ok(())
    }

    /// CopyFail: the COPY ends with 57014 and loads nothing.
    pub async fn copy_fail(&mut self, message: &str) -> ProxyError {
        if let Some(c) = self.copy_in.take() {
            self.on_error(c.via == Via::Query).await;
        }
        CopyError::ClientFailed(message.to_string()).into()
    }

    /// Decodes the complete records buffered and loads full batches. `last`: CopyDone came.
    async fn copy_rows(&mut self, c: &mut CopyIn, last: bool) -> Result<(), ProxyError> {
        while let Some(rec) = c.decoder.next(&c.relation, last)? {
            let Record::Row(fields) = rec else { break };
            let line = c.decoder.line;
            check_width(&fields, &c.names, &c.relation, line)?;
            for (i, f) in fields.iter().enumerate() {
                let v = field_value(
                    c.types.get(i).copied().unwrap_or(PgType::Text),
                    c.binary,
                    f.as_deref(),
                    &c.relation,
                    line,
                    &c.names[i],
                )?;
                c.batch.push(v);
            }
            c.batch_rows += 1;
            c.decoder.row_done();
            if c.batch_rows >= c.per_batch {
                self.flush_batch(c).await?;
            }
        }
        Ok(())
    }

    /// Inserts the pending rows: one multi-row INSERT with bound parameters.
    async fn flush_batch(&mut self, c: &mut CopyIn) -> Result<(), ProxyError> {
        if c.batch_rows == 0 {
            return Ok(());
        }
        let params = std::mem::take(&mut c.batch);
        let part = match &c.insert {
            Insert::Expand { one, prefix, tuple } => {
                let full = c.batch_rows == c.per_batch;
                let sql = match (&c.full_sql, full) {
                    (Some(s), true) => s.clone(),
                    _ => {
                        let mut s =
                            String::with_capacity(prefix.len() + c.batch_rows * (tuple.len() + 2));
                        s.push_str(prefix);
                        for r in 0..c.batch_rows {
                            if r > 0 {
                                s.push_str(", ");
                            }
                            s.push_str(tuple);
                        }
                        if full {
                            c.full_sql = Some(s.clone());
                        }
                        s
                    }
                };
                Rewritten {
                    sql,
                    params: (0..params.len()).collect(),
                    ..one.clone()
                }
            }
            Insert::RowByRow(one) => one.clone(),
        };
        let mut scratch = BytesMut::new();
        let mut sink = RowSink::portal(&mut scratch, vec![], vec![], 0);
        self.run_part(&part, &params, &mut sink, true).await?;
        c.count += c.batch_rows as u64;
        c.batch_rows = 0;
        Ok(())
    }

    /// The INSERT of one row as `crate::translate` renders it for the engine; when it ends in a
    /// plain tuple of placeholders, batches repeat that tuple.
    async fn insert_for(
        &mut self,
        table_sql: &str,
        names: &[String],
    ) -> Result<Insert, ProxyError> {
        let cols = names
            .iter()
            .map(|n| copy::quote_ident(n))
            .collect::<Vec<_>>()
            .join(", ");
        let values = (1..=names.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("INSERT INTO {table_sql} ({cols}) VALUES ({values})");
        let parts = self.rewrite(&sql).await?;
        let [one] = parts.as_slice() else {
            return Err(CopyError::Unsupported(format!(
                "COPY FROM into {table_sql} cannot be rendered as one INSERT on this bind"
            ))
            .into());
        };
        let plain = one.before.is_empty()
            && one.returning.is_none()
            && one.params.iter().copied().eq(0..names.len());
        let tuple_at = one.sql.rfind('(').filter(|_| plain);
        if let Some(at) = tuple_at {
            let tuple = &one.sql[at..];
            let only_marks = tuple
                .bytes()
                .all(|b| matches!(b, b'(' | b')' | b'?' | b',' | b' '));
            if only_marks && tuple.bytes().filter(|b| *b == b'?').count() == names.len() {
                return Ok(Insert::Expand {
                    prefix: one.sql[..at].to_string(),
                    tuple: tuple.to_string(),
                    one: one.clone(),
                });
            }
        }
        Ok(Insert::RowByRow(one.clone()))
    }
}

/// How the rows of a batch reach the engine.
enum Insert {
    /// `prefix` + `tuple, tuple, …`: one INSERT per batch.
    Expand {
        one: Rewritten,
        prefix: String,
        tuple: String,
    },
    /// The rendering is not a plain tuple (the translator added statements around it): one row
    /// per INSERT.
    RowByRow(Rewritten),
}
