//! COPY for MySQL/SQLite binds: the statement, its options, and PostgreSQL's three data formats.
//!
//! Owns: [`CopyStmt`] (what `COPY t [(cols)] FROM STDIN` / `COPY t|(query) TO STDOUT … WITH (…)`
//! asks, read from PostgreSQL's parse tree), [`Decoder`] (client CopyData → rows of raw fields,
//! text, CSV and binary, with PostgreSQL's escaping, quoting, NULL, HEADER, DELIMITER, QUOTE,
//! ESCAPE, FORCE_NOT_NULL / FORCE_NULL rules; records may span CopyData messages), [`Encoder`]
//! (rows → the bytes PostgreSQL's COPY TO writes, byte for byte) and [`CopyError`].
//!
//! The field values themselves are converted by the column's PostgreSQL type with
//! [`super::types::decode_param`] (input) and [`super::types::encode_typmod`] (output), the
//! same code that reads Bind parameters and writes DataRows.
//!
//! Must never: talk to an engine or to the client (the connection in `session/copy.rs` does), or
//! accept a file or program COPY: only STDIN / STDOUT reach a bind through the protocol.

use bytes::{BufMut, BytesMut};
use pg_query::protobuf::node::Node as NodeEnum;
use pg_query::protobuf::Node;

use super::types::{encode_typmod, PgType, Value};
use super::Column;
use crate::error::ProxyError;

/// The 11-byte signature of PostgreSQL's binary COPY format.
pub const BINARY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Rows of one COPY FROM larger than this (raw bytes of a record) are refused: a record is held
/// in memory until it is complete.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// A COPY problem, in PostgreSQL's words; `context` is PostgreSQL's CONTEXT line
/// (`COPY t, line 3, column b: "x"`), sent as the error's detail.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// `COPY … FROM 'file'` / `PROGRAM`: the file would be the engine host's, which PostgreSQL
    /// semantics cannot give.
    #[error("COPY to or from a file or program is not supported on bind \"{bind}\"; use COPY … FROM STDIN / TO STDOUT (psql's \\copy)")]
    FileNotSupported { bind: String },
    /// A construct bindproxy does not run on these binds (`WHERE`, `FREEZE`, …).
    #[error("{0}")]
    Unsupported(String),
    /// A bad or conflicting option (PostgreSQL: 42601 / 22023).
    #[error("{0}")]
    Option(String),
    /// Malformed data: missing or extra columns, an unterminated quote, a bad binary header.
    #[error("{message}")]
    BadData { message: String, context: String },
    /// A field that does not convert to its column's type.
    #[error("{message}")]
    Value {
        code: String,
        message: String,
        context: String,
    },
    /// The client sent CopyFail.
    #[error("COPY from stdin failed: {0}")]
    ClientFailed(String),
}

impl CopyError {
    /// The CONTEXT of an error about the data, if any.
    pub fn context(&self) -> Option<&str> {
        match self {
            CopyError::BadData { context, .. } | CopyError::Value { context, .. } => Some(context),
            _ => None,
        }
    }
}

/// The direction of a COPY through the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    FromStdin,
    ToStdout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Csv,
    Binary,
}

impl Format {
    /// The overall format code of CopyInResponse / CopyOutResponse.
    pub fn code(self) -> u8 {
        match self {
            Format::Binary => 1,
            _ => 0,
        }
    }
}

/// Whether the data starts with a header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    Absent,
    Present,
    /// `HEADER MATCH` (input only): the header's names must be the columns'.
    Match,
}

/// Columns given by `FORCE_QUOTE` / `FORCE_NOT_NULL` / `FORCE_NULL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSet {
    None,
    All,
    Named(Vec<String>),
}

impl ColumnSet {
    fn contains(&self, name: &str) -> bool {
        match self {
            ColumnSet::None => false,
            ColumnSet::All => true,
            ColumnSet::Named(v) => v.iter().any(|c| c == name),
        }
    }
}

/// The options of a COPY, defaults filled in as PostgreSQL fills them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    pub format: Format,
    pub delimiter: u8,
    pub null: Vec<u8>,
    pub header: Header,
    pub quote: u8,
    pub escape: u8,
    pub force_quote: ColumnSet,
    pub force_not_null: ColumnSet,
    pub force_null: ColumnSet,
}

