package smsfold.bench.streams;

import com.google.protobuf.InvalidProtocolBufferException;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import smsfold.v1.CampaignEvents.CampaignEvent;
import smsfold.v1.StatusChanges.CampaignCounts;
import smsfold.v1.StatusChanges.CampaignStatus;
import smsfold.v1.StatusChanges.CampaignStatusChanged;

/**
 * The campaign fold, the same rules as smsfold's (docs/folds.md): a campaign
 * goes Draft, Scheduled, Sending, then Completed as soon as the dispatched
 * count of its messages are sent or final, or Cancelled before that. It
 * counts its messages per status, their segments and billable segments.
 * Only a status change is published, with the counts at that moment.
 */
final class CampaignFoldProcessor implements Processor<String, byte[], String, byte[]> {
    static final String STORE = "campaigns";
    static final String MESSAGES_STORE = "campaign-messages";
    private static final Logger LOG = LoggerFactory.getLogger(CampaignFoldProcessor.class);

    private ProcessorContext<String, byte[]> context;
    private KeyValueStore<String, byte[]> campaigns;
    /** Status and segments of each campaign message, keyed by campaign id, NUL, message id. */
    private KeyValueStore<String, byte[]> campaignMessages;
    private long skipped;

    /** A status change and its counts, before it is published. */
    private record Change(int previous, int status, long at, CampaignState counts) {}

    @Override
    public void init(ProcessorContext<String, byte[]> context) {
        this.context = context;
        this.campaigns = context.getStateStore(STORE);
        this.campaignMessages = context.getStateStore(MESSAGES_STORE);
    }

    @Override
    public void process(Record<String, byte[]> record) {
        byte[] value = record.value();
        if (value == null || value.length == 0) {
            skip("empty value", record.key());
            return;
        }
        byte[] stored = campaigns.get(record.key());
        CampaignState campaign = stored == null ? new CampaignState() : CampaignState.decode(stored);
        if (value[0] == StageRecord.MESSAGE_UPDATE) {
            recordUpdate(record, campaign, StageRecord.decode(value));
        } else if (value[0] == StageRecord.CAMPAIGN_EVENT) {
            applyEvent(record, campaign, value);
        } else {
            skip("unknown record tag", record.key());
        }
    }

    private void recordUpdate(Record<String, byte[]> record, CampaignState campaign, StageRecord update) {
        String key = record.key() + '\0' + update.messageId;
        byte[] entry = campaignMessages.get(key);
        if (entry == null) {
            campaign.add(update.status, update.segments);
        } else {
            int known = entry[0];
            int knownSegments = Short.toUnsignedInt((short) (((entry[1] & 0xff) << 8) | (entry[2] & 0xff)));
            int status = Math.max(known, update.status);
            int segments = Math.max(knownSegments, update.segments);
            if (status == known && segments == knownSegments) {
                return;
            }
            campaign.remove(known, knownSegments);
            campaign.add(status, segments);
            update = new StageRecord(update.messageId, status, segments, update.statusAt, update.causeEventId);
        }
        campaignMessages.put(key, new byte[] {(byte) update.status, (byte) (update.segments >> 8), (byte) update.segments});
        Change change = completeIfDone(campaign, update.statusAt);
        campaigns.put(record.key(), campaign.encode());
        publish(record, change, update.causeEventId);
    }

