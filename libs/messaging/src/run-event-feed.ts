/**
 * Run events from a given stream sequence on, in order, and still flowing
 * after a consumer reset: what `JetStreamBus.subscribeRunEvents` delivers.
 * Written by hand around nats.js's ordered consumer because of two things
 * seen with nats.js 3.4 (reproduced by deleting the server-side consumer of
 * an idle subscription, as a NATS restart does):
 *
 * 1. Under `DeliverPolicy.New` its cursor starts at stream sequence 0, so a
 *    reset before the first message recreates the consumer from sequence 1:
 *    the whole run log comes back as if it were live, and every counter of
 *    this service would count it again. Starting at an explicit sequence
 *    (the stream's last one plus one) avoids that.
 * 2. After such a reset it delivered one message and then nothing more
 *    (still stalled 40 s later); after a `consumer_deleted` on a busy
 *    consumer it never recovered at all. So on any of those notifications
 *    the feed drops that consumer and opens a fresh one from the last
 *    sequence it handled plus one: nothing is skipped, nothing handled twice.
 *
 */
import { DeliverPolicy, type Consumer, type ConsumerMessages } from '@nats-io/jetstream';
import type { RunEvent } from '@muse/contracts';
import type { JetStreamClient } from '@nats-io/jetstream';
import { decodeRunEvents } from './run-log-codec.js';

export interface RunEventFeedOptions {
  js: JetStreamClient;
  stream: string;
  /** One run's subject, or the wildcard for every run. */
  subject: string;
  onEvent: (event: RunEvent) => void;
  /** Told about an event that does not parse or that `onEvent` threw on (both are skipped), and about failed re-subscriptions (retried). */
  onError?: (err: unknown, stage: 'parse' | 'apply' | 'resubscribe') => void;
  /** Messages buffered per pull. @default 512 */
  batch?: number;
  /** Wait between attempts to re-subscribe, in ms. @default 1_000 */
  retryMs?: number;
}

/**
 * Notifications after which the feed opens a fresh consumer. nats.js handles
 * some of these itself, but not reliably: after `consumer_deleted` it went
 * silent with nothing re-created (40 s later), and after a `reset` it stalled.
 */
const REOPEN_ON: ReadonlySet<string> = new Set([
  'reset',
  'ordered_consumer_recreated',
  'consumer_deleted',
  'consumer_not_found',
  'heartbeats_missed',
  'stream_not_found',
]);

interface Generation {
  consumer: Consumer;
  messages: ConsumerMessages;
}

export class RunEventFeed {
  private current: Generation | undefined;
  private stopped = false;

  /** @param lastSeq stream sequence of the last message handled (the feed resumes after it) */
  constructor(
    private readonly opts: RunEventFeedOptions,
    private lastSeq: number,
  ) {}

  async open(): Promise<void> {
    const consumer = await this.opts.js.consumers.get(this.opts.stream, {
      filter_subjects: this.opts.subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.lastSeq + 1,
    });
    const messages = await consumer.consume({ max_messages: this.opts.batch ?? 512 });
    const gen: Generation = { consumer, messages };
    if (this.stopped) return close(gen);
    this.current = gen;
    void this.read(gen);
    void this.watch(gen);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const gen = this.current;
    this.current = undefined;
    if (gen) await close(gen);
  }

  private async read(gen: Generation): Promise<void> {
    for await (const m of gen.messages) {
      // Superseded: the next generation starts after `lastSeq`, so this message comes again there.
      if (this.current !== gen) break;
      this.lastSeq = m.seq;
      let events: RunEvent[];
      try {
        events = decodeRunEvents(m.data);
      } catch (err) {
        this.opts.onError?.(err, 'parse');
        continue;
      }
      for (const event of events) {
        try {
          this.opts.onEvent(event);
        } catch (err) {
          // One bad event must not end the loop: the view would silently freeze.
          this.opts.onError?.(err, 'apply');
        }
      }
    }
  }

  private async watch(gen: Generation): Promise<void> {
    for await (const s of gen.messages.status()) {
      if (REOPEN_ON.has(s.type)) {
        void this.reopen(gen);
        return;
      }
    }
  }

  private async reopen(gen: Generation): Promise<void> {
    if (this.stopped || this.current !== gen) return;
    // Synchronously, before any await: from here on `read(gen)` handles nothing more.
    this.current = undefined;
    await close(gen);
    while (!this.stopped) {
      try {
        await this.open();
        return;
      } catch (err) {
        this.opts.onError?.(err, 'resubscribe');
        await new Promise((r) => setTimeout(r, this.opts.retryMs ?? 1_000).unref());
      }
    }
  }
}

async function close(gen: Generation): Promise<void> {
  await gen.messages.close().catch(() => undefined);
  await gen.consumer.delete().catch(() => undefined);
}
