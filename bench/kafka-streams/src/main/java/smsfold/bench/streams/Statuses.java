package smsfold.bench.streams;

/**
 * Message and campaign statuses as the numbers of the protobuf enums
 * {@code smsfold.v1.MessageStatus} and {@code CampaignStatus}. For messages
 * the number is also the rank: a message only moves to a higher number.
 */
final class Statuses {
    static final int NONE = 0;

    static final int ACCEPTED = 1;
    static final int SCHEDULED = 2;
    static final int QUEUED = 3;
    static final int SENDING = 4;
    static final int SENT = 5;
    static final int CANCELED = 6;
    static final int FAILED = 7;
    static final int UNDELIVERED = 8;
    static final int DELIVERED = 9;
    static final int RECEIVING = 10;
    static final int RECEIVED = 11;

    static final int DRAFT = 1;
    static final int CAMPAIGN_SCHEDULED = 2;
    static final int CAMPAIGN_SENDING = 3;
    static final int COMPLETED = 4;
    static final int CANCELLED = 5;

    static final String[] MESSAGE_NAMES = {
        "none", "accepted", "scheduled", "queued", "sending", "sent", "canceled", "failed", "undelivered",
        "delivered", "receiving", "received",
    };
    static final String[] CAMPAIGN_NAMES = {"none", "draft", "scheduled", "sending", "completed", "cancelled"};

    private Statuses() {}

    static boolean isInbound(int status) {
        return status == RECEIVING || status == RECEIVED;
    }

    static boolean isFinal(int status) {
        return status == CANCELED || status == FAILED || status == UNDELIVERED || status == DELIVERED
                || status == RECEIVED;
    }

    /** Sent or final: what a campaign waits for before it completes. */
    static boolean isSettled(int status) {
        return status == SENT || isFinal(status);
    }

    /** Sent, undelivered and delivered messages are charged per segment. */
    static boolean isBillable(int status) {
        return status == SENT || status == UNDELIVERED || status == DELIVERED;
    }

    static boolean isFinalCampaign(int status) {
        return status == COMPLETED || status == CANCELLED;
    }

    static long millis(com.google.protobuf.Timestamp timestamp) {
        return timestamp.getSeconds() * 1000 + timestamp.getNanos() / 1_000_000;
    }

    static com.google.protobuf.Timestamp timestamp(long millis) {
        return com.google.protobuf.Timestamp.newBuilder()
                .setSeconds(Math.floorDiv(millis, 1000))
                .setNanos((int) Math.floorMod(millis, 1000) * 1_000_000)
                .build();
    }
}
