//! What the private files page uses of the API client.
export { ApiError, describe, upload } from '../api/client';
export { session } from '../api/session';
