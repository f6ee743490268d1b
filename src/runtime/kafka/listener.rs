//! The Kafka listener's socket: accepts connections and serves each on a task of its own, once
//! the broker is registered.

use super::conn::{self, Shared};
use crate::protocol::NodeId;
use crate::runtime::net::Net;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Where this broker's Kafka listener binds, and every broker's Kafka address as Metadata
/// advertises it (by broker id).
#[derive(Clone, Debug)]
pub struct KafkaLayout {
    pub listen: SocketAddr,
    pub advertised: BTreeMap<NodeId, SocketAddr>,
}

/// How often the listener looks whether its broker is registered yet.
const REGISTERED_POLL: Duration = Duration::from_millis(50);

/// Binds the listener of broker `me` (whose driver `net` feeds) and serves it in the background;
/// returns the bound address. Connections are accepted only once the broker's metadata shows it
/// registered and unfenced, as a Kafka broker opens its listeners only once registered and
/// caught up: until then the kernel holds them, and a client that connects to a new cluster
/// waits instead of being told there are no brokers to create its topic on, or that the
/// partitions it asks for do not exist.
pub async fn serve(net: Net, me: NodeId, layout: KafkaLayout) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(layout.listen).await?;
    let local = listener.local_addr()?;
    let mut advertised = layout.advertised;
    // Port 0 binds anywhere: advertise what was bound.
    if layout.listen.port() == 0 {
        advertised.insert(me, local);
    }
    let shared = Arc::new(Shared::new(net, me, advertised));
    tokio::spawn(async move {
        while !registered(&shared).await {
            tokio::time::sleep(REGISTERED_POLL).await;
        }
        tracing::info!("kafka: broker {me} is registered; accepting clients");
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    // Small responses (acks, empty fetches) must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        // A warning, shown by default: a client whose request is not served
                        // sees only the connection close, so the broker's log must say why.
                        if let Err(conn::Close(why)) = conn::serve(shared, stream).await {
                            tracing::warn!("kafka: closing the connection from {peer}: {why}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("kafka: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        }
    });
    Ok(local)
}

/// Whether the broker's metadata shows it registered and unfenced.
async fn registered(shared: &Shared) -> bool {
    let md = conn::cluster_metadata(shared).await;
    md.brokers
        .iter()
        .any(|r| r.broker == shared.me && !r.fenced)
}
