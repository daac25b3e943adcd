//! Changing one's own password: forced after the first login (the server allows
//! nothing else until then), and reachable from the account menu.
import { useState } from 'react';
import { Alert, Button, Center, Paper, PasswordInput, Stack, Text, Title } from '@mantine/core';
import { useQueryClient } from '@tanstack/react-query';
import { useNavigate, useSearchParams } from 'react-router';
import { graphql } from '../gql';
import { describe, request } from '../api/client';
import { session } from '../api/session';
import { logIn, useSession } from '../auth';

const ChangePassword = graphql(`
  mutation ChangePassword($oldPassword: String!, $newPassword: String!) {
    changePassword(oldPassword: $oldPassword, newPassword: $newPassword)
  }
`);

export default function PasswordPage() {
  const { account } = useSession();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const client = useQueryClient();
  const [old, setOld] = useState('');
  const [fresh, setFresh] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: React.FormEvent) {
    event.preventDefault();
    if (fresh !== again) {
      setError('The two new passwords differ.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await request(ChangePassword, { oldPassword: old, newPassword: fresh });
      // The old session was only good for the change: take a full one.
      const name = account?.account ?? session.current()?.account ?? '';
      await logIn(name, fresh);
      await client.invalidateQueries();
      const next = params.get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', { replace: true });
    } catch (e) {
      const { code, message } = describe(e);
      setError(`${message} (${code})`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Center mih="100vh" p="md">
      <Paper withBorder shadow="sm" p="xl" w={420} component="form" onSubmit={submit}>
        <Stack>
          <Title order={2}>Change your password</Title>
          {account?.mustChangePassword && <Text c="dimmed">Choose your own password before going on.</Text>}
          {error && (
            <Alert color="red" title="Not changed" role="alert">
              {error}
            </Alert>
          )}
          <PasswordInput label="Current password" value={old} onChange={(e) => setOld(e.currentTarget.value)} required autoComplete="current-password" />
          <PasswordInput label="New password" value={fresh} onChange={(e) => setFresh(e.currentTarget.value)} required autoComplete="new-password" />
          <PasswordInput label="New password again" value={again} onChange={(e) => setAgain(e.currentTarget.value)} required autoComplete="new-password" />
          <Button type="submit" loading={busy}>
            Change password
          </Button>
        </Stack>
      </Paper>
    </Center>
  );
}
