//! The one way the dashboard calls the API: typed GraphQL documents (generated from
//! schema.graphql) sent by POST to /graphql with the session's token, and errors turned
//! into `ApiError` with the server's stable code and message.
import type { TypedDocumentString } from '../gql/graphql';
import { session } from './session';

/** A refusal or failure as the server said it: `code` is `extensions.code`. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Codes that mean the session is over: the app goes back to the login page. */
const SESSION_ENDED = new Set(['UNAUTHENTICATED', 'SESSION_EXPIRED', 'TOKEN_EXPIRED', 'TOKEN_REVOKED']);

interface GraphQLErrorJson {
  message: string;
  extensions?: { code?: string };
}

/** Runs one query or mutation; throws `ApiError` on any error the server reports. */
export async function request<Result, Variables>(
  document: TypedDocumentString<Result, Variables>,
  ...[variables]: Variables extends Record<string, never> ? [] : [Variables]
): Promise<Result> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  const token = session.token();
  if (token) headers.Authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers,
      body: JSON.stringify({ query: document.toString(), variables: variables ?? {} }),
    });
  } catch (error) {
    throw new ApiError('NETWORK', `The distribution did not answer: ${(error as Error).message}`);
  }
  let body: { data?: Result | null; errors?: GraphQLErrorJson[] };
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`HTTP_${response.status}`, `The distribution answered ${response.status} ${response.statusText}`);
  }
  const first = body.errors?.[0];
  if (first) {
    const code = first.extensions?.code ?? 'ERROR';
    if (token && SESSION_ENDED.has(code)) session.expired();
    throw new ApiError(code, first.message);
  }
  if (body.data == null) throw new ApiError('NO_DATA', 'The distribution sent no data');
  return body.data;
}

/** Fetches a protected file (logs, a fault archive) and hands it to the browser as a download. */
export async function download(path: string, fileName: string): Promise<number> {
  const token = session.token();
  const response = await fetch(path, { headers: authorization() });
  if (!response.ok) {
    if (response.status === 401 && token) session.expired();
    throw await refusal(response);
  }
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return blob.size;
}

/** Sends a file body with PUT (private files). */
export async function upload(path: string, body: Blob): Promise<void> {
  const response = await fetch(path, { method: 'PUT', headers: authorization(), body });
  if (!response.ok) throw await refusal(response);
}

/** Reads JSON from a protected HTTP route (the private files list). */
export async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: authorization() });
  if (!response.ok) throw await refusal(response);
  return (await response.json()) as T;
}

/** Sends `DELETE` to a protected HTTP route. */
export async function remove(path: string): Promise<void> {
  const response = await fetch(path, { method: 'DELETE', headers: authorization() });
  if (!response.ok) throw await refusal(response);
}

/** The bearer header of the session, if any. */
function authorization(): Record<string, string> {
  const token = session.token();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** An HTTP route's refusal (`{"error": {"code", "message"}}`) as an `ApiError`. */
async function refusal(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const { error } = JSON.parse(text);
    if (error?.code) return new ApiError(error.code, error.message ?? text);
  } catch {
    // Not JSON: the status says it.
  }
  return new ApiError(`HTTP_${response.status}`, text || `${response.status} ${response.statusText}`);
}

/** The message of any thrown value, with the server's code when there is one. */
export function describe(error: unknown): { code: string; message: string } {
  if (error instanceof ApiError) return { code: error.code, message: error.message };
  if (error instanceof Error) return { code: 'ERROR', message: error.message };
  return { code: 'ERROR', message: String(error) };
}
