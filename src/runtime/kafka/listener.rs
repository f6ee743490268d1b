//! The Kafka listener's socket: accepts connections and serves each on a task of its own.

use super::conn::{self, Shared};
use crate::protocol::NodeId;
use crate::runtime::net::Net;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Where this broker's Kafka listener binds, and every broker's Kafka address as Metadata
/// advertises it (by broker id).
#[derive(Clone, Debug)]
pub struct KafkaLayout {
    pub listen: SocketAddr,
    pub advertised: BTreeMap<NodeId, SocketAddr>,
}

/// Binds the listener of broker `me` (whose driver `net` feeds) and serves it in the background;
/// returns the bound address.
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
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    // Small responses (acks, empty fetches) must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        if let Err(conn::Close(why)) = conn::serve(shared, stream).await {
                            tracing::info!("kafka: closing the connection from {peer}: {why}");
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