    private void applyEvent(Record<String, byte[]> record, CampaignState campaign, byte[] value) {
        CampaignEvent event;
        try {
            event = CampaignEvent.parseFrom(java.nio.ByteBuffer.wrap(value, 1, value.length - 1));
        } catch (InvalidProtocolBufferException e) {
            skip("invalid protobuf", record.key());
            return;
        }
        if (!event.getCampaignId().equals(record.key())) {
            skip("key mismatch", record.key());
            return;
        }
        long at = Statuses.millis(event.getOccurredAt());
        Change change;
        switch (event.getKindCase()) {
            case CREATED -> {
                campaign.accountId = event.getCreated().getAccountId();
                campaign.name = event.getCreated().getName();
                change = advance(campaign, Statuses.DRAFT, at);
            }
            case SCHEDULED -> {
                campaign.sendAt = Statuses.millis(event.getScheduled().getSendAt());
                change = advance(campaign, Statuses.CAMPAIGN_SCHEDULED, at);
            }
            case STARTED_SENDING -> {
                campaign.recipients = event.getStartedSending().getRecipients();
                change = merge(advance(campaign, Statuses.CAMPAIGN_SENDING, at), completeIfDone(campaign, at));
            }
            case CANCELLED -> {
                if (campaign.status == Statuses.COMPLETED) {
                    skip("cancellation of a completed campaign", record.key());
                    return;
                }
                change = advance(campaign, Statuses.CANCELLED, at);
            }
            case DISPATCH_FINISHED -> {
                campaign.dispatched = event.getDispatchFinished().getDispatched();
                change = merge(advance(campaign, Statuses.CAMPAIGN_SENDING, at), completeIfDone(campaign, at));
            }
            default -> {
                skip("unknown kind", record.key());
                return;
            }
        }
        campaigns.put(record.key(), campaign.encode());
        publish(record, change, event.getEventId());
    }

    /** Moves the campaign forward to {@code status}, unless it is final or already there or beyond. */
    private static Change advance(CampaignState campaign, int status, long at) {
        int previous = campaign.status;
        if (previous != Statuses.NONE && (Statuses.isFinalCampaign(previous) || previous >= status)) {
            return null;
        }
        campaign.status = status;
        campaign.statusAt = at;
        return new Change(previous, status, at, campaign);
    }

    /** Completes the campaign once its dispatched count of messages are sent or final. */
    private static Change completeIfDone(CampaignState campaign, long at) {
        if (campaign.dispatched == CampaignState.ABSENT || campaign.settled() < campaign.dispatched) {
            return null;
        }
        // Completion never goes back before the current status time.
        long completedAt = campaign.status == Statuses.NONE ? at : Math.max(campaign.statusAt, at);
        return advance(campaign, Statuses.COMPLETED, completedAt);
    }

    private static Change merge(Change first, Change second) {
        if (first != null && second != null) {
            return new Change(first.previous(), second.status(), second.at(), second.counts());
        }
        return first != null ? first : second;
    }

    private void publish(Record<String, byte[]> record, Change change, String causeEventId) {
        if (change == null) {
            return;
        }
        CampaignState counts = change.counts();
        long delivered = counts.byStatus[Statuses.DELIVERED];
        long outcomes = delivered + counts.byStatus[Statuses.UNDELIVERED] + counts.byStatus[Statuses.FAILED];
        CampaignCounts.Builder published = CampaignCounts.newBuilder()
                .setAccepted(counts.byStatus[Statuses.ACCEPTED])
                .setScheduled(counts.byStatus[Statuses.SCHEDULED])
                .setQueued(counts.byStatus[Statuses.QUEUED])
                .setSending(counts.byStatus[Statuses.SENDING])
                .setSent(counts.byStatus[Statuses.SENT])
                .setCanceled(counts.byStatus[Statuses.CANCELED])
                .setFailed(counts.byStatus[Statuses.FAILED])
                .setUndelivered(counts.byStatus[Statuses.UNDELIVERED])
                .setDelivered(delivered)
                .setMessages(counts.messages())
                .setSegments(counts.segments)
                .setBillableSegments(counts.billableSegments)
                .setRecipients(Math.max(counts.recipients, 0))
                .setDispatched(Math.max(counts.dispatched, 0))
                .setDeliveryRate(outcomes == 0 ? 0.0 : (double) delivered / outcomes);
        CampaignStatusChanged changed = CampaignStatusChanged.newBuilder()
                .setCampaignId(record.key())
                .setPreviousStatus(CampaignStatus.forNumber(change.previous()))
                .setStatus(CampaignStatus.forNumber(change.status()))
                .setOccurredAt(Statuses.timestamp(change.at()))
                .setCauseEventId(causeEventId)
                .setCounts(published)
                .build();
        context.forward(record.withValue(changed.toByteArray()));
    }

    private void skip(String reason, String key) {
        skipped++;
        if (skipped % 1000 == 1) {
            LOG.warn("skipped a campaign stage record: {} (key {}); {} skipped so far", reason, key, skipped);
        }
    }
}
