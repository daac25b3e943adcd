//! Providers and consumers: the distributions this one receives versions from and sends
//! them to. Read-only: consumers are their accounts (profile and URL, from the accounts
//! an administrator manages); providers are configured in the state repo's
//! `providers.yaml` and become editable here when the mesh API lands.
import { Alert, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { graphql } from '../gql';
import { request } from '../api/client';
import { useAllowed } from '../auth';
import { Problem } from '../components/Problem';

const Consumers = graphql(`
  query Consumers {
    accounts {
      account
      name
      type
      profile
      url
    }
  }
`);

export default function DistributionsPage() {
  const admin = useAllowed('ADMINISTRATOR');
  const { data, error } = useQuery({ queryKey: ['consumers'], queryFn: () => request(Consumers), enabled: admin });
  const consumers = data?.accounts.filter((a) => a.type === 'CONSUMER') ?? [];
  return (
    <Stack>
      <Title order={2}>Providers and consumers</Title>
      <Title order={4}>Providers</Title>
      <Alert color="gray">
        Providers are set in the state repo's <code>providers.yaml</code> (tokens are referenced by name, kept on the distribution). Viewing and editing them here arrives with the
        distribution mesh.
      </Alert>
      <Title order={4}>Consumers</Title>
      {!admin ? (
        <Text c="dimmed">Consumers are accounts: an administrator sees them here.</Text>
      ) : (
        <>
          <Problem error={error} />
          <Table striped aria-label="Consumers">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Distribution</Table.Th>
                <Table.Th>Name</Table.Th>
                <Table.Th>Profile</Table.Th>
                <Table.Th>URL</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {consumers.map((c) => (
                <Table.Tr key={c.account}>
                  <Table.Td fw={600}>{c.account}</Table.Td>
                  <Table.Td>{c.name}</Table.Td>
                  <Table.Td>{c.profile}</Table.Td>
                  <Table.Td>{c.url}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          {data && consumers.length === 0 && <Text c="dimmed">No consumer distribution.</Text>}
        </>
      )}
    </Stack>
  );
}
