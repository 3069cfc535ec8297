//! Decoders for the frontend messages the session routes by, and encoders for the backend messages
//! bindproxy writes itself.
//!
//! Decoding borrows from the frame: no copies of query text or parameter values. Encoders append to
//! the caller's output buffer so that many messages leave in one write.

use bytes::{BufMut, BytesMut};

/// A frontend message that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed {what} message")]
pub struct Malformed {
    pub what: &'static str,
}

/// A cursor over a message body.
struct Cursor<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Cursor { buf, what }
    }
    fn err(&self) -> Malformed {
        Malformed { what: self.what }
    }
    fn cstr(&mut self) -> Result<&'a str, Malformed> {
        let end = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or(Malformed { what: self.what })?;
        let s = std::str::from_utf8(&self.buf[..end]).map_err(|_| self.err())?;
        self.buf = &self.buf[end + 1..];
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, Malformed> {
        let (&b, rest) = self
            .buf
            .split_first()
            .ok_or(Malformed { what: self.what })?;
        self.buf = rest;
        Ok(b)
    }
    fn i16(&mut self) -> Result<i16, Malformed> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, Malformed> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.buf.len() < n {
            return Err(self.err());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn count(&mut self) -> Result<usize, Malformed> {
        usize::try_from(self.i16()?).map_err(|_| self.err())
    }
}

/// Parse ('P'): create a prepared statement.
#[derive(Debug)]
pub struct Parse<'a> {
    pub name: &'a str,
    pub query: &'a str,
    pub param_types: Vec<u32>,
}

impl<'a> Parse<'a> {
    pub fn decode(body: &'a [u8]) -> Result<Self, Malformed> {
        let mut c = Cursor::new(body, "Parse");
        let name = c.cstr()?;
        let query = c.cstr()?;
        let n = c.count()?;
        let mut param_types = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            param_types.push(c.i32()? as u32);
        }
        Ok(Parse {
            name,
            query,
            param_types,
        })
    }
}

/// Bind ('B'): create a portal from a statement and parameter values.
#[derive(Debug)]
pub struct Bind<'a> {
    pub portal: &'a str,
    pub statement: &'a str,
    /// 0 = text, 1 = binary; empty = all text; one entry = applies to all.
    pub param_formats: Vec<i16>,
    pub params: Vec<Option<&'a [u8]>>,
    pub result_formats: Vec<i16>,
}

impl<'a> Bind<'a> {
    pub fn decode(body: &'a [u8]) -> Result<Self, Malformed> {
        let mut c = Cursor::new(body, "Bind");
        let portal = c.cstr()?;
        let statement = c.cstr()?;
        let n = c.count()?;
        let mut param_formats = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            param_formats.push(c.i16()?);
        }
        let n = c.count()?;
        let mut params = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let len = c.i32()?;
            params.push(if len < 0 {
                None
            } else {
                Some(c.take(len as usize)?)
            });
        }
        let n = c.count()?;
        let mut result_formats = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            result_formats.push(c.i16()?);
        }
        Ok(Bind {
            portal,
            statement,
            param_formats,
            params,
            result_formats,
        })
    }

    /// Just the portal and statement names, without decoding the values (the relay path).
    pub fn names(body: &'a [u8]) -> Result<(&'a str, &'a str), Malformed> {
        let mut c = Cursor::new(body, "Bind");
        Ok((c.cstr()?, c.cstr()?))
    }
}

/// The format (0 text, 1 binary) that a format-code list gives to item `i`.
pub fn format_of(formats: &[i16], i: usize) -> i16 {
    match formats.len() {
        0 => 0,
        1 => formats[0],
        _ => formats.get(i).copied().unwrap_or(0),
    }
}

/// Describe ('D') or Close ('C'): a kind byte ('S' statement, 'P' portal) and a name.
#[derive(Debug)]
pub struct Target<'a> {
    pub kind: u8,
    pub name: &'a str,
}

