//! Message framing: one tag byte, a big-endian length that counts itself, then the body.
//!
//! [`FrameReader`] reads from any `AsyncRead` into one growing buffer and hands out whole messages as
//! cheap [`Bytes`] slices of it. Reading is cancel-safe (`fill` may be used in `select!`), so a session
//! can wait on its client and a backend at once without losing bytes.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// One whole protocol message, header included, exactly as it came off the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    raw: Bytes,
}

impl Frame {
    /// Wraps bytes that already hold one complete message (tag, length, body).
    pub fn from_raw(raw: Bytes) -> Frame {
        Frame { raw }
    }

    /// Builds a frame from a tag and a body.
    pub fn new(tag: u8, body: &[u8]) -> Frame {
        let mut raw = BytesMut::with_capacity(body.len() + 5);
        raw.extend_from_slice(&[tag]);
        raw.extend_from_slice(&((body.len() as u32 + 4).to_be_bytes()));
        raw.extend_from_slice(body);
        Frame { raw: raw.freeze() }
    }

    pub fn tag(&self) -> u8 {
        self.raw[0]
    }

    /// The message body, without tag and length.
    pub fn body(&self) -> &[u8] {
        &self.raw[5..]
    }

    /// The whole message, header included: what is relayed.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("message length {len} is invalid (must be between 4 and {max} bytes)")]
    BadLength { len: u32, max: usize },
    #[error("connection closed in the middle of a message")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The messages of a buffer bindproxy wrote itself (answers of a MySQL/SQLite bind): tag and
/// whole message, in order. Stops at a truncated tail.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let len = u32::from_be_bytes(rest.get(1..5)?.try_into().ok()?) as usize;
        let whole = rest.get(..1 + len)?;
        rest = &rest[1 + len..];
        Some((whole[0], whole))
    })
}

/// Reads whole messages from one side of a connection.
pub struct FrameReader<R> {
    io: R,
    buf: BytesMut,
    max_len: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// `max_len` bounds one message: a peer announcing more is refused before anything is buffered.
    pub fn new(io: R, buf: BytesMut, max_len: usize) -> Self {
        FrameReader { io, buf, max_len }
    }

    /// The next message already buffered, if a whole one is there. Never reads from the socket.
    pub fn try_next(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
        if len < 4 || len as usize > self.max_len {
            return Err(FrameError::BadLength {
                len,
                max: self.max_len,
            });
        }
        let total = len as usize + 1;
        if self.buf.len() < total {
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        Ok(Some(Frame {
            raw: self.buf.split_to(total).freeze(),
        }))
    }

    /// Bytes read from the peer and not yet handed out as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The total size (header included) of the first buffered message, once its header is in.
    pub fn next_frame_size(&self) -> Option<usize> {
        let header = self.buf.get(1..5)?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        Some(len as usize + 1)
    }

    /// True when no complete message is buffered (the peer has nothing more for us right now).
    pub fn has_buffered_frame(&self) -> bool {
        if self.buf.len() < 5 {
            return false;
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        self.buf.len() > len
    }

    /// Reads more bytes from the socket. Cancel-safe. `Ok(0)` means the peer closed.
    pub async fn fill(&mut self) -> Result<usize, FrameError> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8192);
        }
        let n = self.io.read_buf(&mut self.buf).await?;
        if n == 0 && !self.buf.is_empty() {
            return Err(FrameError::Truncated);
        }
        Ok(n)
    }

    /// The next message, reading as needed. `Ok(None)` at a clean end of stream.
    pub async fn next(&mut self) -> Result<Option<Frame>, FrameError> {
        loop {
            if let Some(frame) = self.try_next()? {
                return Ok(Some(frame));
            }
            if self.fill().await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Drops `n` buffered bytes (used after a failed peek during startup).
    pub fn advance(&mut self, n: usize) {
        self.buf.advance(n.min(self.buf.len()));
    }

    pub fn get_ref(&self) -> &R {
        &self.io
    }

    /// Polls for more bytes; the poll form of [`FrameReader::fill`], for waiting on many readers at once.
    pub fn poll_fill(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<usize, FrameError>> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8192);
        }
        match tokio_util::io::poll_read_buf(std::pin::Pin::new(&mut self.io), cx, &mut self.buf) {
            std::task::Poll::Ready(Ok(0)) if !self.buf.is_empty() => {
                std::task::Poll::Ready(Err(FrameError::Truncated))
            }
            std::task::Poll::Ready(r) => std::task::Poll::Ready(r.map_err(FrameError::from)),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn splits_messages_and_rejects_bad_lengths() {
        let mut bytes = Frame::new(b'Q', b"select 1\0").raw().to_vec();
        bytes.extend_from_slice(Frame::new(b'S', b"").raw());
        bytes.extend_from_slice(&[b'Q', 0x7f, 0xff, 0xff, 0xff]);
        let mut r = FrameReader::new(&bytes[..], BytesMut::new(), 1 << 20);
        assert_eq!(r.next().await.unwrap().unwrap().body(), b"select 1\0");
        assert_eq!(r.next().await.unwrap().unwrap().tag(), b'S');
        assert!(matches!(r.next().await, Err(FrameError::BadLength { .. })));
    }

    #[tokio::test]
    async fn truncated_message_is_an_error() {
        let frame = Frame::new(b'Q', b"select 1\0");
        let mut r = FrameReader::new(&frame.raw()[..7], BytesMut::new(), 1 << 20);
        assert!(matches!(r.next().await, Err(FrameError::Truncated)));
    }
}
