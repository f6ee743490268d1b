//! Where the nodes of a cluster listen. Brokers are numbered by their position in `--brokers`;
//! the controller has the fixed id 100 (ids of clients start at 1000).

use anyhow::{bail, Context as _};
use seedlog::runtime::net::AddressBook;
use std::net::SocketAddr;

pub const CONTROLLER_ID: u32 = 100;

#[derive(clap::Args, Debug, Clone)]
pub struct LayoutArgs {
    /// The brokers' addresses, comma-separated; broker i is the i-th (0-based).
    #[arg(long, value_delimiter = ',', required = true)]
    pub brokers: Vec<SocketAddr>,
    /// The controller's address.
    #[arg(long)]
    pub controller: Option<SocketAddr>,
}

impl LayoutArgs {
    pub fn address_book(&self) -> AddressBook {
        let mut book: AddressBook = self
            .brokers
            .iter()
            .enumerate()
            .map(|(i, a)| (i as u32, *a))
            .collect();
        if let Some(c) = self.controller {
            book.insert(CONTROLLER_ID, c);
        }
        book
    }

    pub fn broker_ids(&self) -> Vec<u32> {
        (0..self.brokers.len() as u32).collect()
    }

    pub fn controller_addr(&self) -> anyhow::Result<SocketAddr> {
        self.controller.context("--controller is required here")
    }
}

/// A topic given as `name:partitions:replication`.
#[derive(Debug, Clone)]
pub struct TopicArg {
    pub name: String,
    pub partitions: u32,
    pub replication: usize,
}

impl std::str::FromStr for TopicArg {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        let [name, partitions, replication] = parts[..] else {
            bail!("expected name:partitions:replication, got '{s}'");
        };
        if name.is_empty() {
            bail!("the topic name is empty in '{s}'");
        }
        let partitions: u32 = partitions
            .parse()
            .with_context(|| format!("bad partition count in '{s}'"))?;
        let replication: usize = replication
            .parse()
            .with_context(|| format!("bad replication factor in '{s}'"))?;
        if partitions == 0 || replication == 0 {
            bail!("partitions and replication must be at least 1 in '{s}'");
        }
        Ok(TopicArg {
            name: name.to_string(),
            partitions,
            replication,
        })
    }
}

/// Milliseconds since the Unix epoch: real mode's clock for record timestamps and retention.
pub fn wall_clock() -> seedlog::runtime::driver::Clock {
    std::sync::Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    })
}
