//! One type for every kind of node, so a driver can host any of them the same way.

use super::controller_quorum::QuorumController;
use super::quorum::{QuorumClient, QuorumNode};
use super::{
    Admin, Broker, BrokerImage, Consumer, Context, Controller, ControllerImage, DiskOp, Producer,
    QuorumImage, Reader, Timer,
};
use crate::log::LogError;
use crate::protocol::{Message, NodeId};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AnyNode {
    Broker(Broker),
    Controller(Controller),
    Producer(Producer),
    Reader(Reader),
    /// Boxed: the largest client by far, and rarely in a model.
    Consumer(Box<Consumer>),
    /// A controller-quorum voter (standalone for now: no driver but the model checker hosts it).
    Quorum(QuorumNode),
    QuorumClient(QuorumClient),
    /// A controller that is a quorum voter (boxed: it holds a voter, the metadata and, active,
    /// a whole controller).
    QuorumController(Box<QuorumController>),
    /// Creates topics (the simulator's admin client).
    Admin(Admin),
}

impl AnyNode {
    pub fn on_start(&mut self, cx: &mut Context) {
        match self {
            AnyNode::Broker(n) => n.on_start(cx),
            AnyNode::Controller(n) => n.on_start(cx),
            AnyNode::Producer(n) => n.on_start(cx),
            AnyNode::Reader(n) => n.on_start(cx),
            AnyNode::Consumer(n) => n.on_start(cx),
            AnyNode::Quorum(n) => n.on_start(cx),
            AnyNode::QuorumClient(n) => n.on_start(cx),
            AnyNode::QuorumController(n) => n.on_start(cx),
            AnyNode::Admin(n) => n.on_start(cx),
        }
    }

    pub fn on_message(&mut self, cx: &mut Context, from: NodeId, message: Message) {
        match self {
            AnyNode::Broker(n) => n.on_message(cx, from, message),
            AnyNode::Controller(n) => n.on_message(cx, from, message),
            AnyNode::Producer(n) => n.on_message(cx, from, message),
            AnyNode::Reader(n) => n.on_message(cx, from, message),
            AnyNode::Consumer(n) => n.on_message(cx, from, message),
            AnyNode::Quorum(n) => n.on_message(cx, from, message),
            AnyNode::QuorumClient(n) => n.on_message(cx, from, message),
            AnyNode::QuorumController(n) => n.on_message(cx, from, message),
            AnyNode::Admin(n) => n.on_message(cx, from, message),
        }
    }

    pub fn on_timer(&mut self, cx: &mut Context, timer: Timer) {
        match self {
            AnyNode::Broker(n) => n.on_timer(cx, timer),
            AnyNode::Controller(n) => n.on_timer(cx, timer),
            AnyNode::Producer(n) => n.on_timer(cx, timer),
            AnyNode::Reader(n) => n.on_timer(cx, timer),
            AnyNode::Consumer(n) => n.on_timer(cx, timer),
            AnyNode::Quorum(n) => n.on_timer(cx, timer),
            AnyNode::QuorumClient(n) => n.on_timer(cx, timer),
            AnyNode::QuorumController(n) => n.on_timer(cx, timer),
            AnyNode::Admin(n) => n.on_timer(cx, timer),
        }
    }

    pub fn on_persisted(&mut self, cx: &mut Context, token: u64) {
        match self {
            AnyNode::Broker(n) => n.on_persisted(cx, token),
            AnyNode::Controller(n) => n.on_persisted(cx, token),
            AnyNode::Quorum(n) => n.on_persisted(cx, token),
            AnyNode::QuorumController(n) => n.on_persisted(cx, token),
            AnyNode::Producer(_)
            | AnyNode::Reader(_)
            | AnyNode::Consumer(_)
            | AnyNode::QuorumClient(_)
            | AnyNode::Admin(_) => {}
        }
    }

    /// The node's own invariants (clients have none of their own: the history checker holds
    /// them to account).
    pub fn check_invariants(&self) -> crate::log::Checked {
        match self {
            AnyNode::Broker(n) => n.check_invariants(),
            AnyNode::Controller(n) => n.check_invariants(),
            AnyNode::Quorum(n) => n.check_invariants(),
            AnyNode::QuorumController(n) => n.check_invariants(),
            AnyNode::Producer(_)
            | AnyNode::Reader(_)
            | AnyNode::Consumer(_)
            | AnyNode::QuorumClient(_)
            | AnyNode::Admin(_) => Ok(()),
        }
    }

