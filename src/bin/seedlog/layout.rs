//! Where the nodes of a cluster listen. Brokers are numbered by their position in `--brokers`
//! (ids 0-99); controllers by their position in `--controllers`, from 100 (ids of clients start
//! at 1000). Clients talk only to brokers, so they take `--brokers` alone.

use anyhow::{bail, Context as _};
use seedlog::runtime::net::AddressBook;
use std::net::SocketAddr;

/// The id of the first controller in `--controllers`; the i-th has `FIRST_CONTROLLER_ID + i`.
pub const FIRST_CONTROLLER_ID: u32 = 100;
/// Client ids start here, so a cluster has at most this many controllers.
pub const FIRST_CLIENT_ID: u32 = 1_000;

/// The brokers' addresses: all a client needs.
#[derive(clap::Args, Debug, Clone)]
pub struct BrokersArgs {
    /// The brokers' addresses, comma-separated; broker i is the i-th (0-based).
    #[arg(long, value_delimiter = ',', required = true)]
    pub brokers: Vec<SocketAddr>,
}

impl BrokersArgs {
    pub fn address_book(&self) -> AddressBook {
        self.brokers
            .iter()
            .enumerate()
            .map(|(i, a)| (i as u32, *a))
            .collect()
    }

    pub fn broker_ids(&self) -> Vec<u32> {
        (0..self.brokers.len() as u32).collect()
    }
}

/// Brokers and controllers: what a broker or a controller needs.
#[derive(clap::Args, Debug, Clone)]
pub struct LayoutArgs {
    #[command(flatten)]
    pub brokers: BrokersArgs,
    /// The controller quorum's addresses, comma-separated; the i-th (0-based) is controller
    /// 100 + i. Every node gets the same list. One address is a quorum of one; three tolerate
    /// one controller down, five two.
    #[arg(long, value_delimiter = ',', required = true)]
    pub controllers: Vec<SocketAddr>,
}

impl LayoutArgs {
    /// Refuses layouts whose ids would collide (a broker id reaching the controllers', a
    /// controller id reaching the clients') or that name one address twice.
    pub fn check(&self) -> anyhow::Result<()> {
        let brokers = self.brokers.brokers.len();
        if brokers > FIRST_CONTROLLER_ID as usize {
            bail!(
                "--brokers lists {brokers} addresses; at most {FIRST_CONTROLLER_ID} (ids 0-{})",
                FIRST_CONTROLLER_ID - 1
            );
        }
        let most = (FIRST_CLIENT_ID - FIRST_CONTROLLER_ID) as usize;
        if self.controllers.len() > most {
            bail!(
                "--controllers lists {} addresses; at most {most}",
                self.controllers.len()
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for a in self.brokers.brokers.iter().chain(&self.controllers) {
            if !seen.insert(a) {
                bail!("the address {a} is given twice in --brokers and --controllers");
            }
        }
        Ok(())
    }

    pub fn address_book(&self) -> AddressBook {
        let mut book = self.brokers.address_book();
        book.extend(
            self.controller_ids()
                .into_iter()
                .zip(self.controllers.iter().copied()),
        );
        book
    }

    pub fn broker_ids(&self) -> Vec<u32> {
        self.brokers.broker_ids()
    }

    pub fn controller_ids(&self) -> Vec<u32> {
        (FIRST_CONTROLLER_ID..)
            .take(self.controllers.len())
            .collect()
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
