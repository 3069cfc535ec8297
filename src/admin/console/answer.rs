//! A console answer as PostgreSQL sends a result set: RowDescription (text or int8 columns),
//! DataRows, CommandComplete.
//!
//! Owns: the columns of an answer, its rows, its tag, and their encoding in the format the client
//! asked (text, or binary on an extended-protocol Bind). Must never: run a command.

use bytes::BytesMut;

use crate::protocol::messages::{self, FieldDescription};

/// PostgreSQL's type of a console column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Text,
    Int8,
}

impl ColType {
    fn oid(self) -> u32 {
        match self {
            ColType::Text => 25,
            ColType::Int8 => 20,
        }
    }

    fn size(self) -> i16 {
        match self {
            ColType::Text => -1,
            ColType::Int8 => 8,
        }
    }
}

/// One column: its name and type.
pub type Column = (&'static str, ColType);

/// One value of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Int(i64),
    Null,
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_owned())
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Text(if b { "yes" } else { "no" }.to_owned())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// What a command answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub columns: &'static [Column],
    pub rows: Vec<Vec<Value>>,
    /// The CommandComplete tag: `SELECT n` for a result set.
    pub tag: String,
}

impl Answer {
    /// A result set.
    pub fn rows(columns: &'static [Column], rows: Vec<Vec<Value>>) -> Answer {
        Answer {
            columns,
            tag: format!("SELECT {}", rows.len()),
            rows,
        }
    }

    /// A one-column, one-row answer (what RELOAD, PAUSE, RESUME and KILL did).
    pub fn message(column: &'static [Column], text: String, tag: &str) -> Answer {
        Answer {
            columns: column,
            rows: vec![vec![Value::Text(text)]],
            tag: tag.to_owned(),
        }
    }

    /// RowDescription, or NoData for an answer without columns.
    pub fn describe(columns: &[Column], formats: &[i16], out: &mut BytesMut) {
        if columns.is_empty() {
            messages::empty(out, b'n');
            return;
        }
        let fields: Vec<FieldDescription> = columns
            .iter()
            .enumerate()
            .map(|(i, (name, ty))| FieldDescription {
                name: (*name).to_owned(),
                table_oid: 0,
                column: 0,
                type_oid: ty.oid(),
                type_size: ty.size(),
                type_modifier: -1,
                format: messages::format_of(formats, i),
            })
            .collect();
        messages::row_description(out, &fields);
    }

    /// The DataRows and the CommandComplete.
    pub fn write_rows(&self, formats: &[i16], out: &mut BytesMut) {
        for row in &self.rows {
            let at = messages::data_row_begin(out, row.len());
            for (i, v) in row.iter().enumerate() {
                let binary = messages::format_of(formats, i) == 1;
                match v {
                    Value::Null => messages::data_row_value(out, None),
                    Value::Text(s) => messages::data_row_value(out, Some(s.as_bytes())),
                    Value::Int(n) if binary => {
                        messages::data_row_value(out, Some(&n.to_be_bytes()))
                    }
                    Value::Int(n) => messages::data_row_value(out, Some(n.to_string().as_bytes())),
                }
            }
            messages::data_row_end(out, at);
        }
        messages::command_complete(out, &self.tag);
    }

    /// The whole answer to a simple Query.
    pub fn write(&self, out: &mut BytesMut) {
        Answer::describe(self.columns, &[], out);
        self.write_rows(&[], out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_set_has_its_columns_rows_and_tag() {
        const COLS: &[Column] = &[("name", ColType::Text), ("n", ColType::Int8)];
        let a = Answer::rows(COLS, vec![vec!["a".into(), Value::Int(7)]]);
        let mut out = BytesMut::new();
        a.write(&mut out);
        let tags: Vec<u8> = crate::protocol::frame::messages(&out)
            .map(|(t, _)| t)
            .collect();
        assert_eq!(tags, b"TDC");
        assert!(out.windows(8).any(|w| w == b"SELECT 1"));
        let mut bin = BytesMut::new();
        a.write_rows(&[0, 1], &mut bin);
        assert!(bin.windows(8).any(|w| w == 7i64.to_be_bytes()));
    }
}
