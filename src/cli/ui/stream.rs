//! Streaming a response that blocking code writes: a `Write` that hands 64 KiB pieces to
//! the response body through a bounded channel, so a large download is never held in
//! memory and a client that stops reading stops the writer.

use axum::body::{Body, Bytes};
use std::io::{self, Write};
use tokio::sync::mpsc;

const PIECE: usize = 64 << 10;

pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    /// Reports an error to the client by breaking the body (the download ends short and
    /// the browser marks it failed rather than keeping a truncated file as complete).
    pub fn fail(self, e: impl std::fmt::Display) {
        let _ = self.tx.blocking_send(Err(io::Error::other(e.to_string())));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= PIECE {
            self.flush()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Ok(piece)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

/// Runs `produce` on the blocking pool and streams what it writes.
pub fn body(produce: impl FnOnce(&mut ChannelWriter) -> anyhow::Result<()> + Send + 'static) -> Body {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter { tx, buf: Vec::with_capacity(PIECE) };
        match produce(&mut w).and_then(|_| Ok(w.flush()?)) {
            Ok(()) => {}
            Err(e) => w.fail(format!("{e:#}")),
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Body::from_stream(stream)
}
