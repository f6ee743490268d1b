//! One Kafka connection: reads size-prefixed requests, answers each through the broker, writes
//! the responses in request order (Kafka's rule; requests are handled concurrently, so a
//! producer's pipelined requests and a parked fetch do not wait for each other).
//!
//! A request that cannot be read (a truncated or oversized frame, an unknown API, a version we
//! do not serve, a body the crate cannot decode) closes the connection, as Kafka's brokers do;
//! ApiVersions at an unknown version is the exception Kafka defines (UNSUPPORTED_VERSION with
//! our range in the v0 format).

use super::metadata::{self, Addresses};
use super::versions::{self, UNSUPPORTED_VERSION};
use super::{create_topics, fetch, list_offsets, produce, producer_id};
use crate::protocol::{ClusterMetadata, Message, NodeId};
use crate::runtime::lock;
use crate::runtime::net::{LocalClient, Net};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Encodable};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout_at, Instant};

/// The largest request accepted. Clients send up to about 1 MB by default (librdkafka's
/// message.max.bytes, Java's max.request.size); decoded, a request takes a few times its size.
pub const MAX_REQUEST: usize = 16 * 1024 * 1024;
/// Requests read ahead of their responses on one connection.
const PIPELINE: usize = 64;
/// Synthetic client ids: the upper half of the id space, far above seedlog's own clients.
const FIRST_SYNTHETIC: u32 = 0x8000_0000;
/// How long a request waits for the broker beyond what the client allowed.
pub(super) const GRACE: Duration = Duration::from_secs(2);

/// What every connection of one listener shares.
pub struct Shared {
    pub net: Net,
    pub me: NodeId,
    pub kafka: BTreeMap<NodeId, SocketAddr>,
    next: AtomicU32,
    marks: Mutex<fetch::Marks>,
}

impl Shared {
    pub fn new(net: Net, me: NodeId, kafka: BTreeMap<NodeId, SocketAddr>) -> Self {
        Shared {
            net,
            me,
            kafka,
            next: AtomicU32::new(0),
            marks: Mutex::new(BTreeMap::new()),
        }
    }

    /// A fresh synthetic client attached to the broker, for one request.
    pub(super) fn client(&self) -> LocalClient {
        let n = self.next.fetch_add(1, Ordering::Relaxed) & (FIRST_SYNTHETIC - 1);
        self.net.attach_local(FIRST_SYNTHETIC + n)
    }
}

/// Why a connection is closed.
#[derive(Debug)]
pub struct Close(pub String);

/// Serves one connection until it closes or sends something unreadable.
pub async fn serve<S>(shared: Arc<Shared>, stream: S) -> Result<(), Close>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (order_tx, mut order_rx) = mpsc::channel::<oneshot::Receiver<Option<Bytes>>>(PIPELINE);
    let writing = tokio::spawn(async move {
        while let Some(answer) = order_rx.recv().await {
            match answer.await {
                Ok(Some(frame)) => {
                    if writer.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                Ok(None) => {}
                // A request whose answer could not be encoded: stop here, in order.
                Err(_) => return,
            }
        }
    });
    let result = read_requests(&shared, &mut reader, &order_tx).await;
    drop(order_tx);
    let _ = writing.await;
    result
}