/// What a COPY reads from or writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A table (schema, name, as PostgreSQL folded them).
    Table {
        schema: Option<String>,
        name: String,
    },
    /// `COPY (query) TO STDOUT`: the query's text (PostgreSQL's deparse of it).
    Query(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyStmt {
    pub source: Source,
    /// The column list, empty for all columns.
    pub columns: Vec<String>,
    pub direction: Direction,
    pub options: CopyOptions,
}

impl CopyStmt {
    /// The relation name for messages (`COPY t, line 3`).
    pub fn relation(&self) -> &str {
        match &self.source {
            Source::Table { name, .. } => name,
            Source::Query(_) => "",
        }
    }

    /// The table as a PostgreSQL name, quoted.
    pub fn table_sql(&self) -> Option<String> {
        match &self.source {
            Source::Table { schema, name } => Some(match schema {
                Some(s) => format!("{}.{}", quote_ident(s), quote_ident(name)),
                None => quote_ident(name),
            }),
            Source::Query(_) => None,
        }
    }
}

/// A PostgreSQL identifier, always double-quoted (the names come folded from the parse tree).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The COPY statement of `sql`, if `sql` is one COPY statement. `bind` names the bind in errors.
pub fn parse(sql: &str, bind: &str) -> Option<Result<CopyStmt, CopyError>> {
    let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).ok()?;
    let [raw] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    let Some(NodeEnum::CopyStmt(c)) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
        return None;
    };
    Some(from_tree(c, bind))
}

fn from_tree(c: &pg_query::protobuf::CopyStmt, bind: &str) -> Result<CopyStmt, CopyError> {
    if c.is_program || !c.filename.is_empty() {
        return Err(CopyError::FileNotSupported { bind: bind.into() });
    }
    if c.where_clause.is_some() {
        return Err(CopyError::Unsupported(format!(
            "COPY FROM … WHERE is not supported on bind \"{bind}\""
        )));
    }
    let direction = if c.is_from {
        Direction::FromStdin
    } else {
        Direction::ToStdout
    };
    let source = match (&c.relation, &c.query) {
        (Some(r), None) => Source::Table {
            schema: (!r.schemaname.is_empty()).then(|| r.schemaname.clone()),
            name: r.relname.clone(),
        },
        (None, Some(q)) => {
            let text = q
                .node
                .as_ref()
                .and_then(|n| n.deparse(Default::default()).ok())
                .ok_or_else(|| CopyError::Unsupported("COPY (query) could not be read".into()))?;
            Source::Query(text)
        }
        _ => return Err(CopyError::Unsupported("COPY without a table".into())),
    };
    let columns = c
        .attlist
        .iter()
        .filter_map(string_of)
        .map(str::to_owned)
        .collect();
    let options = options(&c.options, direction)?;
    Ok(CopyStmt {
        source,
        columns,
        direction,
        options,
    })
}

fn string_of(n: &Node) -> Option<&str> {
    match n.node.as_ref()? {
        NodeEnum::String(s) => Some(&s.sval),
        _ => None,
    }
}

/// An option's argument as text (`'x'`, `csv`, `true`, `1`).
fn arg_text(arg: Option<&Node>) -> Option<String> {
    match arg?.node.as_ref()? {
        NodeEnum::String(s) => Some(s.sval.clone()),
        NodeEnum::Boolean(b) => Some(if b.boolval { "true" } else { "false" }.into()),
        NodeEnum::Integer(i) => Some(i.ival.to_string()),
        NodeEnum::AConst(a) => match a.val.as_ref()? {
            pg_query::protobuf::a_const::Val::Sval(s) => Some(s.sval.clone()),
            pg_query::protobuf::a_const::Val::Ival(i) => Some(i.ival.to_string()),
            pg_query::protobuf::a_const::Val::Boolval(b) => {
                Some(if b.boolval { "true" } else { "false" }.into())
            }
            _ => None,
        },
        _ => None,
    }
}

fn column_set(arg: Option<&Node>) -> ColumnSet {
    match arg.and_then(|a| a.node.as_ref()) {
        Some(NodeEnum::AStar(_)) => ColumnSet::All,
        Some(NodeEnum::List(l)) => ColumnSet::Named(
            l.items
                .iter()
                .filter_map(string_of)
                .map(str::to_owned)
                .collect(),
        ),
        _ => ColumnSet::None,
    }
}

fn single_byte(name: &str, v: &str) -> Result<u8, CopyError> {
    match v.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(CopyError::Option(format!(
            "COPY {name} must be a single one-byte character"
        ))),
    }
}

fn bool_option(name: &str, v: Option<String>) -> Result<bool, CopyError> {
    match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("true" | "on" | "1") => Ok(true),
        Some("false" | "off" | "0") => Ok(false),
        _ => Err(CopyError::Option(format!(
            "{name} requires a Boolean value"
        ))),
    }
}

