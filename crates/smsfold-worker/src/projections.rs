//! The projections one worker holds: a message fold per owned partition of
//! the message events topic, a campaign fold per owned partition of the
//! internal campaign stage topic, and a carrier join per owned partition of
//! the internal carrier join topic.

use std::collections::HashMap;

use smsfold_domain::{CampaignFold, CampaignProjection, CampaignStatus, MessageFold, MessageProjection, Segment};
use smsfold_smpp::{CarrierJoin, LinkData};
use smsfold_wire::carrier_join::PendingReceiptRecord;

/// The message segment a carrier link points at. The join stores it as
/// bytes ([`LinkData`]) and builds it again for a matched receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkTarget {
    pub message_id: Box<str>,
    pub segment: Segment,
    /// The message's partition of the message events and message commands
    /// topics.
    pub message_partition: i32,
}

/// Writes the message id packed, so its hexadecimal digits take half a byte
/// each, and the numbers as LEB128, one byte each for most values.
impl LinkData for LinkTarget {
    fn write_to(&self, out: &mut Vec<u8>) {
        self.message_id.write_to(out);
        self.segment.index.write_to(out);
        self.segment.count.write_to(out);
        self.message_partition.write_to(out);
    }

    fn read_from(bytes: &mut &[u8]) -> Self {
        let message_id = Box::<str>::read_from(bytes);
        let segment = Segment { index: u16::read_from(bytes), count: u16::read_from(bytes) };
        let message_partition = i32::read_from(bytes);
        LinkTarget { message_id, segment, message_partition }
    }
}

/// The carrier join state of one partition.
pub type CarrierFold = CarrierJoin<LinkTarget, PendingReceiptRecord>;

#[derive(Debug, Default)]
pub struct Projections {
    /// Keyed by partition of the message events topic (and of the message
    /// commands topic, which has the same partitions).
    pub messages: HashMap<i32, MessageFold>,
    /// Keyed by partition of the campaign stage topic.
    pub campaigns: HashMap<i32, CampaignFold>,
    /// Keyed by partition of the carrier join topic.
    pub carriers: HashMap<i32, CarrierFold>,
}

impl Projections {
    /// Returns one message's projection if a fold of this worker contains it.
    pub fn message(&self, message_id: &str) -> Option<MessageProjection> {
        self.messages.values().find_map(|fold| fold.get(message_id))
    }

    /// Returns one campaign's projection if a fold of this worker contains it.
    pub fn campaign(&self, campaign_id: &str) -> Option<CampaignProjection> {
        self.campaigns.values().find_map(|fold| fold.get(campaign_id))
    }

    /// Returns every campaign this worker holds.
    pub fn campaign_projections(&self) -> Vec<CampaignProjection> {
        self.campaigns.values().flat_map(CampaignFold::projections).collect()
    }

    /// Returns every message this worker holds.
    pub fn message_projections(&self) -> Vec<MessageProjection> {
        self.messages.values().flat_map(MessageFold::projections).collect()
    }

    pub fn live_messages(&self) -> usize {
        self.messages.values().map(MessageFold::len).sum()
    }

    /// Returns the receipts waiting for their sent event and the carrier
    /// links, over every carrier join partition of this worker.
    pub fn carrier_join_sizes(&self) -> (usize, usize) {
        self.carriers.values().fold((0, 0), |(pending, links), join| {
            let (join_links, join_pending) = join.len();
            (pending + join_pending, links + join_links)
        })
    }

    /// Counts campaigns per status; campaigns with no lifecycle event yet are
    /// left out.
    pub fn campaigns_by_status(&self) -> [(CampaignStatus, usize); 5] {
        let mut counts = CampaignStatus::ALL.map(|status| (status, 0));
        for projection in self.campaigns.values().flat_map(CampaignFold::projections) {
            if let Some(status) = projection.status {
                counts[status as usize - 1].1 += 1;
            }
        }
        counts
    }
}
