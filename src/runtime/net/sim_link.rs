//! Connections under madsim without encoding: the simulator's connection is a reliable ordered
//! channel of `Box<dyn Any>` payloads, and its TCP stream is that channel carrying bytes. Here a
//! flushed batch travels as the `Vec<Wire>` itself, one payload a batch as the bytes were, so a
//! run draws the same random numbers at the same moments and its trace is the one the framed
//! transport made (the same trace hashes; `sims/tests/trace_snapshot.rs` pins some).
//!
//! What keeps it identical: madsim's TCP connect waits one random delay more than its endpoint
//! connect does (`wait_like_tcp_connect`), and a TCP stream's two directions close together, when
//! both of its halves are gone (`Shared`).

use super::Wire;
use crate::runtime::lock;
use madsim::net::{Endpoint, Receiver, Sender};
use madsim::rand::{thread_rng, Rng};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Listener(Endpoint);

impl Listener {
    pub async fn bind(addr: SocketAddr) -> io::Result<Listener> {
        Endpoint::bind(addr).await.map(Listener)
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    pub async fn accept(&self) -> io::Result<(Reader, Writer)> {
        let (tx, rx, _) = self.0.accept1().await?;
        Ok(halves(tx, rx))
    }
}

pub async fn connect(addr: SocketAddr) -> io::Result<(Reader, Writer)> {
    wait_like_tcp_connect().await;
    let endpoint = Endpoint::connect(addr).await?;
    let (tx, rx) = endpoint.connect1(addr).await?;
    Ok(halves(tx, rx))
}

/// madsim's `TcpStream::connect` waits a random delay, then binds a local port and connects,
/// each after a random delay of its own; `Endpoint::connect` and `connect1` wait for the last two.
/// This is the first (madsim's `NetSim::rand_delay`, whose draws it repeats: 0–4 µs, or 1–4 s
/// when buggify is on and fires).
async fn wait_like_tcp_connect() {
    let mut delay = Duration::from_micros(thread_rng().gen_range(0..5));
    if madsim::buggify::buggify_with_prob(0.1) {
        delay = Duration::from_secs(thread_rng().gen_range(1..5));
    }
    madsim::time::sleep(delay).await;
}

/// One connection's two directions. A TCP stream split in halves keeps both open until both
/// halves are dropped (a peer sees its end only then); the reader parks its receiver here when
/// it is done, so both directions close with the last half, in the stream's order.
struct Shared {
    tx: Sender,
    parked_rx: Mutex<Option<Receiver>>,
}

fn halves(tx: Sender, rx: Receiver) -> (Reader, Writer) {
    let shared = Arc::new(Shared {
        tx,
        parked_rx: Mutex::new(None),
    });
    let reader = Reader {
        rx: Some(rx),
        pending: Vec::new().into_iter(),
        shared: shared.clone(),
    };
    (reader, Writer { shared })
}

pub struct Reader {
    rx: Option<Receiver>,
    /// The rest of the batch last received.
    pending: std::vec::IntoIter<Wire>,
    shared: Arc<Shared>,
}

impl Reader {
    /// The next value; `Ok(None)` once the connection has ended.
    pub async fn next(&mut self) -> io::Result<Option<Wire>> {
        loop {
            if let Some(wire) = self.pending.next() {
                return Ok(Some(wire));
            }
            let Some(rx) = self.rx.as_mut() else {
                return Ok(None);
            };
            let Ok(payload) = rx.recv().await else {
                return Ok(None);
            };
            match payload.downcast::<Vec<Wire>>() {
                Ok(batch) => self.pending = batch.into_iter(),
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a payload that is not a batch of messages",
                    ))
                }
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        *lock(&self.shared.parked_rx) = self.rx.take();
    }
}

pub struct Writer {
    shared: Arc<Shared>,
}

impl Writer {
    /// Sends a batch as one payload, as a flush of simulated TCP sends its bytes.
    pub async fn send(&mut self, batch: Vec<Wire>) -> io::Result<()> {
        self.shared.tx.send(Box::new(batch)).await
    }
}
