//! Node-to-node messaging over TCP: length-prefixed, checksummed frames (see `frame`), one
//! connection per peer, opened on first use and reopened after a failure with backoff.
//!
//! Every connection starts with a `Hello` naming the sender. Nodes with a listening address
//! (brokers, the controller) are reached through connections we open; nodes without one (clients)
//! are answered over a connection they opened: the newest by the client's own numbering (its
//! hello carries it) that has reached us, or, once that one closes, the newest of theirs still
//! open. An older connection, stalled, may deliver its last requests after a newer one carried
//! others, but the client no longer reads it: the answers must not follow it. Messages queued while a
//! peer is unreachable are dropped when a connection attempt fails, and a peer's queue holds at
//! most `QUEUE_LIMIT` messages: the protocol has timeouts and retries, as Kafka's does, and a
//! stalled link (a simulated partition stalls TCP rather than dropping bytes) must not grow
//! memory without bound.

use super::lock;
use crate::protocol::{Message, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

// How connections carry `Wire`s: real TCP with frames, or, under madsim, the simulator's ordered
// channels carrying the values themselves (encoding was an eighth of a simulation's cost and the
// codec has tests of its own). Both offer the same calls; everything else here is shared.
#[cfg(madsim)]
#[path = "net/sim_link.rs"]
mod link;
#[cfg(not(madsim))]
#[path = "net/tcp_link.rs"]
mod link;

/// What travels in a frame.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Wire {
    /// Opens every connection. `reset`: the sender closed its previous connection to us because
    /// a request on it went unanswered (`Net::disconnect`); our own connection to it may be
    /// stalled the same way (answers travel on it), so we replace it too (`serve_incoming`).
    Hello {
        from: NodeId,
        reset: bool,
        /// The sender's number for this connection: its connections to us are numbered in the
        /// order it opened them (`Net::number_connections_from`), whatever order they arrive in.
        conn: u64,
    },
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
    /// Each address-less peer's incoming connections still open: where its answers go once
    /// the connection its route points at closes (the newest of them by the peer's numbering).
    open_from: Mutex<BTreeMap<NodeId, Vec<Route>>>,
    /// Peers disconnected by a timeout whose next connection is still to open: its hello asks
    /// the peer to replace its own connection to us.
    resets: Mutex<BTreeSet<NodeId>>,
    next_conn: Mutex<u64>,
    /// Outbound connection tasks running (`outbound`), each keeping or retrying one connection.
    outbound_tasks: Mutex<usize>,
    connect_timeout: Duration,
}

