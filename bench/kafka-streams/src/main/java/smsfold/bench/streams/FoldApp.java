package smsfold.bench.streams;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Repartitioned;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * A Kafka Streams application that folds smsfold's input topics into the
 * same message and campaign status changes, with exactly_once_v2.
 *
 * <p>Topology: the message events stream goes through the message fold (a
 * persistent store keyed by message id). Its status changes go to the
 * message status changes topic. Its campaign updates are merged with the
 * campaign events and repartitioned by campaign id into the internal topic
 * {@code <application id>-campaign-stage-repartition}, which the campaign fold
 * (two persistent stores) reads, publishing campaign status changes. It is
 * the same two-stage layout smsfold uses.
 *
 * <p>Options, each {@code --name value}: bootstrap-servers, application-id,
 * message-events-topic, campaign-events-topic, message-changes-topic,
 * campaign-changes-topic, state-dir, http-port (serves {@code GET /readyz}
 * and {@code GET /campaigns} on 127.0.0.1), threads (stream threads, default
 * 2), stage-partitions (default 6), commit-interval-ms (default 100 under
 * exactly-once). Every other Kafka Streams setting keeps its default.
 */
public final class FoldApp {
    private FoldApp() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> options = parse(args);
        String bootstrap = required(options, "bootstrap-servers");
        String applicationId = required(options, "application-id");
        int port = Integer.parseInt(required(options, "http-port"));
        int stagePartitions = Integer.parseInt(options.getOrDefault("stage-partitions", "6"));

