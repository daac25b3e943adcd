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
  const response = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    let code = `HTTP_${response.status}`;
    try {
      const body = await response.json();
      message = body.error?.message ?? message;
      code = body.error?.code ?? code;
    } catch {
      // Not JSON: the status says it.
    }
    if (response.status === 401 && token) session.expired();
    throw new ApiError(code, message);
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
  const token = session.token();
  const response = await fetch(path, {
    method: 'PUT',
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    body,
  });
  if (!response.ok) {
    const text = await response.text();
    let message = text;
    let code = `HTTP_${response.status}`;
    try {
      const json = JSON.parse(text);
      message = json.error?.message ?? text;
      code = json.error?.code ?? code;
    } catch {
      // Not JSON.
    }
    throw new ApiError(code, message);
  }
}

/** The message of any thrown value, with the server's code when there is one. */
export function describe(error: unknown): { code: string; message: string } {
  if (error instanceof ApiError) return { code: error.code, message: error.message };
  if (error instanceof Error) return { code: 'ERROR', message: error.message };
  return { code: 'ERROR', message: String(error) };
}
