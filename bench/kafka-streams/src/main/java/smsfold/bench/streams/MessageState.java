package smsfold.bench.streams;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The live state of one message, as stored in the {@code messages} store:
 * 18 bytes plus the campaign id.
 */
final class MessageState {
    int status;
    /** When the current status happened: the earliest time reported for it. */
    long statusAt;
    int errorCode;
    int segments;
    boolean mms;
    /** Empty while the message belongs to no known campaign. */
    String campaignId;

    MessageState(int status, long statusAt, int errorCode, int segments, boolean mms, String campaignId) {
        this.status = status;
        this.statusAt = statusAt;
        this.errorCode = errorCode;
        this.segments = segments;
        this.mms = mms;
        this.campaignId = campaignId;
    }

    byte[] encode() {
        byte[] campaign = campaignId.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buffer = ByteBuffer.allocate(18 + campaign.length);
        buffer.put((byte) status).put((byte) (mms ? 1 : 0)).putShort((short) segments).putInt(errorCode)
                .putLong(statusAt).putShort((short) campaign.length).put(campaign);
        return buffer.array();
    }

    static MessageState decode(byte[] bytes) {
        ByteBuffer buffer = ByteBuffer.wrap(bytes);
        int status = buffer.get();
        boolean mms = buffer.get() != 0;
        int segments = Short.toUnsignedInt(buffer.getShort());
        int errorCode = buffer.getInt();
        long statusAt = buffer.getLong();
        int length = Short.toUnsignedInt(buffer.getShort());
        String campaignId = new String(bytes, buffer.position(), length, StandardCharsets.UTF_8);
        return new MessageState(status, statusAt, errorCode, segments, mms, campaignId);
    }
}