fn options(list: &[Node], direction: Direction) -> Result<CopyOptions, CopyError> {
    let mut format = Format::Text;
    let (mut delimiter, mut null, mut quote, mut escape) = (None, None, None, None);
    let mut header = Header::Absent;
    let (mut force_quote, mut force_not_null, mut force_null) =
        (ColumnSet::None, ColumnSet::None, ColumnSet::None);
    for o in list {
        let Some(NodeEnum::DefElem(d)) = o.node.as_ref() else {
            continue;
        };
        let arg = d.arg.as_deref();
        match d.defname.as_str() {
            "format" => {
                format = match arg_text(arg).map(|s| s.to_ascii_lowercase()).as_deref() {
                    Some("text") => Format::Text,
                    Some("csv") => Format::Csv,
                    Some("binary") => Format::Binary,
                    other => {
                        return Err(CopyError::Option(format!(
                            "COPY format \"{}\" not recognized",
                            other.unwrap_or("")
                        )))
                    }
                }
            }
            "delimiter" => {
                delimiter = Some(single_byte(
                    "delimiter",
                    &arg_text(arg).unwrap_or_default(),
                )?)
            }
            "null" => null = Some(arg_text(arg).unwrap_or_default().into_bytes()),
            "quote" => quote = Some(single_byte("quote", &arg_text(arg).unwrap_or_default())?),
            "escape" => escape = Some(single_byte("escape", &arg_text(arg).unwrap_or_default())?),
            "header" => {
                let v = arg_text(arg);
                header = if v
                    .as_deref()
                    .is_some_and(|s| s.eq_ignore_ascii_case("match"))
                {
                    if direction == Direction::ToStdout {
                        return Err(CopyError::Option(
                            "cannot use \"match\" with HEADER in COPY TO".into(),
                        ));
                    }
                    Header::Match
                } else if bool_option("header", v)? {
                    Header::Present
                } else {
                    Header::Absent
                }
            }
            "force_quote" => force_quote = column_set(arg),
            "force_not_null" => force_not_null = column_set(arg),
            "force_null" => force_null = column_set(arg),
            // Accepted and meaningless here, as for a client-side COPY in PostgreSQL.
            "encoding" | "oids" => {}
            "freeze" => {
                if bool_option("freeze", arg_text(arg))? {
                    return Err(CopyError::Unsupported(
                        "COPY FREEZE is not supported on MySQL/SQLite binds".into(),
                    ));
                }
            }
            other => {
                return Err(CopyError::Option(format!(
                    "option \"{other}\" not recognized"
                )))
            }
        }
    }
    let csv = format == Format::Csv;
    if format == Format::Binary
        && (delimiter.is_some() || null.is_some() || header != Header::Absent)
    {
        return Err(CopyError::Option(
            "cannot specify DELIMITER, NULL or HEADER in BINARY mode".into(),
        ));
    }
    if !csv && (quote.is_some() || escape.is_some()) {
        return Err(CopyError::Option(
            "COPY QUOTE and ESCAPE are available only in CSV mode".into(),
        ));
    }
    if !csv
        && (force_quote != ColumnSet::None
            || force_not_null != ColumnSet::None
            || force_null != ColumnSet::None)
    {
        return Err(CopyError::Option(
            "COPY FORCE_QUOTE, FORCE_NOT_NULL and FORCE_NULL are available only in CSV mode".into(),
        ));
    }
    let delimiter = delimiter.unwrap_or(if csv { b',' } else { b'\t' });
    let quote = quote.unwrap_or(b'"');
    let escape = escape.unwrap_or(quote);
    let null = null.unwrap_or_else(|| if csv { vec![] } else { b"\\N".to_vec() });
    if matches!(delimiter, b'\r' | b'\n') || (!csv && delimiter == b'\\') {
        return Err(CopyError::Option(
            "COPY delimiter cannot be newline, carriage return or backslash".into(),
        ));
    }
    if csv && delimiter == quote {
        return Err(CopyError::Option(
            "COPY delimiter and quote must be different".into(),
        ));
    }
    if null.contains(&delimiter) {
        return Err(CopyError::Option(
            "COPY delimiter must not appear in the NULL specification".into(),
        ));
    }
    Ok(CopyOptions {
        format,
        delimiter,
        null,
        header,
        quote,
        escape,
        force_quote,
        force_not_null,
        force_null,
    })
}

// ---------------------------------------------------------------------------------------------
// Input

/// One field of an input record: NULL, or its bytes after unescaping (text) / unquoting (CSV) /
/// as sent (binary).
pub type Field = Option<Vec<u8>>;

/// One record read from the client's data.
#[derive(Debug, PartialEq, Eq)]
pub enum Record {
    Row(Vec<Field>),
    /// The end of the data: `\.` alone on a line, or the binary trailer.
    End,
}

/// Turns the client's CopyData bytes into records, whatever the message boundaries.
pub struct Decoder {
    opts: CopyOptions,
    /// The names of the columns loaded (for HEADER MATCH and FORCE_* lists).
    names: Vec<String>,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
    /// The line number of the next record (PostgreSQL counts the header too).
    pub line: u64,
    header_pending: bool,
    binary_header_pending: bool,
    ended: bool,
    /// A text line ended with the end-of-data marker `\.`.
    marker: bool,
}

