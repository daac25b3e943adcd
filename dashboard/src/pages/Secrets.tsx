//! Secrets (administrators): values kept on this distribution, never in Git, such as a
//! provider's access token that `providers.yaml` names (`accessTokenSecret`). Names and
//! times are listed; a value is typed once into a password field and never shown again.
import { useState } from 'react';
import { Button, Group, PasswordInput, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { graphql } from '../gql';
import { describe, request } from '../api/client';
import { Problem } from '../components/Problem';
import { time } from '../lib/format';

const Secrets = graphql(`
  query Secrets {
    secrets {
      name
      setAt
    }
  }
`);
const SetSecret = graphql(`
  mutation SetSecret($name: String!, $value: String!) {
    setSecret(name: $name, value: $value) {
      name
      setAt
    }
  }
`);
const RemoveSecret = graphql(`
  mutation RemoveSecret($name: String!) {
    removeSecret(name: $name)
  }
`);

export default function SecretsPage() {
  const client = useQueryClient();
  const { data, error } = useQuery({ queryKey: ['secrets'], queryFn: () => request(Secrets) });
  const [name, setName] = useState('');
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const refresh = () => client.invalidateQueries({ queryKey: ['secrets'] });

  async function set() {
    setBusy(true);
    try {
      // The value travels as a variable, never in the query text.
      const { setSecret } = await request(SetSecret, { name: name.trim(), value });
      notifications.show({ color: 'teal', title: 'Secret set', message: setSecret.name });
      setName('');
      setValue('');
      void refresh();
    } catch (e) {
      const { code, message } = describe(e);
      notifications.show({ color: 'red', title: `Not set (${code})`, message });
    } finally {
      setBusy(false);
    }
  }

  async function remove(secret: string) {
    if (!window.confirm(`Remove the secret ${secret}? A provider that names it can no longer connect.`)) return;
    try {
      await request(RemoveSecret, { name: secret });
      void refresh();
    } catch (e) {
      const { code, message } = describe(e);
      notifications.show({ color: 'red', title: `Not removed (${code})`, message });
    }
  }

  return (
    <Stack>
      <Title order={2}>Secrets</Title>
      <Text size="sm" c="dimmed">
        Kept on this distribution, sealed in its store (shared by its replicas), never in Git and never shown again. <code>providers.yaml</code> names a provider's access token by its
        secret's name.
      </Text>
      <Group align="flex-end">
        <TextInput label="Name" placeholder="jetto-token" value={name} onChange={(e) => setName(e.currentTarget.value)} w={220} />
        <PasswordInput label="Value" value={value} onChange={(e) => setValue(e.currentTarget.value)} w={320} autoComplete="new-password" />
        <Button onClick={set} loading={busy} disabled={!name.trim() || !value}>
          Set
        </Button>
      </Group>
      <Problem error={error} />
      <Table striped aria-label="Secrets">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Name</Table.Th>
            <Table.Th>Set</Table.Th>
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {data?.secrets.map((s) => (
            <Table.Tr key={s.name} data-secret={s.name}>
              <Table.Td ff="monospace">{s.name}</Table.Td>
              <Table.Td>{time(s.setAt)}</Table.Td>
              <Table.Td>
                <Group justify="flex-end">
                  <Button size="compact-xs" color="red" variant="light" onClick={() => remove(s.name)}>
                    Remove
                  </Button>
                </Group>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {data && data.secrets.length === 0 && <Text c="dimmed">No secret.</Text>}
    </Stack>
  );
}
