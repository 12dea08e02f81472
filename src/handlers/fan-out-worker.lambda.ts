import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { channelServiceFromEnvironment, ChannelTask, isChannelTask } from '../runtime/channels';
import { deadlineMargin, Delivery, parseTask } from '../runtime/delivery';
import { withInvocation } from '../runtime/invocation';
import { errorName, logEvent } from '../runtime/log';
import { addDeliveryMetrics } from '../runtime/metrics';

/**
 * Queue mode: serves fan-out tasks, one scan segment, one shard of a channel's subscriptions, or a
 * redriven list of connections each, at
 * this worker's share of `maxSendRate`. Before the invocation's timeout it stops and enqueues the
 * rest of its segment; recipients it could not reach go to the dead-letter queue. A task whose
 * recipients cannot be read is reported failed, so SQS delivers it again and, after a few receives,
 * moves it to the dead-letter queue.
 *
 * The counts of all the batch's tasks are written as one EMF line (Delivered, Gone, Failed, Retried, Throttled).
 */
export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
  withInvocation(context, {}, () => serveBatch(event, context));

async function serveBatch(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
  for (const record of event.Records) {
    try {
      // The endpoint comes from CALLBACK_URL, which the construct sets.
      const delivery = Delivery.fromEnvironment({}, process.env);
      const deadline = Date.now() + context.getRemainingTimeInMillis() - deadlineMargin(delivery.postTimeoutMs);
      if (isChannelTask(record.body)) {
        // One shard of a channel's subscriptions (channel publishes in queue mode).
        const channelTask = JSON.parse(record.body) as ChannelTask;
        const served = await channelServiceFromEnvironment({}, process.env)!.serveTask(channelTask, deadline);
        addDeliveryMetrics(served);
        logEvent('info', 'fan_out', {
          action: 'worker',
          messageId: record.messageId,
          channel: channelTask.channel,
          shard: channelTask.shard,
          delivered: served.delivered,
          gone: served.gone,
          failed: served.failed,
          retried: served.retried,
          throttled: served.throttled,
        });
        continue;
      }
      const task = parseTask(record.body);
      const result = await delivery.serveTask(task, deadline);
      addDeliveryMetrics(result);
      logEvent('info', 'fan_out', {
        action: 'worker',
        messageId: record.messageId,
        ...(task.kind === 'segment' ? { segment: task.segment, totalSegments: task.totalSegments } : { listed: task.connectionIds.length }),
        delivered: result.delivered,
        gone: result.gone,
        failed: result.failed,
        retried: result.retried,
        throttled: result.throttled,
      });
    } catch (err) {
      logEvent('error', 'fan_out_task_failed', { messageId: record.messageId, error: errorName(err) });
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
}