    pub fn as_broker(&self) -> Option<&Broker> {
        match self {
            AnyNode::Broker(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_consumer(&self) -> Option<&Consumer> {
        match self {
            AnyNode::Consumer(c) => Some(c),
            _ => None,
        }
    }

    /// A broker or a controller: a node of the cluster rather than one of its clients.
    pub fn is_cluster_node(&self) -> bool {
        matches!(
            self,
            AnyNode::Broker(_)
                | AnyNode::Controller(_)
                | AnyNode::Quorum(_)
                | AnyNode::QuorumController(_)
        )
    }

    pub fn as_quorum(&self) -> Option<&QuorumNode> {
        match self {
            AnyNode::Quorum(q) => Some(q),
            _ => None,
        }
    }

    pub fn as_quorum_controller(&self) -> Option<&QuorumController> {
        match self {
            AnyNode::QuorumController(c) => Some(c),
            _ => None,
        }
    }

    pub fn as_controller(&self) -> Option<&Controller> {
        match self {
            AnyNode::Controller(c) => Some(c),
            _ => None,
        }
    }

    /// `disk-matches-memory`: `image`, what this node's disk replays to now (page cache
    /// included), rebuilds the state it runs with (`Broker::check_disk_image`,
    /// `QuorumNode::check_disk_image`). An empty disk stands for an empty image of the node's
    /// kind; a disk holding another kind of image is itself a violation. The single
    /// (unreplicated) controller is not compared: its image is its whole state, written whole.
    pub fn check_disk_image(&self, image: &Image) -> crate::log::Checked {
        let voter = self
            .as_quorum()
            .or_else(|| self.as_quorum_controller().map(|c| c.quorum()));
        match (self, voter, image) {
            (AnyNode::Broker(b), _, Image::Broker(d)) => b.check_disk_image(d),
            (AnyNode::Broker(b), _, Image::Empty) => b.check_disk_image(&BrokerImage::default()),
            (_, Some(q), Image::Quorum(d)) => q.check_disk_image(d),
            (_, Some(q), Image::Empty) => q.check_disk_image(&QuorumImage::default()),
            (AnyNode::Controller(_), _, Image::Controller(_) | Image::Empty) => Ok(()),
            (AnyNode::Broker(_), ..) | (AnyNode::Controller(_), ..) | (_, Some(_), _) => {
                Err(crate::log::Violation::new(
                    "disk-matches-memory",
                    format!("the disk holds {}", image.kind()),
                ))
            }
            // Clients keep nothing on disk.
            _ => Ok(()),
        }
    }
}

/// A node's disk image: what `Persist` effects build and what the node recovers from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Image {
    /// Clients keep nothing on disk.
    #[default]
    Empty,
    Broker(BrokerImage),
    Controller(ControllerImage),
    Quorum(QuorumImage),
}

impl Image {
    /// What kind of image this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Image::Empty => "no image",
            Image::Broker(_) => "a broker's image",
            Image::Controller(_) => "a controller's image",
            Image::Quorum(_) => "a quorum voter's image",
        }
    }

    pub fn apply(&mut self, op: &DiskOp) -> Result<(), LogError> {
        match (self, op) {
            (Image::Controller(c), _) => {
                c.apply(op);
                Ok(())
            }
            (Image::Broker(b), _) => b.apply(op),
            (Image::Quorum(q), _) => {
                q.apply(op);
                Ok(())
            }
            (
                img @ Image::Empty,
                DiskOp::QuorumElection { .. }
                | DiskOp::QuorumAppend { .. }
                | DiskOp::QuorumTruncate { .. }
                | DiskOp::QuorumSnapshot { .. }
                | DiskOp::QuorumInstallSnapshot { .. },
            ) => {
                let mut q = QuorumImage::default();
                q.apply(op);
                *img = Image::Quorum(q);
                Ok(())
            }
            (img @ Image::Empty, DiskOp::ControllerState(_) | DiskOp::ControllerStateV1(_)) => {
                let mut c = ControllerImage::default();
                c.apply(op);
                *img = Image::Controller(c);
                Ok(())
            }
            (img @ Image::Empty, _) => {
                let mut b = BrokerImage::default();
                b.apply(op)?;
                *img = Image::Broker(b);
                Ok(())
            }
        }
    }
}