impl<'a> Target<'a> {
    pub fn decode(body: &'a [u8], what: &'static str) -> Result<Self, Malformed> {
        let mut c = Cursor::new(body, what);
        let kind = c.u8()?;
        if kind != b'S' && kind != b'P' {
            return Err(c.err());
        }
        Ok(Target {
            kind,
            name: c.cstr()?,
        })
    }
}

/// Execute ('E'): run a portal, `max_rows` 0 = all.
#[derive(Debug)]
pub struct Execute<'a> {
    pub portal: &'a str,
    pub max_rows: i32,
}

impl<'a> Execute<'a> {
    pub fn decode(body: &'a [u8]) -> Result<Self, Malformed> {
        let mut c = Cursor::new(body, "Execute");
        Ok(Execute {
            portal: c.cstr()?,
            max_rows: c.i32()?,
        })
    }
}

/// Query ('Q'): the text of a simple query.
pub fn decode_query(body: &[u8]) -> Result<&str, Malformed> {
    Cursor::new(body, "Query").cstr()
}

// ---------------------------------------------------------------------------------------------
// Encoders

/// Starts a message: writes the tag and a length placeholder; returns the length's position.
fn begin(out: &mut BytesMut, tag: u8) -> usize {
    out.put_u8(tag);
    let at = out.len();
    out.put_u32(0);
    at
}

/// Fills in the length of the message started at `at`.
fn finish(out: &mut BytesMut, at: usize) {
    let len = (out.len() - at) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_cstr(out: &mut BytesMut, s: &str) {
    out.put_slice(s.as_bytes());
    out.put_u8(0);
}

/// The fields of an ErrorResponse or NoticeResponse.
#[derive(Debug, Clone)]
pub struct ErrorFields<'a> {
    pub severity: &'a str,
    pub code: &'a str,
    pub message: &'a str,
    pub detail: Option<&'a str>,
    pub hint: Option<&'a str>,
}

fn put_error_fields(out: &mut BytesMut, tag: u8, f: &ErrorFields<'_>) {
    let at = begin(out, tag);
    out.put_u8(b'S');
    put_cstr(out, f.severity);
    out.put_u8(b'V');
    put_cstr(out, f.severity);
    out.put_u8(b'C');
    put_cstr(out, f.code);
    out.put_u8(b'M');
    put_cstr(out, f.message);
    if let Some(d) = f.detail {
        out.put_u8(b'D');
        put_cstr(out, d);
    }
    if let Some(h) = f.hint {
        out.put_u8(b'H');
        put_cstr(out, h);
    }
    out.put_u8(0);
    finish(out, at);
}

pub fn error_response(out: &mut BytesMut, f: &ErrorFields<'_>) {
    put_error_fields(out, b'E', f)
}

pub fn notice_response(out: &mut BytesMut, f: &ErrorFields<'_>) {
    put_error_fields(out, b'N', f)
}

/// Reads the SQLSTATE ('C') and severity ('V' or 'S') fields of an ErrorResponse/NoticeResponse body.
pub fn error_code_and_severity(body: &[u8]) -> (Option<&str>, Option<&str>) {
    let (mut code, mut severity) = (None, None);
    let mut c = Cursor::new(body, "ErrorResponse");
    while let Ok(field) = c.u8() {
        if field == 0 {
            break;
        }
        let Ok(value) = c.cstr() else { break };
        match field {
            b'C' => code = Some(value),
            b'V' => severity = Some(value),
            b'S' if severity.is_none() => severity = Some(value),
            _ => {}
        }
    }
    (code, severity)
}

/// The fields of an ErrorResponse a client acts on: SQLSTATE, message, detail.
pub fn error_fields(body: &[u8]) -> (String, String, Option<String>) {
    let (mut code, mut message, mut detail) = (String::from("XX000"), String::new(), None);
    let mut c = Cursor::new(body, "ErrorResponse");
    while let Ok(field) = c.u8() {
        if field == 0 {
            break;
        }
        let Ok(value) = c.cstr() else { break };
        match field {
            b'C' => code = value.to_owned(),
            b'M' => message = value.to_owned(),
            b'D' => detail = Some(value.to_owned()),
            _ => {}
        }
    }
    (code, message, detail)
}

