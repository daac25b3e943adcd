//! The `statusChanged` push for pages that show parts of `status`: each change reads the
//! page's query again, and whether the push is connected sets how often it polls.
import { useEffect, useState } from 'react';
import { useQueryClient, type QueryKey } from '@tanstack/react-query';
import { graphql } from '../gql';
import { subscribe } from './live';

const StatusChanged = graphql(`
  subscription StatusChanged {
    statusChanged
  }
`);

/** Whether the push is connected; each change it brings reads `queryKey` (a constant of
 * the page) again: the first value of a connection too, but the page's very first (a
 * change may have come while the socket was down). */
export function useStatusPush(queryKey: QueryKey): boolean {
  const queries = useQueryClient();
  const [live, setLive] = useState(false);
  useEffect(() => {
    let first = true;
    return subscribe(StatusChanged, {}, {
      onData: () => {
        setLive(true);
        if (!first) void queries.invalidateQueries({ queryKey });
        first = false;
      },
      onError: () => setLive(false),
      onComplete: () => setLive(false),
    });
  }, [queries, queryKey]);
  return live;
}
