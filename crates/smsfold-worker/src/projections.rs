//! The projections one worker holds: a message fold per owned partition of
//! the message events topic and a campaign fold per owned partition of the
//! internal campaign stage topic.

use std::collections::HashMap;

use smsfold_domain::{CampaignFold, CampaignProjection, CampaignStatus, MessageFold, MessageProjection};

#[derive(Debug, Default)]
pub struct Projections {
    /// Keyed by partition of the message events topic (and of the message
    /// commands topic, which has the same partitions).
    pub messages: HashMap<i32, MessageFold>,
    /// Keyed by partition of the campaign stage topic.
    pub campaigns: HashMap<i32, CampaignFold>,
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