#[derive(Clone)]
struct Route {
    conn: u64,
    tx: mpsc::Sender<Message>,
    /// For a client's incoming connection, the client's own number for it (`Wire::Hello`):
    /// its answers go on its newest connection. 0 elsewhere.
    rank: u64,
}

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
            open_from: Mutex::new(BTreeMap::new()),
            resets: Mutex::new(BTreeSet::new()),
            next_conn: Mutex::new(0),
            outbound_tasks: Mutex::new(0),
            connect_timeout: Duration::from_secs(1),
        };
        (
            Net {
                inner: Arc::new(inner),
            },
            rx,
        )
    }

    /// Numbers this node's connections from `first` on (0 by default). A node that restarts under
    /// the same id without a new process (a simulated node) starts past every number its earlier
    /// incarnation used, so that its peers take its new connections as its newest.
    pub fn number_connections_from(&self, first: u64) {
        *lock(&self.inner.next_conn) = first;
    }

    /// Binds the listening socket and serves incoming connections in the background.
    pub async fn listen(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = link::Listener::bind(addr).await?;
        let local = listener.local_addr()?;
        let net = self.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((reader, writer)) => {
                        let net = net.clone();
                        tokio::spawn(async move { net.serve_incoming(reader, writer).await });
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
    /// which is then closed, and the next `send` opens a new one. Two connections are not ordered
    /// with each other, so the old one's last messages may arrive after the new one's first — as
    /// with real TCP, where a stalled connection's segments can be delivered after a newer
    /// connection's.
    ///
    /// Where answers come from depends on the peer. A peer without an address (a client) is
    /// answered on the connection it opened; here we are that client, and answers still to come
    /// on the old connection are not read once its queue has drained. A peer with an address
    /// answers over its own connection to us, which we keep reading, so its late answers still
    /// arrive (the protocol drops those that no longer apply). That connection may be stalled too
    /// (TCP retransmits a segment sent into a partition with a backoff that grows to seconds or
    /// minutes, and whatever is written after it waits behind it): the new connection's hello
    /// asks the peer to replace it as well.
    pub fn disconnect(&self, to: NodeId) {
        lock(&self.inner.routes).remove(&to);
        if self.inner.addrs.contains_key(&to) {
            lock(&self.inner.resets).insert(to);
        }
    }

    /// Attaches a client that lives in this process (the Kafka listener's requests): its
    /// messages enter this node's inbox as if they had arrived over a connection from `id`, and
    /// what the node sends to `id` comes back through the returned handle instead of a socket.
    /// Dropping the handle detaches it; later messages to `id` are dropped, as for a client whose
    /// connection closed.
    pub fn attach_local(&self, id: NodeId) -> LocalClient {
        let (tx, rx) = mpsc::channel(QUEUE_LIMIT);
        let conn = self.next_conn();
        lock(&self.inner.routes).insert(id, Route { conn, tx, rank: 0 });
        LocalClient {
            net: self.clone(),
            id,
            conn,
            rx,
        }
    }

    fn open_route(&self, routes: &mut BTreeMap<NodeId, Route>, to: NodeId, message: Message) {
        let Some(&addr) = self.inner.addrs.get(&to) else {
            tracing::debug!(node = self.inner.me, to, "no route; message dropped");
            return;
        };
        let (tx, rx) = mpsc::channel(QUEUE_LIMIT);
        let _ = tx.try_send(message);
        let conn = self.next_conn();
        routes.insert(to, Route { conn, tx, rank: 0 });
        let reset = lock(&self.inner.resets).remove(&to);
        let net = self.clone();
        let counted = OutboundTask::start(&self.inner);
        tokio::spawn(async move {
            // Counted until the task ends, however it ends (returned, or dropped with the
            // runtime or a killed simulated node).
            let _counted = counted;
            net.outbound(to, addr, rx, reset, conn).await;
        });
    }

    /// Outbound connections kept or being retried: one per peer with a route, plus those
    /// draining what was queued before their route was dropped.
    pub fn outbound_tasks(&self) -> usize {
        *lock(&self.inner.outbound_tasks)
    }

    fn next_conn(&self) -> u64 {
        let mut n = lock(&self.inner.next_conn);
        *n += 1;
        *n
    }

    /// Keeps a connection to `to` open and writes what is queued for it; `reset`: each
    /// connection's hello asks `to` to replace its connection to us (see `disconnect`); `conn`:
    /// this route's number, which each hello carries.
    async fn outbound(
        self,
        to: NodeId,
        addr: SocketAddr,
        mut rx: mpsc::Receiver<Message>,
        reset: bool,
        conn: u64,
    ) {
        let mut backoff = FIRST_BACKOFF;
        // Separate from `backoff` (reset by every connect): for a peer that accepts connections
        // and closes them before we write anything, so replacing them does not spin.
        let mut unused_backoff = FIRST_BACKOFF;
        loop {
            let connected =
                tokio::time::timeout(self.inner.connect_timeout, link::connect(addr)).await;
            let (reader, mut writer) = match connected {
                Ok(Ok(halves)) => halves,
                _ => {
                    // Unreachable: what waits is stale by the time we get through.
                    while rx.try_recv().is_ok() {}
                    // Its route was dropped (`disconnect`, a reset, a newer connection): nothing
                    // more can be queued here, so stop trying. Left running, every timeout that
                    // replaced a route to a peer that stays down would add a task reconnecting
                    // to it forever.
                    if rx.is_closed() {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = FIRST_BACKOFF;
            // The peer may answer over this connection too.
            let mut reader = {
                let net = self.clone();
                tokio::spawn(async move { net.deliver_from(reader, to, None).await })
            };
            // The hello travels with the first batch (on simulated TCP a write is sent at the
            // flush, and the first batch's flush sent both).
            let mut hello = Some(Wire::Hello {
                from: self.inner.me,
                reset,
                conn,
            });
            loop {
                // A connection the peer closed (it crashed or restarted; the reader met its end)
                // is replaced at once, as a TCP client that reads the peer's FIN or RST does,
                // rather than at the next write: that write would be lost with the connection,
                // and its request would wait out a whole request timeout for an answer.
                let first = tokio::select! {
                    biased;
                    ended = &mut reader => {
                        if !matches!(ended, Ok(ReadEnd::Connection)) {
                            // Our node stopped (its inbox is closed): nothing more to carry.
                            return;
                        }
                        if hello.is_some() {
                            // It carried nothing of ours: wait before the next one, longer each
                            // time.
                            tokio::time::sleep(unused_backoff).await;
                            unused_backoff = (unused_backoff * 2).min(MAX_BACKOFF);
                        }
                        break;
                    }
                    next = rx.recv() => match next {
                        Some(first) => first,
                        None => {
                            reader.abort();
                            return;
                        }
                    },
                };
                let mut batch: Vec<Wire> = hello.take().into_iter().collect();
                batch.push(Wire::Message(first));
                while let Ok(more) = rx.try_recv() {
                    batch.push(Wire::Message(more));
                }
                if writer.send(batch).await.is_err() {
                    break;
                }
                unused_backoff = FIRST_BACKOFF;
            }
            reader.abort();
        }
    }

    /// An incoming connection: learn who it is, answer clients over it, deliver what it carries.
    async fn serve_incoming(self, mut reader: link::Reader, mut writer: link::Writer) {
        let (from, reset, rank) = match reader.next().await {
            Ok(Some(Wire::Hello { from, reset, conn })) => (from, reset, conn),
            _ => return,
        };
        self.on_hello(from, reset);
        // Address-less peers (clients) are answered on this connection.
        let mut route = None;
        if !self.inner.addrs.contains_key(&from) {
            let (tx, mut rx) = mpsc::channel::<Message>(QUEUE_LIMIT);
            let opened = Route {
                conn: self.next_conn(),
                tx,
                rank,
            };
            {
                // Both under the routes' lock, as where a connection ends: one that ends in
                // between would not see this one to hand its route to.
                let mut routes = lock(&self.inner.routes);
                if routes.get(&from).is_none_or(|r| r.rank <= rank) {
                    routes.insert(from, opened.clone());
                }
                lock(&self.inner.open_from)
                    .entry(from)
                    .or_default()
                    .push(opened.clone());
            }
            route = Some(opened);
            tokio::spawn(async move {
                while let Some(first) = rx.recv().await {
                    let mut batch = vec![Wire::Message(first)];
                    while let Ok(more) = rx.try_recv() {
                        batch.push(Wire::Message(more));
                    }
                    if writer.send(batch).await.is_err() {
                        return;
                    }
                }
            });
        }
        self.deliver_from(reader, from, route.as_ref()).await;
        if let Some(conn) = route.map(|r| r.conn) {
            let mut routes = lock(&self.inner.routes);
            let mut open_from = lock(&self.inner.open_from);
            let open = open_from.entry(from).or_default();
            open.retain(|r| r.conn != conn);
            // Answers that were to go on this connection go on the client's newest other one,
            // if it has one (an incarnation's connection that closes may leave a newer one's
            // answers, sent when they are committed, say, with nowhere else to go).
            let fallback = open.iter().max_by_key(|r| r.rank).cloned();
            if open.is_empty() {
                open_from.remove(&from);
            }
            if routes.get(&from).is_some_and(|r| r.conn == conn) {
                match fallback {
                    Some(r) => routes.insert(from, r),
                    None => routes.remove(&from),
                };
            }
        }
    }

    /// A connection from `from` opened. With `reset`, the peer gave up on a request to us, and
    /// what we send it may be stuck behind a stalled segment: our next message opens a new
    /// connection (whose hello asks for no reset in return: one reconnection each way, no
    /// ping-pong). An address-less peer is answered on the connection it opened anyway.
    fn on_hello(&self, from: NodeId, reset: bool) {
        if reset && self.inner.addrs.contains_key(&from) {
            tracing::debug!(
                node = self.inner.me,
                from,
                "peer reconnected; reconnecting to it"
            );
            lock(&self.inner.routes).remove(&from);
        }
    }

    /// Delivers what a connection carries until it ends or carries something malformed. With
    /// `answer_on` (an address-less peer's connection), each message first points the peer's
    /// route at this connection unless the route is on a newer one by the peer's numbering. A
    /// client may have several connections open to us (an old one it gave up on, stalled, whose
    /// last requests arrive after the newer one's; one left by an incarnation that died): the
    /// client reads only its newest, so a late request on an older one must not take the
    /// answers to the requests it sends on the newest (seed 362626071: the answer to a produce
    /// request went on the old connection and was lost; the retry came after five later batches
    /// and was refused as out of sequence). Ties (the same number) go to the latest message.
    async fn deliver_from(
        &self,
        mut reader: link::Reader,
        from: NodeId,
        answer_on: Option<&Route>,
    ) -> ReadEnd {
        loop {
            match reader.next().await {
                Ok(Some(Wire::Message(m))) => {
                    if let Some(r) = answer_on {
                        let mut routes = lock(&self.inner.routes);
                        if routes
                            .get(&from)
                            .is_none_or(|current| current.conn != r.conn && current.rank <= r.rank)
                        {
                            routes.insert(from, r.clone());
                        }
                    }
                    if self.inner.inbox.send((from, m)).is_err() {
                        return ReadEnd::Node;
                    }
                }
                Ok(Some(Wire::Hello { .. })) => {}
                Ok(None) => return ReadEnd::Connection,
                Err(e) => {
                    tracing::warn!(node = self.inner.me, from, "closing connection: {e}");
                    return ReadEnd::Connection;
                }
            }
        }
    }
}

/// Why a connection's reading ended.
enum ReadEnd {
    /// The connection ended: the peer closed it (it crashed or restarted), or it broke.
    Connection,
    /// Our own node stopped taking what arrives (its inbox is closed).
    Node,
}

/// One running `outbound` task in `Inner::outbound_tasks`, for as long as it lives.
struct OutboundTask(Arc<Inner>);

impl OutboundTask {
    fn start(inner: &Arc<Inner>) -> Self {
        *lock(&inner.outbound_tasks) += 1;
        OutboundTask(inner.clone())
    }
}

impl Drop for OutboundTask {
    fn drop(&mut self) {
        *lock(&self.0.outbound_tasks) -= 1;
    }
}

/// A client inside this process, attached with `Net::attach_local`.
pub struct LocalClient {
    net: Net,
    id: NodeId,
    conn: u64,
    rx: mpsc::Receiver<Message>,
}

impl LocalClient {
    /// Delivers `message` to the node as sent by this client; false once the node has stopped.
    pub fn send(&self, message: Message) -> bool {
        self.net.inner.inbox.send((self.id, message)).is_ok()
    }

    /// The node's next message to this client (`None` once detached by the node's end).
    pub async fn recv(&mut self) -> Option<Message> {
        self.rx.recv().await
    }
}

impl Drop for LocalClient {
    fn drop(&mut self) {
        let mut routes = lock(&self.net.inner.routes);
        if routes.get(&self.id).is_some_and(|r| r.conn == self.conn) {
            routes.remove(&self.id);
        }
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A message tagged `n`, standing in for a request or an answer.
    fn tagged(n: NodeId) -> Message {
        Message::NotController {
            leader: Some(n),
            epoch: 0,
        }
    }

    async fn next(inbox: &mut Inbox) -> Option<(NodeId, Message)> {
        tokio::time::timeout(Duration::from_secs(5), inbox.recv())
            .await
            .ok()
            .flatten()
    }

    fn route(net: &Net, to: NodeId) -> Option<u64> {
        lock(&net.inner.routes).get(&to).map(|r| r.conn)
    }

    /// A timeout's disconnect makes the next connection ask the peer to replace its own
    /// connection back (a hello with `reset`); the peer does so for a node with an address only,
    /// and a plain hello changes nothing.
    #[tokio::test]
    async fn a_reconnection_after_a_timeout_asks_the_peer_to_reconnect_too() {
        // Nothing listens there: the connections keep failing, the routes stay.
        let nowhere: SocketAddr = "127.0.0.1:9".parse().expect("an address");
        let book: AddressBook = [(1, nowhere), (2, nowhere)].into_iter().collect();
        let (a, _inbox) = Net::new(1, book);
        a.send(2, tagged(1));
        let first = route(&a, 2).expect("a route to node 2");
        a.disconnect(2);
        assert_eq!(route(&a, 2), None);
        assert!(
            lock(&a.inner.resets).contains(&2),
            "the next hello asks for a reset"
        );
        a.send(2, tagged(2));
        assert!(route(&a, 2).is_some_and(|c| c != first));
        assert!(
            lock(&a.inner.resets).is_empty(),
            "asked once, on the new connection"
        );
        // Node 2 reconnects after a timeout of its own: node 1 replaces its connection to it.
        a.on_hello(2, false);
        assert!(route(&a, 2).is_some(), "a plain hello keeps the route");
        a.on_hello(2, true);
        assert_eq!(route(&a, 2), None);
        // A client (no address) is answered on its own connection: nothing to replace, nothing
        // to ask of it.
        let (tx, _rx) = mpsc::channel(1);
        lock(&a.inner.routes).insert(
            501,
            Route {
                conn: 99,
                tx,
                rank: 0,
            },
        );
        a.on_hello(501, true);
        assert_eq!(route(&a, 501), Some(99));
        a.disconnect(501);
        assert!(lock(&a.inner.resets).is_empty());
    }

    /// A route dropped while its peer is unreachable stops retrying: a timeout's disconnect
    /// must not leave a task reconnecting forever to a peer that stays down.
    #[tokio::test]
    async fn a_dropped_route_to_an_unreachable_peer_stops_retrying() {
        let nowhere: SocketAddr = "127.0.0.1:9".parse().expect("an address");
        let (a, _inbox) = Net::new(1, [(2, nowhere)].into_iter().collect());
        for n in 0..5 {
            a.send(2, tagged(n));
            a.disconnect(2);
        }
        let mut waited = 0;
        while a.outbound_tasks() > 0 && waited < 100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
        assert_eq!(a.outbound_tasks(), 0, "tasks still retrying after 5 s");
    }

    /// Node 2 played by a bare TCP listener, and node 1 connected to it, with one message sent.
    #[cfg(not(madsim))]
    async fn client_of_raw_listener() -> (tokio::net::TcpListener, Net, Inbox) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("an address");
        let (client, inbox) = Net::new(1, [(2, addr)].into_iter().collect());
        client.send(2, tagged(1));
        (listener, client, inbox)
    }

    /// A connection the peer closes (its process died, or restarted) is replaced at once, as
    /// a TCP client reading the peer's FIN does, before anything more is sent: a message written
    /// to the closed connection would be lost with it, and its request would wait out a whole
    /// timeout.
    #[cfg(not(madsim))]
    #[tokio::test]
    async fn a_connection_the_peer_closed_is_replaced_before_the_next_send() {
        use tokio::io::AsyncReadExt;
        let (listener, client, _inbox) = client_of_raw_listener().await;
        let (mut first, _) = listener.accept().await.expect("the first connection");
        let mut buf = [0u8; 256];
        assert!(
            first.read(&mut buf).await.expect("read") > 0,
            "the hello and message"
        );
        drop(first);
        let replaced = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await;
        let (mut second, _) = replaced
            .expect("the closed connection was not replaced")
            .expect("the second connection");
        client.send(2, tagged(2));
        let read = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf)).await;
        assert!(read.expect("nothing arrived").expect("read") > 0);
    }

    /// A peer that accepts connections and closes them at once, before anything is written, is
    /// not reconnected to in a loop: the waits between them double (20 ms, 40 ms, ...).
    #[cfg(not(madsim))]
    #[tokio::test]
    async fn connections_closed_before_any_write_are_replaced_with_a_growing_wait() {
        let (listener, _client, _inbox) = client_of_raw_listener().await;
        let started = tokio::time::Instant::now();
        let mut accepted = 0;
        while started.elapsed() < Duration::from_millis(500) {
            let next = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
            if let Ok(Ok((conn, _))) = next {
                accepted += 1;
                drop(conn);
            }
        }
        // 20 + 40 + 80 + 160 ms of waiting fit in half a second after the first two
        // connections (the first carried the message); a spinning client makes thousands.
        assert!(
            (1..=8).contains(&accepted),
            "{accepted} connections in 0.5 s"
        );
    }

    /// Node 2 listening, and an address book naming it.
    async fn listening_server() -> (Net, Inbox, AddressBook) {
        let (server, inbox) = Net::new(2, AddressBook::new());
        let addr = server
            .listen("127.0.0.1:0".parse().expect("an address"))
            .await
            .expect("listen");
        (server, inbox, [(2, addr)].into_iter().collect())
    }

    /// A client (no address) with two connections to a server: an older one by the client's
    /// own numbering (one it gave up on, stalled, or one of an incarnation that died) whose late
    /// request arrives after the newer one carried others. The late request is delivered, but
    /// the answers stay on the newest connection, the only one the client reads. A connection
    /// numbered the same as the route's (a tie) takes it with its message.
    #[tokio::test]
    async fn a_late_request_on_a_clients_older_connection_leaves_its_answers_on_the_newest() {
        let (server, mut server_inbox, book) = listening_server().await;
        let (client, mut client_inbox) = Net::new(501, book.clone());
        client.number_connections_from(1_000);
        client.send(2, tagged(1));
        assert_eq!(next(&mut server_inbox).await, Some((501, tagged(1))));
        let (old, mut old_inbox) = Net::new(501, book.clone());
        old.send(2, tagged(2));
        assert_eq!(next(&mut server_inbox).await, Some((501, tagged(2))));
        // The answer to the first request, sent only now (once committed, say).
        server.send(501, tagged(11));
        assert_eq!(
            next(&mut client_inbox).await.map(|(_, m)| m),
            Some(tagged(11)),
            "the answer went to the older connection"
        );
        assert!(old_inbox.try_recv().is_err());
        let (tie, mut tie_inbox) = Net::new(501, book);
        tie.number_connections_from(1_000);
        tie.send(2, tagged(3));
        assert_eq!(next(&mut server_inbox).await, Some((501, tagged(3))));
        server.send(501, tagged(13));
        assert_eq!(next(&mut tie_inbox).await.map(|(_, m)| m), Some(tagged(13)));
    }

    /// A client's newest connection that closes (its incarnation died, say) hands what the
    /// server sends the client afterwards (the answer to a request that came on another of its
    /// connections, held until it is committed) to the newest one still open, not to nothing.
    #[tokio::test]
    async fn a_client_connection_that_closes_hands_its_answers_to_the_clients_other_one() {
        let (server, mut server_inbox, book) = listening_server().await;
        let (client, mut client_inbox) = Net::new(501, book.clone());
        let (newer, _newer_inbox) = Net::new(501, book);
        newer.number_connections_from(1_000);
        client.send(2, tagged(1));
        assert_eq!(next(&mut server_inbox).await, Some((501, tagged(1))));
        newer.send(2, tagged(2));
        assert_eq!(next(&mut server_inbox).await, Some((501, tagged(2))));
        let current = route(&server, 501);
        // The newer connection closes; the server notices it.
        newer.disconnect(2);
        let mut waited = 0;
        while route(&server, 501) == current && waited < 100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
        assert!(route(&server, 501).is_some(), "the client lost its route");
        server.send(501, tagged(11));
        assert_eq!(
            next(&mut client_inbox).await.map(|(_, m)| m),
            Some(tagged(11)),
            "the answer was dropped with the old connection"
        );
    }
}
