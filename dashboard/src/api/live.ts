//! Subscriptions over `/graphql/ws` (graphql-transport-ws, the `graphql-ws` client): one
//! socket per session, the token sent in `connection_init`, reconnecting on its own.
import { createClient, type Client } from 'graphql-ws';
import type { TypedDocumentString } from '../gql/graphql';
import { session } from './session';

let client: Client | null = null;
let clientToken: string | null = null;

function socket(): Client {
  const token = session.token();
  if (!client || clientToken !== token) {
    client?.dispose();
    clientToken = token;
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql/ws`;
    client = createClient({
      url,
      connectionParams: token ? { Authorization: `Bearer ${token}` } : {},
      retryAttempts: 5,
      lazy: true,
    });
  }
  return client;
}

/** Follows a subscription; `onData` gets each result. Returns the stop function. */
export function subscribe<Result, Variables>(
  document: TypedDocumentString<Result, Variables>,
  variables: Variables,
  handlers: { onData: (data: Result) => void; onError?: (message: string) => void; onComplete?: () => void },
): () => void {
  return socket().subscribe<Result>(
    { query: document.toString(), variables: variables as Record<string, unknown> },
    {
      next: (result) => {
        if (result.errors?.length) handlers.onError?.(result.errors.map((e) => e.message).join('; '));
        else if (result.data) handlers.onData(result.data);
      },
      error: (error) => {
        const message =
          error instanceof Error
            ? error.message
            : Array.isArray(error)
              ? error.map((e) => (e as { message: string }).message).join('; ')
              : 'the live connection closed';
        handlers.onError?.(message);
      },
      complete: () => handlers.onComplete?.(),
    },
  );
}
