//! Who is logged in: the kept session plus `whoAmI` (role, whether the password must
//! change), shared by every page through the query cache.
import { useSyncExternalStore } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { graphql } from './gql';
import type { AccountRole } from './gql/graphql';
import { request } from './api/client';
import { session } from './api/session';

export type Role = AccountRole;

const WhoAmI = graphql(`
  query WhoAmI {
    whoAmI {
      account
      role
      mustChangePassword
    }
    distributionInfo {
      distribution
      title
      version
    }
  }
`);

const Login = graphql(`
  mutation Login($account: String!, $password: String!) {
    login(account: $account, password: $password) {
      token
      expiresAt
      mustChangePassword
    }
  }
`);

/** Logs `account` in and keeps the session; says whether the password must change first. */
export async function logIn(account: string, password: string): Promise<{ mustChangePassword: boolean }> {
  const { login } = await request(Login, { account, password });
  session.start({ token: login.token, account, expiresAt: login.expiresAt });
  return { mustChangePassword: login.mustChangePassword };
}

/** The `whoAmI` query of a session token. */
export const whoAmIQuery = (token: string | null) => ({ queryKey: ['whoAmI', token], queryFn: () => request(WhoAmI), staleTime: 60_000 });

/** The logged-in account (null when logged out) and the distribution's name. */
export function useSession() {
  const stored = useSyncExternalStore(session.subscribe, () => session.current()?.token ?? null);
  const query = useQuery({ ...whoAmIQuery(stored), enabled: stored != null });
  return {
    account: stored ? (query.data?.whoAmI ?? null) : null,
    info: query.data?.distributionInfo ?? null,
    loading: stored != null && query.isPending,
  };
}

/** Whether the account's role is one of `roles`. */
export function useAllowed(...roles: Role[]): boolean {
  const { account } = useSession();
  return account != null && roles.includes(account.role);
}

/** Logs out: forgets the token and every cached answer. */
export function useLogout() {
  const client = useQueryClient();
  return () => {
    session.end();
    client.clear();
  };
}