pub fn ready_for_query(out: &mut BytesMut, status: u8) {
    out.put_slice(&[b'Z', 0, 0, 0, 5, status]);
}

pub fn command_complete(out: &mut BytesMut, tag: &str) {
    let at = begin(out, b'C');
    put_cstr(out, tag);
    finish(out, at);
}

/// A message with an empty body: ParseComplete '1', BindComplete '2', CloseComplete '3',
/// NoData 'n', EmptyQueryResponse 'I', PortalSuspended 's'.
pub fn empty(out: &mut BytesMut, tag: u8) {
    out.put_slice(&[tag, 0, 0, 0, 4]);
}

pub fn parameter_status(out: &mut BytesMut, name: &str, value: &str) {
    let at = begin(out, b'S');
    put_cstr(out, name);
    put_cstr(out, value);
    finish(out, at);
}

pub fn backend_key_data(out: &mut BytesMut, pid: i32, secret: i32) {
    out.put_u8(b'K');
    out.put_u32(12);
    out.put_i32(pid);
    out.put_i32(secret);
}

pub fn parameter_description(out: &mut BytesMut, oids: &[u32]) {
    let at = begin(out, b't');
    out.put_i16(oids.len() as i16);
    for oid in oids {
        out.put_u32(*oid);
    }
    finish(out, at);
}

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    pub name: String,
    pub table_oid: u32,
    pub column: i16,
    pub type_oid: u32,
    pub type_size: i16,
    pub type_modifier: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

pub fn row_description(out: &mut BytesMut, fields: &[FieldDescription]) {
    let at = begin(out, b'T');
    out.put_i16(fields.len() as i16);
    for f in fields {
        put_cstr(out, &f.name);
        out.put_u32(f.table_oid);
        out.put_i16(f.column);
        out.put_u32(f.type_oid);
        out.put_i16(f.type_size);
        out.put_i32(f.type_modifier);
        out.put_i16(f.format);
    }
    finish(out, at);
}

/// Starts a DataRow of `columns` values; append each with [`data_row_value`], then [`data_row_end`].
pub fn data_row_begin(out: &mut BytesMut, columns: usize) -> usize {
    let at = begin(out, b'D');
    out.put_i16(columns as i16);
    at
}

/// One value of a DataRow; `None` is SQL NULL.
pub fn data_row_value(out: &mut BytesMut, value: Option<&[u8]>) {
    match value {
        None => out.put_i32(-1),
        Some(v) => {
            out.put_i32(v.len() as i32);
            out.put_slice(v);
        }
    }
}

pub fn data_row_end(out: &mut BytesMut, at: usize) {
    finish(out, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Frame;

    #[test]
    fn bind_round_trip() {
        let mut body = BytesMut::new();
        put_cstr(&mut body, "p1");
        put_cstr(&mut body, "s1");
        body.put_i16(1);
        body.put_i16(1);
        body.put_i16(2);
        body.put_i32(3);
        body.put_slice(b"abc");
        body.put_i32(-1);
        body.put_i16(0);
        let b = Bind::decode(&body).unwrap();
        assert_eq!((b.portal, b.statement), ("p1", "s1"));
        assert_eq!(b.params, vec![Some(&b"abc"[..]), None]);
        assert_eq!(format_of(&b.param_formats, 1), 1);
    }

    #[test]
    fn truncated_bind_is_malformed() {
        let mut body = BytesMut::new();
        put_cstr(&mut body, "");
        put_cstr(&mut body, "");
        body.put_i16(0);
        body.put_i16(1);
        body.put_i32(100);
        assert!(Bind::decode(&body).is_err());
    }

    #[test]
    fn error_fields_round_trip() {
        let mut out = BytesMut::new();
        error_response(
            &mut out,
            &ErrorFields {
                severity: "ERROR",
                code: "0A000",
                message: "m",
                detail: None,
                hint: None,
            },
        );
        let f = Frame::from_raw(out.freeze());
        assert_eq!(f.tag(), b'E');
        assert_eq!(
            error_code_and_severity(f.body()),
            (Some("0A000"), Some("ERROR"))
        );
    }
}