impl Decoder {
    pub fn new(opts: CopyOptions, names: Vec<String>) -> Self {
        let header_pending = opts.header != Header::Absent;
        let binary_header_pending = opts.format == Format::Binary;
        Decoder {
            opts,
            names,
            buf: Vec::new(),
            pos: 0,
            line: 1,
            header_pending,
            binary_header_pending,
            ended: false,
            marker: false,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    fn context(&self, relation: &str) -> String {
        format!("COPY {relation}, line {}", self.line)
    }

    fn bad(&self, relation: &str, message: impl Into<String>) -> CopyError {
        CopyError::BadData {
            message: message.into(),
            context: self.context(relation),
        }
    }

    /// The next complete record, or None when more data is needed. `last`: the client sent
    /// CopyDone, so what is left is the last record (it need not end with a newline).
    pub fn next(&mut self, relation: &str, last: bool) -> Result<Option<Record>, CopyError> {
        loop {
            if self.ended {
                return Ok(None);
            }
            let rec = match self.opts.format {
                Format::Binary => return self.next_binary(relation, last),
                Format::Text => self.next_text_line(last),
                Format::Csv => self.next_csv_record(relation, last)?,
            };
            let Some((start, end, next)) = rec else {
                return Ok(None);
            };
            if end - start > MAX_RECORD_BYTES {
                return Err(self.bad(relation, "COPY record too large"));
            }
            let raw = self.buf[start..end].to_vec();
            self.pos = next;
            if raw == b"\\." || (self.marker && raw.is_empty()) {
                self.ended = true;
                return Ok(Some(Record::End));
            }
            if self.marker {
                self.ended = true;
            }
            if self.header_pending {
                self.header_pending = false;
                if self.opts.header == Header::Match {
                    self.check_header(&raw, relation)?;
                }
                self.line += 1;
                continue;
            }
            let fields = match self.opts.format {
                Format::Text => self.text_fields(&raw),
                _ => self.csv_fields(&raw, relation)?,
            };
            return Ok(Some(Record::Row(fields)));
        }
    }

    /// Advances the line count after a row was used.
    pub fn row_done(&mut self) {
        self.line += 1;
    }

    fn check_header(&self, raw: &[u8], relation: &str) -> Result<(), CopyError> {
        let fields = match self.opts.format {
            Format::Text => self.text_fields(raw),
            _ => self.csv_fields(raw, relation)?,
        };
        if fields.len() != self.names.len() {
            return Err(self.bad(
                relation,
                format!(
                    "wrong number of fields in header line: got {}, expected {}",
                    fields.len(),
                    self.names.len()
                ),
            ));
        }
        for (f, n) in fields.iter().zip(&self.names) {
            let got = f
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            if got != n.as_str() {
                return Err(self.bad(
                    relation,
                    format!("column name mismatch in header line field: got \"{got}\", expected \"{n}\""),
                ));
            }
        }
        Ok(())
    }

    /// A text-format line: (start, end without the line ending, start of the next).
    fn next_text_line(&mut self, last: bool) -> Option<(usize, usize, usize)> {
        let b = &self.buf;
        let mut i = self.pos;
        while i < b.len() {
            match b[i] {
                // `\.` then the line's end ends the data; what precedes it on the line is a last row.
                b'\\' if b.get(i + 1) == Some(&b'.') => match b.get(i + 2) {
                    Some(b'\n') | Some(b'\r') => {
                        self.marker = true;
                        return Some((self.pos, i, b.len()));
                    }
                    None if last => {
                        self.marker = true;
                        return Some((self.pos, i, b.len()));
                    }
                    None => return None,
                    Some(_) => i += 2,
                },
                // An escaped character, even a newline, belongs to the line.
                b'\\' => i += 2,
                b'\n' => return Some((self.pos, i, i + 1)),
                b'\r' => {
                    if i + 1 < b.len() {
                        let next = if b[i + 1] == b'\n' { i + 2 } else { i + 1 };
                        return Some((self.pos, i, next));
                    }
                    if last {
                        return Some((self.pos, i, i + 1));
                    }
                    return None;
                }
                _ => i += 1,
            }
        }
        (last && self.pos < b.len()).then_some((self.pos, b.len(), b.len()))
    }

    /// A CSV record (may span lines inside quotes).
    fn next_csv_record(
        &self,
        relation: &str,
        last: bool,
    ) -> Result<Option<(usize, usize, usize)>, CopyError> {
        let (q, e) = (self.opts.quote, self.opts.escape);
        let b = &self.buf;
        let mut i = self.pos;
        let mut quoted = false;
        while i < b.len() {
            let c = b[i];
            if quoted {
                if c == e && e != q && i + 1 < b.len() && (b[i + 1] == q || b[i + 1] == e) {
                    i += 2;
                    continue;
                }
                if c == e && e != q && i + 1 == b.len() && !last {
                    return Ok(None);
                }
                if c == q {
                    if q == e && i + 1 < b.len() && b[i + 1] == q {
                        i += 2;
                        continue;
                    }
                    if q == e && i + 1 == b.len() && !last {
                        return Ok(None);
                    }
                    quoted = false;
                }
                i += 1;
                continue;
            }
            match c {
                c if c == q => quoted = true,
                b'\n' => return Ok(Some((self.pos, i, i + 1))),
                b'\r' => {
                    if i + 1 < b.len() {
                        let next = if b[i + 1] == b'\n' { i + 2 } else { i + 1 };
                        return Ok(Some((self.pos, i, next)));
                    }
                    if last {
                        return Ok(Some((self.pos, i, i + 1)));
                    }
                    return Ok(None);
                }
                _ => {}
            }
            i += 1;
        }
        if !last || self.pos >= b.len() {
            return Ok(None);
        }
        if quoted {
            return Err(self.bad(relation, "unterminated CSV quoted field"));
        }
        Ok(Some((self.pos, b.len(), b.len())))
    }

    /// Splits and unescapes a text-format line.
    fn text_fields(&self, raw: &[u8]) -> Vec<Field> {
        let d = self.opts.delimiter;
        let mut fields = Vec::new();
        let mut start = 0;
        let mut i = 0;
        loop {
            let at_end = i >= raw.len();
            if at_end || raw[i] == d {
                let f = &raw[start..i.min(raw.len())];
                fields.push(if f == self.opts.null.as_slice() {
                    None
                } else {
                    Some(unescape_text(f))
                });
                if at_end {
                    break;
                }
                i += 1;
                start = i;
                continue;
            }
            if raw[i] == b'\\' {
                i += 2;
            } else {
                i += 1;
            }
        }
        fields
    }

    /// Splits and unquotes a CSV record. NULL is an unquoted field equal to the NULL string
    /// (FORCE_NOT_NULL: never; FORCE_NULL: a quoted one too).
    fn csv_fields(&self, raw: &[u8], relation: &str) -> Result<Vec<Field>, CopyError> {
        let (d, q, e) = (self.opts.delimiter, self.opts.quote, self.opts.escape);
        let mut fields = Vec::new();
        let mut i = 0;
        loop {
            let mut value = Vec::new();
            let mut any_quoted = false;
            let mut unquoted_raw = Vec::new();
            let mut quoted = false;
            while i < raw.len() {
                let c = raw[i];
                if quoted {
                    if c == e
                        && i + 1 < raw.len()
                        && (raw[i + 1] == q || (e != q && raw[i + 1] == e))
                    {
                        value.push(raw[i + 1]);
                        i += 2;
                        continue;
                    }
                    if c == q {
                        quoted = false;
                        i += 1;
                        continue;
                    }
                    value.push(c);
                    i += 1;
                    continue;
                }
                if c == d {
                    break;
                }
                if c == q {
                    quoted = true;
                    any_quoted = true;
                    i += 1;
                    continue;
                }
                value.push(c);
                unquoted_raw.push(c);
                i += 1;
            }
            if quoted {
                return Err(self.bad(relation, "unterminated CSV quoted field"));
            }
            let name = self
                .names
                .get(fields.len())
                .map(String::as_str)
                .unwrap_or("");
            let is_null_text = value == self.opts.null;
            let null = if any_quoted {
                is_null_text && self.opts.force_null.contains(name)
            } else {
                is_null_text && !self.opts.force_not_null.contains(name)
            };
            fields.push(if null { None } else { Some(value) });
            if i >= raw.len() {
                break;
            }
            i += 1; // the delimiter
        }
        Ok(fields)
    }

    /// The next binary tuple.
    fn next_binary(&mut self, relation: &str, last: bool) -> Result<Option<Record>, CopyError> {
        let b = &self.buf[self.pos..];
        if self.binary_header_pending {
            if b.len() < 19 {
                if last {
                    return Err(self.bad(relation, "COPY file signature not recognized"));
                }
                return Ok(None);
            }
            if &b[..11] != BINARY_SIGNATURE {
                return Err(self.bad(relation, "COPY file signature not recognized"));
            }
            let flags = i32::from_be_bytes([b[11], b[12], b[13], b[14]]);
            if flags & (1 << 16) != 0 {
                return Err(self.bad(relation, "invalid COPY file header (WITH OIDS)"));
            }
            if flags & !0xffff & !(1 << 16) != 0 {
                return Err(self.bad(relation, "unrecognized critical flags in COPY file header"));
            }
            let ext = i32::from_be_bytes([b[15], b[16], b[17], b[18]]);
            let Ok(ext) = usize::try_from(ext) else {
                return Err(self.bad(relation, "invalid COPY file header (wrong length)"));
            };
            if b.len() < 19 + ext {
                if last {
                    return Err(self.bad(relation, "invalid COPY file header (wrong length)"));
                }
                return Ok(None);
            }
            self.pos += 19 + ext;
            self.binary_header_pending = false;
            return self.next_binary(relation, last);
        }
        if b.len() < 2 {
            if last && !b.is_empty() {
                return Err(self.bad(relation, "unexpected EOF in COPY data"));
            }
            return Ok(None);
        }
        let count = i16::from_be_bytes([b[0], b[1]]);
        if count == -1 {
            self.pos += 2;
            self.ended = true;
            return Ok(Some(Record::End));
        }
        if count < 0 {
            return Err(self.bad(
                relation,
                format!("row field count is {count}, expected {}", self.names.len()),
            ));
        }
        let mut at = 2;
        let mut fields = Vec::with_capacity(count as usize);
        for _ in 0..count {
            if b.len() < at + 4 {
                return self.binary_short(relation, last);
            }
            let len = i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            at += 4;
            if len == -1 {
                fields.push(None);
                continue;
            }
            let Ok(len) = usize::try_from(len) else {
                return Err(self.bad(relation, "invalid field size"));
            };
            if len > MAX_RECORD_BYTES {
                return Err(self.bad(relation, "COPY record too large"));
            }
            if b.len() < at + len {
                return self.binary_short(relation, last);
            }
            fields.push(Some(b[at..at + len].to_vec()));
            at += len;
        }
        self.pos += at;
        Ok(Some(Record::Row(fields)))
    }

    fn binary_short(&self, relation: &str, last: bool) -> Result<Option<Record>, CopyError> {
        if last {
            Err(self.bad(relation, "unexpected EOF in COPY data"))
        } else {
            Ok(None)
        }
    }

    /// After CopyDone: binary data must at least have had its header (PostgreSQL accepts the end
    /// of the data in place of the trailer; text after `\.` is ignored).
    pub fn check_finished(&self, relation: &str) -> Result<(), CopyError> {
        if self.binary_header_pending {
            return Err(self.bad(relation, "COPY file signature not recognized"));
        }
        Ok(())
    }
}

/// PostgreSQL's text-format de-escaping: `\b \f \n \r \t \v`, `\ooo` (octal), `\xhh` (hex), any
/// other escaped character stands for itself.
fn unescape_text(f: &[u8]) -> Vec<u8> {
    if !f.contains(&b'\\') {
        return f.to_vec();
    }
    let mut out = Vec::with_capacity(f.len());
    let mut i = 0;
    while i < f.len() {
        let c = f[i];
        if c != b'\\' || i + 1 >= f.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let n = f[i + 1];
        i += 2;
        match n {
            b'0'..=b'7' => {
                let mut v = u32::from(n - b'0');
                for _ in 0..2 {
                    match f.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' if f.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match f.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(v as u8);
            }
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            other => out.push(other),
        }
    }
    out
}

/// Checks a record's width against the columns loaded (PostgreSQL's messages).
pub fn check_width(
    fields: &[Field],
    names: &[String],
    relation: &str,
    line: u64,
) -> Result<(), CopyError> {
    if fields.len() > names.len() {
        return Err(CopyError::BadData {
            message: "extra data after last expected column".into(),
            context: format!("COPY {relation}, line {line}"),
        });
    }
    if fields.len() < names.len() {
        let missing = &names[fields.len()];
        return Err(CopyError::BadData {
            message: format!("missing data for column \"{missing}\""),
            context: format!("COPY {relation}, line {line}"),
        });
    }
    Ok(())
}

/// A field converted to its column's type, or PostgreSQL's error with the COPY context.
pub fn field_value(
    ty: PgType,
    binary: bool,
    field: Option<&[u8]>,
    relation: &str,
    line: u64,
    column: &str,
) -> Result<Value, CopyError> {
    let ty = if ty == PgType::Unknown {
        PgType::Text
    } else {
        ty
    };
    super::types::decode_param(ty, binary as i16, field).map_err(|e| {
        let shown = match (binary, field) {
            (false, Some(f)) => format!(": \"{}\"", String::from_utf8_lossy(f)),
            _ => String::new(),
        };
        let context = format!("COPY {relation}, line {line}, column {column}{shown}");
        let code = e.sqlstate().to_string();
        let code = if binary && code == "22P02" {
            "22P03".to_string()
        } else {
            code
        };
        CopyError::Value {
            code,
            message: e.to_string(),
            context,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Output

/// Writes rows as PostgreSQL's COPY TO does.
pub struct Encoder {
    opts: CopyOptions,
    columns: Vec<Column>,
    quote_all: Vec<bool>,
    scratch: BytesMut,
}

impl Encoder {
    pub fn new(opts: CopyOptions, columns: Vec<Column>) -> Self {
        let quote_all = columns
            .iter()
            .map(|c| opts.force_quote.contains(&c.name))
            .collect();
        Encoder {
            opts,
            columns,
            quote_all,
            scratch: BytesMut::new(),
        }
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// What precedes the rows: the binary header, or the header line.
    pub fn header(&mut self, out: &mut Vec<u8>) {
        match self.opts.format {
            Format::Binary => {
                out.extend_from_slice(BINARY_SIGNATURE);
                out.extend_from_slice(&0i32.to_be_bytes());
                out.extend_from_slice(&0i32.to_be_bytes());
            }
            _ if self.opts.header != Header::Absent => {
                let names: Vec<Vec<u8>> = self
                    .columns
                    .iter()
                    .map(|c| c.name.as_bytes().to_vec())
                    .collect();
                for (i, n) in names.iter().enumerate() {
                    if i > 0 {
                        out.push(self.opts.delimiter);
                    }
                    match self.opts.format {
                        Format::Csv => self.csv_field(n, false, out),
                        _ => self.text_field(n, out),
                    }
                }
                out.push(b'\n');
            }
            _ => {}
        }
    }

    /// What follows the rows (the binary trailer).
    pub fn trailer(&self, out: &mut Vec<u8>) {
        if self.opts.format == Format::Binary {
            out.extend_from_slice(&(-1i16).to_be_bytes());
        }
    }

    /// One row.
    pub fn row(&mut self, row: &[Value], out: &mut Vec<u8>) -> Result<(), ProxyError> {
        let binary = self.opts.format == Format::Binary;
        if binary {
            out.extend_from_slice(&(row.len() as i16).to_be_bytes());
        }
        for (i, v) in row.iter().enumerate() {
            let Some(col) = self.columns.get(i) else {
                break;
            };
            let ty = if col.ty == PgType::Unknown {
                PgType::of_value(v)
            } else {
                col.ty
            };
            self.scratch.clear();
            encode_typmod(ty, col.typmod, v, binary, &mut self.scratch)?;
            if binary {
                out.extend_from_slice(&self.scratch);
                continue;
            }
            if i > 0 {
                out.push(self.opts.delimiter);
            }
            let len = i32::from_be_bytes([
                self.scratch[0],
                self.scratch[1],
                self.scratch[2],
                self.scratch[3],
            ]);
            if len < 0 {
                out.extend_from_slice(&self.opts.null);
                continue;
            }
            let body = self.scratch[4..].to_vec();
            match self.opts.format {
                Format::Csv => {
                    let force = self.quote_all.get(i).copied().unwrap_or(false);
                    let lone = row.len() == 1 && body == b"\\.";
                    self.csv_field(&body, force || lone, out)
                }
                _ => self.text_field(&body, out),
            }
        }
        if !binary {
            out.push(b'\n');
        }
        Ok(())
    }

    /// PostgreSQL's CopyAttributeOutText.
    fn text_field(&self, s: &[u8], out: &mut Vec<u8>) {
        let d = self.opts.delimiter;
        for &c in s {
            match c {
                8 => out.extend_from_slice(b"\\b"),
                12 => out.extend_from_slice(b"\\f"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                11 => out.extend_from_slice(b"\\v"),
                b'\\' => out.extend_from_slice(b"\\\\"),
                c if c == d => {
                    out.push(b'\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
    }

    /// PostgreSQL's CopyAttributeOutCSV.
    fn csv_field(&self, s: &[u8], force: bool, out: &mut Vec<u8>) {
        let (d, q, e) = (self.opts.delimiter, self.opts.quote, self.opts.escape);
        let needs = force
            || s == self.opts.null.as_slice()
            || s.iter()
                .any(|&c| c == d || c == q || c == b'\n' || c == b'\r');
        if !needs {
            out.extend_from_slice(s);
            return;
        }
        out.push(q);
        for &c in s {
            if c == q || c == e {
                out.push(e);
            }
            out.push(c);
        }
        out.push(q);
    }
}

/// CopyInResponse ('G') / CopyOutResponse ('H'): the overall format and each column's.
pub fn response(out: &mut BytesMut, tag: u8, format: Format, columns: usize) {
    out.put_u8(tag);
    out.put_i32(4 + 1 + 2 + 2 * columns as i32);
    out.put_u8(format.code());
    out.put_i16(columns as i16);
    for _ in 0..columns {
        out.put_i16(i16::from(format.code()));
    }
}

/// One CopyData message.
pub fn copy_data(out: &mut BytesMut, data: &[u8]) {
    out.put_u8(b'd');
    out.put_i32(4 + data.len() as i32);
    out.put_slice(data);
}

/// CopyDone.
pub fn copy_done(out: &mut BytesMut) {
    out.put_u8(b'c');
    out.put_i32(4);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(sql: &str) -> CopyStmt {
        parse(sql, "b").expect("a COPY").expect("valid")
    }

    fn rows(sql: &str, chunks: &[&[u8]]) -> Result<Vec<Vec<Field>>, CopyError> {
        let s = stmt(sql);
        let names: Vec<String> = (0..3).map(|i| format!("c{i}")).collect();
        let mut d = Decoder::new(s.options, names);
        let mut out = vec![];
        for (i, c) in chunks.iter().enumerate() {
            d.push(c);
            let last = i + 1 == chunks.len();
            while let Some(r) = d.next("t", last)? {
                match r {
                    Record::Row(f) => {
                        out.push(f);
                        d.row_done();
                    }
                    Record::End => return Ok(out),
                }
            }
        }
        Ok(out)
    }

    fn s(v: &str) -> Field {
        Some(v.as_bytes().to_vec())
    }

    #[test]
    fn statements_and_options() {
        let c = stmt("COPY s.t (a, \"B\") FROM STDIN WITH (FORMAT csv, HEADER, DELIMITER ';')");
        assert_eq!(c.columns, ["a", "B"]);
        assert_eq!(c.table_sql().as_deref(), Some("\"s\".\"t\""));
        assert_eq!(c.options.format, Format::Csv);
        assert_eq!(c.options.delimiter, b';');
        assert_eq!(c.options.header, Header::Present);
        assert_eq!(c.options.null, b"");
        let c = stmt("COPY t TO STDOUT");
        assert_eq!(
            (c.direction, c.options.format),
            (Direction::ToStdout, Format::Text)
        );
        assert_eq!(c.options.null, b"\\N");
        let c = stmt("COPY (SELECT a FROM t WHERE a > 1) TO STDOUT (FORMAT binary)");
        assert!(matches!(c.source, Source::Query(ref q) if q.contains("a > 1")));
        // the old syntax
        let c = stmt("COPY t FROM STDIN CSV HEADER QUOTE '''' FORCE NOT NULL a");
        assert_eq!(c.options.quote, b'\'');
        assert_eq!(c.options.force_not_null, ColumnSet::Named(vec!["a".into()]));
        assert!(matches!(
            parse("COPY t FROM '/etc/passwd'", "b"),
            Some(Err(CopyError::FileNotSupported { .. }))
        ));
        assert!(matches!(
            parse("COPY t FROM STDIN (FORMAT text, QUOTE 'x')", "b"),
            Some(Err(CopyError::Option(_)))
        ));
        assert!(parse("SELECT 1", "b").is_none());
    }

    #[test]
    fn text_format() {
        let r = rows(
            "COPY t FROM STDIN",
            &[b"1\ta\\tb\t\\N\n2\t\\\\x\\101\\x41\t", b"\\N\r\n3\tlast\tz"],
        )
        .unwrap();
        assert_eq!(
            r,
            [
                vec![s("1"), s("a\tb"), None],
                vec![s("2"), s("\\xAA"), None],
                vec![s("3"), s("last"), s("z")],
            ]
        );
        let r = rows("COPY t FROM STDIN", &[b"1\n\\.\nignored\n"]).unwrap();
        assert_eq!(r, [vec![s("1")]]);
        // PostgreSQL ends the data at `\.` then a newline, even after a field
        let r = rows("COPY t FROM STDIN", &[b"1\tz\\.\nignored\n"]).unwrap();
        assert_eq!(r, [vec![s("1"), s("z")]]);
        // an escaped newline belongs to the field
        let r = rows(
            "COPY t FROM STDIN (NULL 'nil', DELIMITER '|')",
            &[b"a\\\nb|nil|\\N\n"],
        )
        .unwrap();
        assert_eq!(r, [vec![s("a\nb"), None, s("N")]]);
    }

    #[test]
    fn csv_format() {
        let r = rows(
            "COPY t FROM STDIN (FORMAT csv, HEADER true)",
            &[b"a,b,c\n1,\"x,\"\"y\"\"\",\n2,\"\",\"multi", b"\nline\"\n"],
        )
        .unwrap();
        assert_eq!(
            r,
            [
                vec![s("1"), s("x,\"y\""), None],
                vec![s("2"), s(""), s("multi\nline")],
            ]
        );
        let r = rows(
            "COPY t FROM STDIN (FORMAT csv, ESCAPE '\\', FORCE_NOT_NULL (c0), FORCE_NULL (c1))",
            &[b",\"\",\"a\\\"b\"\n"],
        )
        .unwrap();
        assert_eq!(r, [vec![s(""), None, s("a\"b")]]);
        assert!(rows("COPY t FROM STDIN (FORMAT csv)", &[b"\"open\n"]).is_err());
    }

    #[test]
    fn binary_format() {
        let mut data = BINARY_SIGNATURE.to_vec();
        data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        data.extend_from_slice(&[0, 2, 0, 0, 0, 4, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff]);
        data.extend_from_slice(&[0xff, 0xff]);
        // cut in the middle of a field
        let r = rows(
            "COPY t FROM STDIN (FORMAT binary)",
            &[&data[..25], &data[25..]],
        )
        .unwrap();
        assert_eq!(r, [vec![Some(vec![0, 0, 0, 7]), None]]);
        assert!(rows(
            "COPY t FROM STDIN (FORMAT binary)",
            &[b"PGCOPY\nnope-nope-nope"]
        )
        .is_err());
    }

    #[test]
    fn output_escapes() {
        let cols = vec![
            Column::new("a", PgType::Text),
            Column::new("b", PgType::Int4),
        ];
        let mut e = Encoder::new(stmt("COPY t TO STDOUT").options, cols.clone());
        let mut out = vec![];
        e.row(&[Value::Text("x\ty\\z\n".into()), Value::Null], &mut out)
            .unwrap();
        assert_eq!(out, b"x\\ty\\\\z\\n\t\\N\n");
        let mut e = Encoder::new(stmt("COPY t TO STDOUT (FORMAT csv, HEADER)").options, cols);
        let mut out = vec![];
        e.header(&mut out);
        e.row(&[Value::Text("a,\"b\"".into()), Value::Int(3)], &mut out)
            .unwrap();
        e.row(&[Value::Text(String::new()), Value::Null], &mut out)
            .unwrap();
        assert_eq!(out, b"a,b\n\"a,\"\"b\"\"\",3\n\"\",\n");
    }
}