async fn read_requests<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    reader: &mut R,
    order: &mpsc::Sender<oneshot::Receiver<Option<Bytes>>>,
) -> Result<(), Close> {
    loop {
        let mut size = [0u8; 4];
        match reader.read_exact(&mut size).await {
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
        let size = i32::from_be_bytes(size);
        let Some(size) = usize::try_from(size)
            .ok()
            .filter(|s| (8..=MAX_REQUEST).contains(s))
        else {
            return Err(Close(format!(
                "request size {size} outside 8..={MAX_REQUEST}"
            )));
        };
        let mut frame = vec![0u8; size];
        if reader.read_exact(&mut frame).await.is_err() {
            return Err(Close("connection ended inside a request".into()));
        }
        let request = parse(Bytes::from(frame))?;
        let (tx, rx) = oneshot::channel();
        if order.send(rx).await.is_err() {
            return Ok(());
        }
        match request {
            Parsed::Unsupported { correlation } => {
                let body = ResponseKind::ApiVersions(versions::api_versions(UNSUPPORTED_VERSION));
                let _ = tx.send(frame_response(correlation, ApiKey::ApiVersions, 0, &body).ok());
            }
            Parsed::Request(header, body) => {
                let shared = shared.clone();
                // A produce reaches the broker here, before the next request is read: Kafka
                // appends one connection's requests in its order, and an idempotent producer's
                // pipelined batches must not overtake each other (the broker would refuse the
                // overtaking one as out of sequence). Its answer is awaited with the others.
                let work = match *body {
                    RequestKind::Produce(req) => Work::Produce(SentProduce::send(&shared, &req)),
                    other => Work::Other(other),
                };
                tokio::spawn(async move {
                    let key = ApiKey::try_from(header.request_api_key).expect("checked in parse");
                    let version = header.request_api_version;
                    let answer = match work {
                        Work::Produce(sent) => sent.answer(version).await,
                        Work::Other(body) => handle(&shared, body, version).await,
                    };
                    let framed = match answer {
                        None => Some(None),
                        Some(body) => {
                            match frame_response(header.correlation_id, key, version, &body) {
                                Ok(f) => Some(Some(f)),
                                Err(e) => {
                                    tracing::warn!("kafka: cannot encode {key:?} v{version}: {e}");
                                    None
                                }
                            }
                        }
                    };
                    // Dropping `tx` unanswered closes the connection after the earlier answers.
                    if let Some(f) = framed {
                        let _ = tx.send(f);
                    }
                });
            }
        }
    }
}

pub(super) enum Parsed {
    Request(RequestHeader, Box<RequestKind>),
    /// ApiVersions at a version we do not serve.
    Unsupported {
        correlation: i32,
    },
}

/// Decodes a request frame, or says why the connection must close.
pub(super) fn parse(mut frame: Bytes) -> Result<Parsed, Close> {
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api) = ApiKey::try_from(key) else {
        return Err(Close(format!("unknown API key {key}")));
    };
    if !versions::supported(api, version) {
        if api == ApiKey::ApiVersions {
            return Ok(Parsed::Unsupported { correlation });
        }
        return Err(Close(format!("{api:?} v{version} is not served")));
    }
    // Every count and length must be backed by bytes before the crate reserves memory for it.
    if let Err(e) = super::walk::check(api, version, &frame) {
        return Err(Close(format!("{api:?} v{version}: {e}")));
    }
    // The crate's decoders are not ours to audit for panics on hostile input: a panic is caught
    // and closes the connection like any other unreadable request.
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let header = decode_request_header_from_buffer(&mut frame)?;
        let body = RequestKind::decode(api, &mut frame, version)?;
        anyhow::Ok((header, body))
    }));
    match decoded {
        Ok(Ok((header, body))) => Ok(Parsed::Request(header, Box::new(body))),
        Ok(Err(e)) => Err(Close(format!("{api:?} v{version}: {e}"))),
        Err(_) => Err(Close(format!("{api:?} v{version}: the decoder failed"))),
    }
}

/// Size, header (the API's response header version) and body.
fn frame_response(
    correlation: i32,
    key: ApiKey,
    version: i16,
    body: &ResponseKind,
) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(size_hint(body));
    buf.extend_from_slice(&[0; 4]);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation;
    header.encode(&mut buf, key.response_header_version(version))?;
    body.encode(&mut buf, version)?;
    let size = i32::try_from(buf.len() - 4)?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// Room for a response before it is encoded: a fetch answer's records are most of it, and a
/// buffer grown from empty copied them again at every doubling.
fn size_hint(body: &ResponseKind) -> usize {
    let records = match body {
        ResponseKind::Fetch(f) => f
            .responses
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
            .sum(),
        _ => 0,
    };
    records + 1024
}

/// A request's work once read: a produce already handed to the broker, or any other request.
enum Work {
    Produce(SentProduce),
    Other(RequestKind),
}

/// A produce request handed to the broker, its answer still to come.
struct SentProduce {
    plan: produce::Plan,
    /// The synthetic client the broker answers; `None` if no partition passed the checks.
    client: Option<LocalClient>,
    deadline: Instant,
}

impl SentProduce {
    fn send(shared: &Shared, req: &kafka_protocol::messages::ProduceRequest) -> SentProduce {
        let deadline = Instant::now() + millis(req.timeout_ms) + GRACE;
        let mut plan = produce::plan(req, 1);
        let client = plan.request.take().map(|request| {
            let client = shared.client();
            client.send(Message::Produce(request));
            client
        });
        SentProduce {
            plan,
            client,
            deadline,
        }
    }

