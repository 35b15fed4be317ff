/**
 * How many of an answer's events stay out of it so that the RESULT keeps within the answer frame
 * limit (docs/PROTOCOL.md §4 and §8): `carried` are the answered events' JSON in seq order,
 * `headLength` the length of the RESULT without them. The answer keeps as many of the LAST events
 * as fit; the ones before go out as ordinary pushes just before it, as the events before the
 * answered run already do, so the connection still gets every event once and in seq order.
 *
 * Without this, one answer carrying thousands of fills (a modify after a slow journal sync) went
 * out as one frame of any size: 811 KiB past a 16 KiB limit, and near the 8 MiB unsent-bytes
 * limit a reader that keeps up would have been cut off as a slow consumer.
 *
 * Lengths are string lengths, as the answer framing counts them (Client.deliver): "about" the limit.
 */
export function eventsLeftOut(carried: readonly string[], headLength: number, maxBytes: number): number {
  // `,"events":[` and `]`, and a comma between two events.
  let length = headLength + 12;
  let from = carried.length;
  while (from > 0) {
    const next = length + (carried[from - 1]?.length ?? 0) + (from === carried.length ? 0 : 1);
    if (next > maxBytes) break;
    length = next;
    from--;
  }
  return from;
}
