/** Moved to `@muse/messaging` (the gateway uploads remote agents' outputs the same way); kept so imports here stay short. */
export { ArtifactUploader } from '@muse/messaging';
export type { ArtifactUploaderOptions, BlobRef } from '@muse/messaging';
