/**
 * Node flags the broker runs with, wherever it is started: the container's CMD, the
 * npm scripts, `npm start` and the tests' and benchmarks' broker process (a test holds
 * the first two to this list).
 *
 * --max-semi-space-size=32 (MiB; V8's default here is 16): every message the broker
 * routes allocates short-lived objects (packets, closures, buffers), and with the
 * default young generation a busy broker scavenges so often that objects still in
 * flight are copied and promoted. Doubling it: QoS 0 130,800 -> 142,300 msgs/s and
 * QoS 1 72,700 -> 77,000 (A/B, 100 publishers -> 1 subscriber, 4 rounds each). 64 was
 * no faster and kept its young generation after a connection storm (20 KB per idle
 * connection at 10,000 instead of 6.5), while 32 is returned like the default.
 */
export const BROKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32']