    /// The Kafka answer; `None` with acks=0 (no response).
    async fn answer(mut self, version: i16) -> Option<ResponseKind> {
        if self.plan.acks == crate::protocol::Acks::None {
            return None;
        }
        let mut answers = BTreeMap::new();
        if let Some(client) = &mut self.client {
            while answers.len() < self.plan.awaited() {
                match timeout_at(self.deadline, client.recv()).await {
                    Ok(Some(Message::ProduceResponse(r))) => {
                        for b in r.batches {
                            answers.insert(b.batch, b.result);
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
        Some(ResponseKind::Produce(self.plan.answer(&answers, version)))
    }
}

/// Answers one request through the broker; `None` for a request that gets no response
/// (Produce with acks=0).
async fn handle(shared: &Shared, body: RequestKind, version: i16) -> Option<ResponseKind> {
    match body {
        RequestKind::ApiVersions(_) => Some(ResponseKind::ApiVersions(versions::api_versions(0))),
        RequestKind::Metadata(req) => {
            let md = cluster_metadata(shared).await;
            Some(ResponseKind::Metadata(metadata_answer(
                shared, &req, version, &md,
            )))
        }
        RequestKind::Produce(req) => SentProduce::send(shared, &req).answer(version).await,
        RequestKind::Fetch(req) => {
            let topics = if version >= 13 {
                topic_names(&cluster_metadata(shared).await)
            } else {
                Vec::new()
            };
            let plan = fetch::plan(&req, version, &topics);
            let wait_until = Instant::now() + millis(req.max_wait_ms);
            let give_up = wait_until + GRACE;
            let mut answers = BTreeMap::new();
            let mut client = shared.client();
            for r in &plan.requests {
                client.send(Message::Fetch(r.clone()));
            }
            loop {
                let waited = Instant::now() >= wait_until;
                if plan.ready(&answers, &lock(&shared.marks), waited) {
                    break;
                }
                let until = if waited { give_up } else { wait_until };
                match timeout_at(until, client.recv()).await {
                    Ok(Some(Message::FetchResponse(a))) => {
                        let asked = plan
                            .requests
                            .iter()
                            .any(|r| r.tp == a.tp && r.fetch_offset == a.fetch_offset);
                        if asked {
                            if a.error.is_none() {
                                lock(&shared.marks).insert(
                                    a.tp.clone(),
                                    (a.high_watermark as i64, a.log_start_offset as i64),
                                );
                            }
                            answers.insert(a.tp.clone(), a);
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) if waited => break,
                    Err(_) => {}
                }
            }
            let marks = lock(&shared.marks).clone();
            match plan.answer(&answers, &marks, version) {
                Ok(resp) => Some(ResponseKind::Fetch(resp)),
                Err(e) => {
                    tracing::warn!("kafka: cannot encode fetched records: {e}");
                    None
                }
            }
        }
        RequestKind::ListOffsets(req) => {
            let deadline = Instant::now() + millis(req.timeout_ms).max(Duration::from_secs(5));
            let plan = list_offsets::plan(&req, version);
            let mut client = shared.client();
            for (tp, spec) in &plan.requests {
                client.send(Message::ListOffsets {
                    tp: tp.clone(),
                    spec: *spec,
                });
            }
            let mut answers = BTreeMap::new();
            while answers.len() < plan.requests.len() {
                match timeout_at(deadline, client.recv()).await {
                    Ok(Some(Message::ListOffsetsResponse {
                        tp,
                        spec,
                        result,
                        timestamp,
                        leader_epoch,
                        ..
                    })) => {
                        let found = list_offsets::Found {
                            result,
                            timestamp,
                            leader_epoch,
                        };
                        answers.insert((tp, spec), found);
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            let answer = plan.answer(&answers, version);
            Some(ResponseKind::ListOffsets(answer))
        }
        RequestKind::CreateTopics(req) => {
            let plan = create_topics::plan(&req);
            let deadline = Instant::now() + millis(req.timeout_ms);
            let mut client = shared.client();
            let answers = create_topics::exchange(&mut client, &plan, deadline).await;
            Some(ResponseKind::CreateTopics(plan.answer(&answers, version)))
        }
        RequestKind::InitProducerId(req) => {
            if let Some(refused) = producer_id::refused(&req) {
                return Some(ResponseKind::InitProducerId(refused));
            }
            let mut client = shared.client();
            client.send(Message::InitProducerId { correlation: 1 });
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut result = None;
            while result.is_none() {
                match timeout_at(deadline, client.recv()).await {
                    Ok(Some(Message::InitProducerIdResponse { result: r, .. })) => result = Some(r),
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            Some(ResponseKind::InitProducerId(producer_id::answer(result)))
        }
        group @ (RequestKind::FindCoordinator(_)
        | RequestKind::JoinGroup(_)
        | RequestKind::SyncGroup(_)
        | RequestKind::Heartbeat(_)
        | RequestKind::LeaveGroup(_)
        | RequestKind::OffsetCommit(_)
        | RequestKind::OffsetFetch(_)) => super::group_api::handle(shared, group, version).await,
        // `parse` lets through only the advertised APIs, all handled above.
        _ => None,
    }
}

pub(super) fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The broker's metadata, asked for as a seedlog client asks (answered at once).
pub(super) async fn cluster_metadata(shared: &Shared) -> ClusterMetadata {
    let mut client = shared.client();
    client.send(Message::Metadata { min_version: 0 });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match timeout_at(deadline, client.recv()).await {
            Ok(Some(Message::MetadataResponse(md))) => return md,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return ClusterMetadata::default(),
        }
    }
}

fn metadata_answer(
    shared: &Shared,
    req: &MetadataRequest,
    version: i16,
    md: &ClusterMetadata,
) -> kafka_protocol::messages::MetadataResponse {
    let at = Addresses {
        me: shared.me,
        kafka: &shared.kafka,
    };
    metadata::answer(req, version, md, &at)
}

fn topic_names(md: &ClusterMetadata) -> Vec<String> {
    let mut names: Vec<String> = md.partitions.iter().map(|p| p.tp.topic.clone()).collect();
    names.dedup();
    names
}
