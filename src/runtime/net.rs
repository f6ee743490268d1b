//! Node-to-node messaging over TCP: length-prefixed, checksummed frames (see `frame`), one
//! connection per peer, opened on first use and reopened after a failure with backoff.
//!
//! Every connection starts with a `Hello` naming the sender. Nodes with a listening address
//! (brokers, the controller) are reached through connections we open; nodes without one (clients)
//! are answered over the connection they opened. Messages queued while a peer is unreachable are
//! dropped when a connection attempt fails, and a peer's queue holds at most `QUEUE_LIMIT`
//! messages: the protocol has timeouts and retries, as Kafka's does, and a stalled link (a
//! simulated partition stalls TCP rather than dropping bytes) must not grow memory without bound.

use super::frame::{encode, FrameDecoder};
use super::lock;
use crate::protocol::{Message, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What travels in a frame.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Wire {
    Hello { from: NodeId },
    Message(Message),
}

/// Where the nodes with an address listen.
pub type AddressBook = BTreeMap<NodeId, SocketAddr>;

/// Delivered messages, in arrival order, with their sender.
pub type Inbox = mpsc::UnboundedReceiver<(NodeId, Message)>;

#[derive(Clone)]
pub struct Net {
    inner: Arc<Inner>,
}

struct Inner {
    me: NodeId,
    addrs: AddressBook,
    inbox: mpsc::UnboundedSender<(NodeId, Message)>,
    routes: Mutex<BTreeMap<NodeId, Route>>,
    next_conn: Mutex<u64>,
    connect_timeout: Duration,
}

struct Route {
    conn: u64,
    tx: mpsc::Sender<Message>,
}

/// Bytes read from a socket at a time.
const READ_BUFFER: usize = 16 * 1024;
/// Messages queued for one peer at most. A link that stalls (a partition, a paused peer) would
/// otherwise grow without bound; beyond this, new messages are dropped, as on a lossy network:
/// the protocol's timeouts and retries recover, as they do from a lost packet.
const QUEUE_LIMIT: usize = 8_192;
const MAX_BACKOFF: Duration = Duration::from_millis(1_000);
const FIRST_BACKOFF: Duration = Duration::from_millis(20);

impl Net {
    /// A network endpoint for node `me`; start `listen` separately if the node has an address.
    pub fn new(me: NodeId, addrs: AddressBook) -> (Net, Inbox) {
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Inner {
            me,
            addrs,
            inbox: tx,
            routes: Mutex::new(BTreeMap::new()),
            next_conn: Mutex::new(0),
            connect_timeout: Duration::from_secs(1),
        };
        (
            Net {
                inner: Arc::new(inner),
            },
            rx,
        )
    }

    /// Binds the listening socket and serves incoming connections in the background.
    pub async fn listen(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let net = self.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        no_delay(&stream);
                        let net = net.clone();
                        tokio::spawn(async move { net.serve_incoming(stream).await });
                    }
                    Err(e) => {
                        tracing::warn!(node = net.inner.me, "accept failed: {e}");
                        tokio::time::sleep(FIRST_BACKOFF).await;
                    }
                }
            }
        });
        Ok(local)
    }

    /// Queues `message` for `to`. Never blocks; a message without a route is dropped.
    pub fn send(&self, to: NodeId, message: Message) {
        let mut routes = lock(&self.inner.routes);
        if let Some(route) = routes.get(&to) {
            match route.tx.try_send(message) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::debug!(node = self.inner.me, to, "queue full; message dropped");
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(m)) => {
                    routes.remove(&to);
                    return self.open_route(&mut routes, to, m);
                }
            }
        }
        self.open_route(&mut routes, to, message);
    }

    /// Closes the connection to `to`: what is queued for it still goes out on the old connection,
    /// answers still to come on it are no longer read, and the next `send` opens a new one. Two
    /// connections are not ordered with each other, so the old one's last messages may arrive
    /// after the new one's first — as with real TCP, where a stalled connection's segments can be
    /// delivered after a newer connection's.
    pub fn disconnect(&self, to: NodeId) {
        lock(&self.inner.routes).remove(&to);
    }

    fn open_route(&self, routes: &mut BTreeMap<NodeId, Route>, to: NodeId, message: Message) {
        let Some(&addr) = self.inner.addrs.get(&to) else {
            tracing::debug!(node = self.inner.me, to, "no route; message dropped");
            return;
        };
        let (tx, rx) = mpsc::channel(QUEUE_LIMIT);
        let _ = tx.try_send(message);
        let conn = self.next_conn();
        routes.insert(to, Route { conn, tx });
        let net = self.clone();
        tokio::spawn(async move { net.outbound(to, addr, rx).await });
    }

    fn next_conn(&self) -> u64 {
        let mut n = lock(&self.inner.next_conn);
        *n += 1;
        *n
    }

    /// Keeps a connection to `to` open and writes what is queued for it.
    async fn outbound(self, to: NodeId, addr: SocketAddr, mut rx: mpsc::Receiver<Message>) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let connected =
                tokio::time::timeout(self.inner.connect_timeout, TcpStream::connect(addr)).await;
            let stream = match connected {
                Ok(Ok(s)) => {
                    no_delay(&s);
                    s
                }
                _ => {
                    // Unreachable: what waits is stale by the time we get through.
                    while rx.try_recv().is_ok() {}
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = FIRST_BACKOFF;
            let (read_half, mut write_half) = tokio::io::split(stream);
            // The peer may answer over this connection too.
            let reader = {
                let net = self.clone();
                tokio::spawn(async move { net.read_messages(read_half, to).await })
            };
            let hello = encode(&Wire::Hello {
                from: self.inner.me,
            });
            let mut ok = write_half.write_all(&hello).await.is_ok();
            while ok {
                let Some(first) = rx.recv().await else {
                    reader.abort();
                    return;
                };
                let mut bytes = encode(&Wire::Message(first));
                while let Ok(more) = rx.try_recv() {
                    bytes.extend_from_slice(&encode(&Wire::Message(more)));
                }
                // Simulated TCP sends on flush; real TCP benefits from one write per batch.
                ok = write_half.write_all(&bytes).await.is_ok() && write_half.flush().await.is_ok();
            }
            reader.abort();
        }
    }

    /// An incoming connection: learn who it is, answer clients over it, deliver what it carries.
    async fn serve_incoming(self, stream: TcpStream) {
        let (mut read_half, mut write_half) = tokio::io::split(stream);
        let mut decoder = FrameDecoder::new();
        let mut buf = vec![0u8; READ_BUFFER];
        let from = loop {
            match decoder.next_frame::<Wire>() {
                Ok(Some(Wire::Hello { from })) => break from,
                Ok(Some(Wire::Message(_))) | Err(_) => return,
                Ok(None) => match read_half.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => decoder.push(&buf[..n]),
                },
            }
        };
        // Address-less peers (clients) are answered on this connection.
        let mut route_conn = None;
        if !self.inner.addrs.contains_key(&from) {
            let (tx, mut rx) = mpsc::channel::<Message>(QUEUE_LIMIT);
            let conn = self.next_conn();
            lock(&self.inner.routes).insert(from, Route { conn, tx });
            route_conn = Some(conn);
            tokio::spawn(async move {
                while let Some(first) = rx.recv().await {
                    let mut bytes = encode(&Wire::Message(first));
                    while let Ok(more) = rx.try_recv() {
                        bytes.extend_from_slice(&encode(&Wire::Message(more)));
                    }
                    if write_half.write_all(&bytes).await.is_err()
                        || write_half.flush().await.is_err()
                    {
                        return;
                    }
                }
            });
        }
        self.deliver_from(&mut decoder, &mut read_half, from).await;
        if let Some(conn) = route_conn {
            let mut routes = lock(&self.inner.routes);
            if routes.get(&from).is_some_and(|r| r.conn == conn) {
                routes.remove(&from);
            }
        }
    }

    async fn read_messages<R: tokio::io::AsyncRead + Unpin>(self, mut read_half: R, from: NodeId) {
        let mut decoder = FrameDecoder::new();
        self.deliver_from(&mut decoder, &mut read_half, from).await;
    }

    /// Decodes frames until the connection ends or carries something malformed.
    async fn deliver_from<R: tokio::io::AsyncRead + Unpin>(
        &self,
        decoder: &mut FrameDecoder,
        read_half: &mut R,
        from: NodeId,
    ) {
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            loop {
                match decoder.next_frame::<Wire>() {
                    Ok(Some(Wire::Message(m))) => {
                        if self.inner.inbox.send((from, m)).is_err() {
                            return;
                        }
                    }
                    Ok(Some(Wire::Hello { .. })) => {}
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(node = self.inner.me, from, "closing connection: {e}");
                        return;
                    }
                }
            }
            match read_half.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => decoder.push(&buf[..n]),
            }
        }
    }
}

/// Turns off Nagle's algorithm: a peer with several requests in flight (a pipelining producer)
/// writes small frames back to back, and with Nagle each waits for the acknowledgement of the
/// one before — tens of milliseconds with delayed acknowledgements, which made five requests in
/// flight a quarter as fast as one. The simulated network has no such delay.
fn no_delay(stream: &TcpStream) {
    #[cfg(not(madsim))]
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY not set: {e}");
    }
    #[cfg(madsim)]
    let _ = stream;
}
