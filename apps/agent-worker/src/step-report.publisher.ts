/** Moved to `@muse/messaging` (the gateway reports remote agents' steps the same way); kept so imports here stay short. */
export { StepReportPublisher, reportMsgId } from '@muse/messaging';
export type { CommandPublisher } from '@muse/messaging';
