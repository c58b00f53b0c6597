/** Sends a command to the coordinators from a request, with the errors a client can act on. */
import { MuseError, type Command } from '@muse/contracts';
import { CommandTooLargeError, type JetStreamBus } from '@muse/messaging';

/**
 * Publishes `cmd` and waits for JetStream's ack. Not stored: MUSE_ERR_UNAVAILABLE (retry, with the same
 * Idempotency-Key if there was one), or MUSE_ERR_REQUEST_TOO_LARGE when the command cannot fit one message of the
 * command stream (the NATS server's max_payload), which no retry changes.
 */
export async function publishCommand(bus: Pick<JetStreamBus, 'publishCommand'>, cmd: Command, msgId?: string): Promise<void> {
  try {
    await bus.publishCommand(cmd, msgId);
  } catch (cause) {
    if (cause instanceof CommandTooLargeError) {
      throw new MuseError('MUSE_ERR_REQUEST_TOO_LARGE', `The ${cause.kind} command this request makes is ${cause.bytes} bytes, over the ${cause.limitBytes}-byte limit of one message; send a smaller input`, {
        details: { bytes: cause.bytes, limitBytes: cause.limitBytes },
        cause,
      });
    }
    throw new MuseError('MUSE_ERR_UNAVAILABLE', 'JetStream did not acknowledge the command; nothing was accepted, retry', { cause });
  }
}
