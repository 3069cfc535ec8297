//! The embedded catalog: answers catalog queries (psql's `\d`, `\dt`, `\dn`, `\l`, SQLAlchemy's
//! inspector, `information_schema.tables/columns`, `pg_tables`, …) when no PostgreSQL server holds
//! the shadow catalog.
//!
//! Owns: a SQLite translated bind ([`open_embedded`]) whose in-memory database holds PostgreSQL's
//! catalog relations as tables (`schema`: their columns and types, as PostgreSQL 15 has them), and
//! filling them from the catalog model ([`load`], `rows`: stable oids, PostgreSQL's own oids for
//! built-in types, namespaces and access methods, and what `format_type`, `pg_get_expr`,
//! `pg_get_indexdef` and `pg_get_constraintdef` would print, kept in `bindproxy_*` side tables).
//! Statements reach it through the catalog dialect of the translator (`translate::catalog`).
//!
//! Must never: answer what it does not hold as if it did. A catalog query outside what
//! `translate::catalog` knows is 0A000 naming the `catalog:` setting. Never reads a bind's own
//! database (the model comes from `catalog/read`).

mod opclass;
mod rows;
mod schema;

use std::sync::Arc;
use std::time::Duration;

use crate::backend::translated::TranslatedBind;
use crate::backend::Bind;
use crate::catalog::model::BindSchema;
use crate::config::{BindConfig, BindUrl};
use crate::error::ProxyError;

/// The name the embedded catalog's bind has in logs and errors.
pub const EMBEDDED_BIND_NAME: &str = "catalog";

/// A SQLite-backed catalog bind that answers catalog queries for the given binds' tables.
pub fn open_embedded(cfg_pool_size: u32) -> Result<Bind, ProxyError> {
    let cfg = BindConfig {
        name: EMBEDDED_BIND_NAME.to_string(),
        url: BindUrl::Sqlite { path: None },
        pool_size: cfg_pool_size.max(1) as usize,
        checkout_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
    };
    Ok(Bind::Translated(TranslatedBind::new_catalog(&cfg)?))
}

/// Replace the catalog's contents with these tables (schemas already placed: every Table has
/// schema Some). Readers see the old contents or the new, never a mix (one SQLite transaction).
pub async fn load(bind: &Bind, schema: &BindSchema, database_name: &str) -> Result<(), ProxyError> {
    let Bind::Translated(t) = bind else {
        return Err(not_embedded());
    };
    if !t.is_catalog() {
        return Err(not_embedded());
    }
    let sql = rows::script(schema, database_name)?;
    load_script(t, &sql).await
}

async fn load_script(t: &Arc<TranslatedBind>, sql: &str) -> Result<(), ProxyError> {
    t.run_own_batch(sql).await
}

fn not_embedded() -> ProxyError {
    ProxyError::Protocol("the embedded catalog can only be loaded into its own bind".into())
}