        Properties config = new Properties();
        config.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
        config.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        config.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        config.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, options.getOrDefault("threads", "2"));
        config.put(StreamsConfig.STATE_DIR_CONFIG, required(options, "state-dir"));
        config.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        config.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        if (options.containsKey("commit-interval-ms")) {
            config.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, options.get("commit-interval-ms"));
        }

        Topology topology = topology(options, stagePartitions);
        KafkaStreams streams = new KafkaStreams(topology, config);
        CountDownLatch stopped = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                stopped.countDown();
            }
        });
        HttpServer http = serve(streams, port);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(60));
            http.stop(0);
        }));
        System.err.printf("smsfold-kafka-streams: kafka-streams %s, java %s, application id %s%n",
                kafkaVersion(), System.getProperty("java.version"), applicationId);
        streams.start();
        stopped.await();
        if (streams.state() == KafkaStreams.State.ERROR) {
            System.err.println("smsfold-kafka-streams: a stream thread failed; see the log above");
            System.exit(1);
        }
    }

    static Topology topology(Map<String, String> options, int stagePartitions) {
        // RocksDB stores with changelogs, as Kafka Streams makes them by
        // default. The record cache in front of each (10 MiB in all by
        // default) folds repeated writes of one key into one changelog
        // record per commit. Stores added by hand have it off unless enabled.
        StreamsBuilder builder = new StreamsBuilder();
        for (String store : new String[] {
            MessageFoldProcessor.STORE, CampaignFoldProcessor.STORE, CampaignFoldProcessor.MESSAGES_STORE,
        }) {
            builder.addStateStore(Stores.keyValueStoreBuilder(
                    Stores.persistentKeyValueStore(store), Serdes.String(), Serdes.ByteArray()).withCachingEnabled());
        }

        Consumed<String, byte[]> consumed = Consumed.with(Serdes.String(), Serdes.ByteArray());
        Produced<String, byte[]> produced = Produced.with(Serdes.String(), Serdes.ByteArray());
        KStream<String, byte[]> folded = builder
                .stream(required(options, "message-events-topic"), consumed)
                .process(MessageFoldProcessor::new, Named.as("message-fold"), MessageFoldProcessor.STORE);
        Map<String, KStream<String, byte[]>> outputs = folded.split(Named.as("message-fold-"))
                .branch((key, value) -> value[0] == StageRecord.MESSAGE_CHANGE, Branched.as("changes"))
                .defaultBranch(Branched.as("updates"));
        outputs.get("message-fold-changes")
                .mapValues(StageRecord::untagged)
                .to(required(options, "message-changes-topic"), produced);

        KStream<String, byte[]> campaignEvents = builder
                .stream(required(options, "campaign-events-topic"), consumed)
                .mapValues(value -> StageRecord.tagged(StageRecord.CAMPAIGN_EVENT, value));
        outputs.get("message-fold-updates")
                .merge(campaignEvents)
                .repartition(Repartitioned.<String, byte[]>as("campaign-stage")
                        .withKeySerde(Serdes.String())
                        .withValueSerde(Serdes.ByteArray())
                        .withNumberOfPartitions(stagePartitions))
                .process(CampaignFoldProcessor::new, Named.as("campaign-fold"), CampaignFoldProcessor.STORE,
                        CampaignFoldProcessor.MESSAGES_STORE)
                .to(required(options, "campaign-changes-topic"), produced);
        return builder.build();
    }

    /** Serves readiness and the campaign projections on 127.0.0.1. */
    private static HttpServer serve(KafkaStreams streams, int port) throws IOException {
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
        server.createContext("/readyz", exchange -> {
            boolean running = streams.state() == KafkaStreams.State.RUNNING;
            respond(exchange, running ? 200 : 503, running ? "ready\n" : "not ready: " + streams.state() + "\n");
        });
        server.createContext("/campaigns", exchange -> {
            try {
                respond(exchange, 200, campaignsJson(streams));
            } catch (RuntimeException e) {
                respond(exchange, 503, "the campaign store cannot be queried: " + e + "\n");
            }
        });
        server.start();
        return server;
    }

    private static void respond(HttpExchange exchange, int status, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.sendResponseHeaders(status, bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    /** Lists every campaign with the fields of smsfold's {@code GET /campaigns} that the comparison reads. */
    private static String campaignsJson(KafkaStreams streams) {
        ReadOnlyKeyValueStore<String, byte[]> store = streams.store(StoreQueryParameters.fromNameAndType(
                CampaignFoldProcessor.STORE, QueryableStoreTypes.<String, byte[]>keyValueStore()));
        StringBuilder json = new StringBuilder("{\"campaigns\":[");
        try (KeyValueIterator<String, byte[]> all = store.all()) {
            boolean first = true;
            while (all.hasNext()) {
                KeyValue<String, byte[]> entry = all.next();
                CampaignState campaign = CampaignState.decode(entry.value);
                json.append(first ? "" : ",").append("{\"campaign_id\":\"").append(entry.key).append('"');
                json.append(",\"status\":").append(campaign.status == Statuses.NONE
                        ? "null" : '"' + Statuses.CAMPAIGN_NAMES[campaign.status] + '"');
                json.append(",\"recipients\":").append(campaign.recipients < 0 ? "null" : campaign.recipients);
                json.append(",\"dispatched\":").append(campaign.dispatched < 0 ? "null" : campaign.dispatched);
                json.append(",\"messages\":").append(campaign.messages());
                json.append(",\"segments\":").append(campaign.segments);
                json.append(",\"billable_segments\":").append(campaign.billableSegments);
                json.append(",\"by_status\":{");
                for (int status = 1; status < campaign.byStatus.length; status++) {
                    json.append(status == 1 ? "" : ",").append('"').append(Statuses.MESSAGE_NAMES[status])
                            .append("\":").append(campaign.byStatus[status]);
                }
                json.append("}}");
                first = false;
            }
        }
        return json.append("]}").toString();
    }

    /** Returns the Kafka client version the jar was built with, as its kafka-version.properties states it. */
    private static String kafkaVersion() {
        try (var in = FoldApp.class.getResourceAsStream("/kafka/kafka-version.properties")) {
            Properties version = new Properties();
            if (in != null) {
                version.load(in);
            }
            return version.getProperty("version", "unknown");
        } catch (IOException e) {
            return "unknown (" + e + ")";
        }
    }

    private static Map<String, String> parse(String[] args) {
        Map<String, String> options = new HashMap<>();
        for (int i = 0; i < args.length; i += 2) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("invalid argument " + args[i] + ": give options as --name value");
            }
            options.put(args[i].substring(2), args[i + 1]);
        }
        return options;
    }

    private static String required(Map<String, String> options, String name) {
        String value = options.get(name);
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException("missing option --" + name);
        }
        return value;
    }
}
