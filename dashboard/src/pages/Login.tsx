//! The login page: account and password, then the forced password change when the
//! server asks for it, then back to the page the user came from.
import { useState } from 'react';
import { Alert, Button, Center, Paper, PasswordInput, Stack, TextInput, Title } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { Navigate, useNavigate, useSearchParams } from 'react-router';
import { describe } from '../api/client';
import { logIn, useSession } from '../auth';

/** Where to go after logging in: `?next=`, else the page that was open when the session ended. */
function nextPage(params: URLSearchParams): string {
  const next = params.get('next') ?? sessionStorage.getItem('vupdate.next') ?? '/';
  // Only paths of this site.
  return next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login') ? next : '/';
}

/** The page a logged-in account goes to: the forced password change first, carrying `next`. */
function landing(mustChangePassword: boolean, next: string): string {
  return mustChangePassword ? `/password?next=${encodeURIComponent(next)}` : next;
}

export function LoginPage() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const client = useQueryClient();
  const { account } = useSession();
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const expired = sessionStorage.getItem('vupdate.expired') === '1';

  // Also reached between a login and its own navigation (which the router may apply later),
  // so it must land where `submit` does, `next` included.
  if (account && !busy) return <Navigate to={landing(account.mustChangePassword, nextPage(params))} replace />;

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const next = nextPage(params);
      client.clear();
      const { mustChangePassword } = await logIn(name, password);
      sessionStorage.removeItem('vupdate.next');
      sessionStorage.removeItem('vupdate.expired');
      navigate(landing(mustChangePassword, next), { replace: true });
    } catch (e) {
      const { code, message } = describe(e);
      setError(`${message} (${code})`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Center mih="100vh" p="md">
      <Paper withBorder shadow="sm" p="xl" w={380} component="form" onSubmit={submit}>
        <Stack>
          <Title order={2}>vupdate</Title>
          {expired && !error && (
            <Alert color="yellow" title="Session ended">
              Log in again to go on where you were.
            </Alert>
          )}
          {error && (
            <Alert color="red" title="Login refused" role="alert">
              {error}
            </Alert>
          )}
          <TextInput label="Account" value={name} onChange={(e) => setName(e.currentTarget.value)} autoFocus required autoComplete="username" />
          <PasswordInput label="Password" value={password} onChange={(e) => setPassword(e.currentTarget.value)} required autoComplete="current-password" />
          <Button type="submit" loading={busy}>
            Log in
          </Button>
        </Stack>
      </Paper>
    </Center>
  );
}
