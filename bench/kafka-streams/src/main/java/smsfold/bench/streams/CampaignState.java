package smsfold.bench.streams;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * One campaign's status, details and counts, as stored in the
 * {@code campaigns} store. Its messages' own statuses are in the
 * {@code campaign-messages} store.
 */
final class CampaignState {
    static final long ABSENT = -1;

    int status = Statuses.NONE;
    long statusAt;
    /** From started-sending; {@link #ABSENT} until it arrives. */
    long recipients = ABSENT;
    /** From dispatch-finished; {@link #ABSENT} until it arrives. */
    long dispatched = ABSENT;
    long sendAt = Long.MIN_VALUE;
    String accountId = "";
    String name = "";
    /** Messages per status, indexed by status number. */
    final long[] byStatus = new long[12];
    long segments;
    long billableSegments;

    long messages() {
        long sum = 0;
        for (long count : byStatus) {
            sum += count;
        }
        return sum;
    }

    long settled() {
        long sum = 0;
        for (int status = 1; status < byStatus.length; status++) {
            if (Statuses.isSettled(status)) {
                sum += byStatus[status];
            }
        }
        return sum;
    }

    void add(int status, int messageSegments) {
        byStatus[status]++;
        segments += messageSegments;
        if (Statuses.isBillable(status)) {
            billableSegments += messageSegments;
        }
    }

    void remove(int status, int messageSegments) {
        byStatus[status]--;
        segments -= messageSegments;
        if (Statuses.isBillable(status)) {
            billableSegments -= messageSegments;
        }
    }

    byte[] encode() {
        byte[] account = accountId.getBytes(StandardCharsets.UTF_8);
        byte[] title = name.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buffer = ByteBuffer.allocate(1 + 8 * 4 + 8 * 12 + 8 * 2 + 4 + account.length + title.length);
        buffer.put((byte) status).putLong(statusAt).putLong(recipients).putLong(dispatched).putLong(sendAt);
        for (long count : byStatus) {
            buffer.putLong(count);
        }
        buffer.putLong(segments).putLong(billableSegments);
        buffer.putShort((short) account.length).put(account).putShort((short) title.length).put(title);
        return buffer.array();
    }

    static CampaignState decode(byte[] bytes) {
        ByteBuffer buffer = ByteBuffer.wrap(bytes);
        CampaignState state = new CampaignState();
        state.status = buffer.get();
        state.statusAt = buffer.getLong();
        state.recipients = buffer.getLong();
        state.dispatched = buffer.getLong();
        state.sendAt = buffer.getLong();
        for (int status = 0; status < state.byStatus.length; status++) {
            state.byStatus[status] = buffer.getLong();
        }
        state.segments = buffer.getLong();
        state.billableSegments = buffer.getLong();
        int accountLength = Short.toUnsignedInt(buffer.getShort());
        state.accountId = new String(bytes, buffer.position(), accountLength, StandardCharsets.UTF_8);
        buffer.position(buffer.position() + accountLength);
        int nameLength = Short.toUnsignedInt(buffer.getShort());
        state.name = new String(bytes, buffer.position(), nameLength, StandardCharsets.UTF_8);
        return state;
    }
}
