package smsfold.bench.streams;

import com.google.protobuf.InvalidProtocolBufferException;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import smsfold.v1.MessageEvents.Channel;
import smsfold.v1.MessageEvents.InboundMessage;
import smsfold.v1.MessageEvents.MessageAccepted;
import smsfold.v1.MessageEvents.MessageEvent;
import smsfold.v1.MessageEvents.ReceiptOutcome;
import smsfold.v1.StatusChanges.MessageStatus;
import smsfold.v1.StatusChanges.MessageStatusChanged;

/**
 * The message fold, with the rules of smsfold's (docs/folds.md). Each
 * message keeps the highest-ranked status reported for it. The same status
 * reported again keeps the earliest time and its error code. Only a move to
 * a higher rank publishes a change.
 *
 * <p>It forwards two kinds of records, told apart by their first byte: a
 * message status change keyed by message id ({@link StageRecord#MESSAGE_CHANGE}),
 * and a message update keyed by campaign id for the campaign fold
 * ({@link StageRecord#MESSAGE_UPDATE}).
 *
 * <p>Left out, because the compared workload has none of them: campaign
 * cancellations (smsfold cancels the campaign's unsent messages on every
 * partition), the dead-letter topic (an invalid, conflicting or mis-keyed
 * event is counted and skipped here), JSON input and retention.
 */
final class MessageFoldProcessor implements Processor<String, byte[], String, byte[]> {
    static final String STORE = "messages";
    private static final Logger LOG = LoggerFactory.getLogger(MessageFoldProcessor.class);

    private ProcessorContext<String, byte[]> context;
    private KeyValueStore<String, byte[]> messages;
    private long skipped;

    @Override
    public void init(ProcessorContext<String, byte[]> context) {
        this.context = context;
        this.messages = context.getStateStore(STORE);
    }

