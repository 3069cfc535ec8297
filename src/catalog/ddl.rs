//! Placeholder until the renderer lands.

use crate::catalog::model::{BindSchema, Table};

pub fn render(_schema: &BindSchema) -> Vec<String> {
    Vec::new()
}

pub fn render_table(_table: &Table) -> Vec<String> {
    Vec::new()
}
