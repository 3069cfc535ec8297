//! Sequences and pg_dump's ALTER TABLE forms on a MySQL/SQLite connection: what
//! `crate::translate::sequence` plans, run here — statements for the engine go the usual way
//! (`exec_parts`); ignored statements answer with their tag (and a NOTICE); a SQLite rebuild runs
//! `backend/translated/rebuild.rs`'s steps in one transaction.
//!
//! Owns: [`TranslatedConn::schema_plan`] and the execution of [`Plan::Ignored`] and
//! [`Plan::Rebuild`].
//!
//! Must never: leave a half-rebuilt table (every step runs in one engine transaction, rolled back
//! on error), or rebuild a table other tables reference from inside the client's transaction
//! (SQLite's DROP TABLE would act on their rows).

use bytes::BytesMut;

use super::{translate_error, TranslatedConn, Tx};
use crate::backend::translated::rebuild;
use crate::error::ProxyError;
use crate::protocol::messages::{notice_response, ErrorFields};
use crate::translate::sequence::{self, Plan, Rebuild};

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
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
            Plan::Engine(_) => Ok(String::new()),
        }
    }

    async fn rebuild(&mut self, r: &Rebuild) -> Result<(), ProxyError> {
        let rows = self
            .catalog_rows(&format!(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = {}",
                literal(&r.table)
            ))
            .await?;
        let Some(create) = rows.first().and_then(|r| r.first()).cloned() else {
            return Err(super::tx_error(
                "42P01",
                format!("relation \"{}\" does not exist", r.table),
            ));
        };
        let Some(definition) = rebuild::rebuilt_definition(&create, &r.change)
            .map_err(|e| translate_error(&self.bind, e))?
        else {
            return Ok(());
        };
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
        let mut steps = rebuild::steps(&r.table, &definition, &extra, counter);
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
