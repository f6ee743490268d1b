//! Connections over real TCP: every `Wire` is a frame (see `frame`), a batch one write.

use super::Wire;
use crate::runtime::frame::{encode_into, FrameDecoder};
use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Bytes read from a socket at a time.
const READ_BUFFER: usize = 16 * 1024;

pub struct Listener(TcpListener);

impl Listener {
    pub async fn bind(addr: SocketAddr) -> io::Result<Listener> {
        TcpListener::bind(addr).await.map(Listener)
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    pub async fn accept(&self) -> io::Result<(Reader, Writer)> {
        let (stream, _) = self.0.accept().await?;
        Ok(halves(stream))
    }
}

pub async fn connect(addr: SocketAddr) -> io::Result<(Reader, Writer)> {
    TcpStream::connect(addr).await.map(halves)
}

fn halves(stream: TcpStream) -> (Reader, Writer) {
    no_delay(&stream);
    let (read_half, write_half) = tokio::io::split(stream);
    let reader = Reader {
        read_half,
        decoder: FrameDecoder::new(),
        buf: vec![0u8; READ_BUFFER],
    };
    (
        reader,
        Writer {
            write_half,
            buf: Vec::new(),
        },
    )
}

/// Turns off Nagle's algorithm: a peer with several requests in flight (a pipelining producer)
/// writes small frames back to back, and with Nagle each waits for the acknowledgement of the
/// one before — tens of milliseconds with delayed acknowledgements, which made five requests in
/// flight a quarter as fast as one.
fn no_delay(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY not set: {e}");
    }
}

pub struct Reader {
    read_half: ReadHalf<TcpStream>,
    decoder: FrameDecoder,
    buf: Vec<u8>,
}

impl Reader {
    /// The next value; `Ok(None)` once the connection has ended, an error if it carried
    /// something malformed (frame boundaries are then lost: close it).
    pub async fn next(&mut self) -> io::Result<Option<Wire>> {
        loop {
            match self.decoder.next_frame::<Wire>() {
                Ok(Some(wire)) => return Ok(Some(wire)),
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            match self.read_half.read(&mut self.buf).await {
                Ok(0) | Err(_) => return Ok(None),
                Ok(n) => self.decoder.push(&self.buf[..n]),
            }
        }
    }
}

/// A write buffer larger than this (a rare huge batch) is let go after its write.
const MAX_KEPT_BUFFER: usize = 8 << 20;

pub struct Writer {
    write_half: WriteHalf<TcpStream>,
    /// Kept between batches: a batch of fetch answers runs to a megabyte, and a buffer grown
    /// from empty for each copied it over and over as it doubled (the largest share of a
    /// leader's `memcpy` in a profile of the Kafka benchmark).
    buf: Vec<u8>,
}

impl Writer {
    /// Writes a batch in one write.
    pub async fn send(&mut self, batch: Vec<Wire>) -> io::Result<()> {
        self.buf.clear();
        for wire in &batch {
            encode_into(wire, &mut self.buf);
        }
        self.write_half.write_all(&self.buf).await?;
        if self.buf.capacity() > MAX_KEPT_BUFFER {
            self.buf = Vec::new();
        }
        self.write_half.flush().await
    }
}
