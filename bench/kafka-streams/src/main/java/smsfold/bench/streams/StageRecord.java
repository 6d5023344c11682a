package smsfold.bench.streams;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The values of the campaign stage repartition topic, keyed by campaign id:
 * a campaign event as it arrived, or a message update that carries the
 * message's current status (not a difference), so a repeated update never
 * counts a message twice. The first byte is the tag that marks the kind.
 */
final class StageRecord {
    static final byte CAMPAIGN_EVENT = 'C';
    static final byte MESSAGE_UPDATE = 'U';
    /** Marks a message status change on its way out of the message fold. */
    static final byte MESSAGE_CHANGE = 'M';

    final String messageId;
    final int status;
    final int segments;
    final long statusAt;
    final String causeEventId;

    StageRecord(String messageId, int status, int segments, long statusAt, String causeEventId) {
        this.messageId = messageId;
        this.status = status;
        this.segments = segments;
        this.statusAt = statusAt;
        this.causeEventId = causeEventId;
    }

    byte[] encode() {
        byte[] message = messageId.getBytes(StandardCharsets.UTF_8);
        byte[] cause = causeEventId.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buffer = ByteBuffer.allocate(1 + 1 + 2 + 8 + 2 + message.length + 2 + cause.length);
        buffer.put(MESSAGE_UPDATE).put((byte) status).putShort((short) segments).putLong(statusAt);
        buffer.putShort((short) message.length).put(message).putShort((short) cause.length).put(cause);
        return buffer.array();
    }

    /** Decodes a value whose first byte is {@link #MESSAGE_UPDATE}. */
    static StageRecord decode(byte[] bytes) {
        ByteBuffer buffer = ByteBuffer.wrap(bytes, 1, bytes.length - 1);
        int status = buffer.get();
        int segments = Short.toUnsignedInt(buffer.getShort());
        long statusAt = buffer.getLong();
        int messageLength = Short.toUnsignedInt(buffer.getShort());
        String messageId = new String(bytes, buffer.position(), messageLength, StandardCharsets.UTF_8);
        buffer.position(buffer.position() + messageLength);
        int causeLength = Short.toUnsignedInt(buffer.getShort());
        String cause = new String(bytes, buffer.position(), causeLength, StandardCharsets.UTF_8);
        return new StageRecord(messageId, status, segments, statusAt, cause);
    }

    /** Returns {@code body} with {@code tag} in front. */
    static byte[] tagged(byte tag, byte[] body) {
        byte[] value = new byte[body.length + 1];
        value[0] = tag;
        System.arraycopy(body, 0, value, 1, body.length);
        return value;
    }

    /** Returns the value without its first byte. */
    static byte[] untagged(byte[] value) {
        return java.util.Arrays.copyOfRange(value, 1, value.length);
    }
}