    @Override
    public void process(Record<String, byte[]> record) {
        MessageEvent event;
        try {
            event = MessageEvent.parseFrom(record.value());
        } catch (InvalidProtocolBufferException e) {
            skip("invalid protobuf", record.key());
            return;
        }
        if (!event.getMessageId().equals(record.key())) {
            skip("key mismatch", record.key());
            return;
        }

        // The event's status, error code and message attributes.
        int status;
        int errorCode = 0;
        String campaignId = "";
        int segments = 0;
        boolean mms = false;
        boolean hasAttributes = false;
        switch (event.getKindCase()) {
            case ACCEPTED -> {
                MessageAccepted accepted = event.getAccepted();
                status = Statuses.ACCEPTED;
                hasAttributes = true;
                campaignId = accepted.getCampaignId();
                segments = segmentsOrOne(accepted.getSegments());
                mms = accepted.getChannel() == Channel.CHANNEL_MMS;
            }
            case SCHEDULED -> status = Statuses.SCHEDULED;
            case QUEUED -> status = Statuses.QUEUED;
            case SENDING -> status = Statuses.SENDING;
            case SENT -> status = Statuses.SENT;
            case FAILED -> {
                status = Statuses.FAILED;
                errorCode = event.getFailed().getErrorCode();
            }
            case DELIVERY_RECEIPT -> {
                ReceiptOutcome outcome = event.getDeliveryReceipt().getOutcome();
                if (outcome == ReceiptOutcome.RECEIPT_OUTCOME_DELIVERED) {
                    status = Statuses.DELIVERED;
                } else if (outcome == ReceiptOutcome.RECEIPT_OUTCOME_UNDELIVERED) {
                    status = Statuses.UNDELIVERED;
                } else {
                    skip("invalid receipt outcome", record.key());
                    return;
                }
                errorCode = event.getDeliveryReceipt().getErrorCode();
            }
            case CANCELED -> status = Statuses.CANCELED;
            case INBOUND_RECEIVING, INBOUND_RECEIVED -> {
                InboundMessage inbound = event.getKindCase() == MessageEvent.KindCase.INBOUND_RECEIVING
                        ? event.getInboundReceiving().getMessage()
                        : event.getInboundReceived().getMessage();
                status = event.getKindCase() == MessageEvent.KindCase.INBOUND_RECEIVING
                        ? Statuses.RECEIVING : Statuses.RECEIVED;
                hasAttributes = true;
                segments = segmentsOrOne(inbound.getSegments());
                mms = inbound.getChannel() == Channel.CHANNEL_MMS;
            }
            default -> {
                skip("unknown kind", record.key());
                return;
            }
        }
        long at = Statuses.millis(event.getOccurredAt());

        byte[] stored = messages.get(record.key());
        if (stored == null) {
            MessageState state = new MessageState(status, at, errorCode, segments, mms, campaignId);
            messages.put(record.key(), state.encode());
            forwardChange(record, event, Statuses.NONE, state, errorCode);
            if (!campaignId.isEmpty()) {
                forwardUpdate(record, event, state);
            }
            return;
        }

        // Check every contradiction before changing anything.
        MessageState state = MessageState.decode(stored);
        if (Statuses.isInbound(state.status) != Statuses.isInbound(status)) {
            skip("direction conflict", record.key());
            return;
        }
        if (!campaignId.isEmpty() && !state.campaignId.isEmpty() && !state.campaignId.equals(campaignId)) {
            skip("campaign conflict", record.key());
            return;
        }

        int previous = state.status;
        long previousAt = state.statusAt;
        int previousError = state.errorCode;
        int previousSegments = state.segments;
        boolean previousMms = state.mms;
        boolean linked = false;
        if (hasAttributes) {
            if (state.campaignId.isEmpty() && !campaignId.isEmpty()) {
                state.campaignId = campaignId;
                linked = true;
            }
            state.segments = Math.max(state.segments, segments);
            state.mms |= mms;
        }
        boolean moved = status > previous;
        if (moved) {
            state.status = status;
            state.statusAt = at;
            state.errorCode = errorCode;
        } else if (status == previous && (at < previousAt || (at == previousAt
                && Integer.compareUnsigned(errorCode, previousError) < 0))) {
            // The same status reported again with an earlier time: keep the
            // earliest, so the result does not depend on arrival order.
            state.statusAt = at;
            state.errorCode = errorCode;
        }

        boolean segmentsGrew = state.segments != previousSegments;
        boolean unchanged = !moved && !linked && !segmentsGrew && state.statusAt == previousAt
                && state.errorCode == previousError && state.mms == previousMms;
        if (unchanged) {
            return;
        }
        messages.put(record.key(), state.encode());
        if (moved) {
            forwardChange(record, event, previous, state, errorCode);
        }
        if (!state.campaignId.isEmpty() && (moved || linked || segmentsGrew)) {
            forwardUpdate(record, event, state);
        }
    }

    private void forwardChange(Record<String, byte[]> record, MessageEvent event, int previous, MessageState state,
            int errorCode) {
        MessageStatusChanged.Builder change = MessageStatusChanged.newBuilder()
                .setMessageId(event.getMessageId())
                .setCampaignId(state.campaignId)
                .setPreviousStatus(MessageStatus.forNumber(previous))
                .setStatus(MessageStatus.forNumber(state.status))
                .setOccurredAt(Statuses.timestamp(Statuses.millis(event.getOccurredAt())))
                .setCauseEventId(event.getEventId())
                .setErrorCode(errorCode);
        byte[] value = StageRecord.tagged(StageRecord.MESSAGE_CHANGE, change.build().toByteArray());
        context.forward(record.withKey(event.getMessageId()).withValue(value));
    }

    private void forwardUpdate(Record<String, byte[]> record, MessageEvent event, MessageState state) {
        StageRecord update = new StageRecord(event.getMessageId(), state.status, state.segments, state.statusAt,
                event.getEventId());
        context.forward(record.withKey(state.campaignId).withValue(update.encode()));
    }

    private static int segmentsOrOne(int segments) {
        return segments == 0 ? 1 : Math.min(segments, 65_535);
    }

    private void skip(String reason, String key) {
        skipped++;
        // One line per thousand, so a flood of bad records does not flood the log.
        if (skipped % 1000 == 1) {
            LOG.warn("skipped a message event: {} (key {}); {} skipped so far", reason, key, skipped);
        }
    }
}
