//! Profiles: named groups of services (`self` = what this distribution builds client
//! versions for); create, change or remove one, each as a commit.
import { useState } from 'react';
import { Badge, Button, Group, Modal, MultiSelect, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { graphql } from '../gql';
import { request } from '../api/client';
import { useAllowed } from '../auth';
import { PageCommitDialog, type Edit } from '../components/CommitDialog';
import { Problem } from '../components/Problem';
import { loadTip } from '../lib/revision';

const Profiles = graphql(`
  query Profiles($revision: String) {
    serviceProfiles(revision: $revision) {
      profile
      services
    }
    services(revision: $revision)
  }
`);
const SetProfile = graphql(`
  mutation SetProfile($profile: String!, $services: [String!]!, $comment: String!, $expectedRevision: String!) {
    setServiceProfile(profile: $profile, services: $services, comment: $comment, expectedRevision: $expectedRevision) {
      ...MadeCommit
    }
  }
`);
const RemoveProfile = graphql(`
  mutation RemoveProfile($profile: String!, $comment: String!, $expectedRevision: String!) {
    removeServiceProfile(profile: $profile, comment: $comment, expectedRevision: $expectedRevision) {
      ...MadeCommit
    }
  }
`);

async function load() {
  const tip = await loadTip();
  return { tip, ...(await request(Profiles, { revision: tip })) };
}

export default function ProfilesPage() {
  // Only administrators may change settings (the server refuses others).
  const editor = useAllowed('ADMINISTRATOR');
  const query = useQuery({ queryKey: ['profiles'], queryFn: load, staleTime: Infinity, refetchOnWindowFocus: false });
  const [editing, setEditing] = useState<{ profile: string; services: string[]; isNew: boolean } | null>(null);
  const [edit, setEdit] = useState<Edit | null>(null);

  if (query.error) return <Problem error={query.error} />;
  if (!query.data) return <Text c="dimmed">Loading…</Text>;
  const profiles = query.data.serviceProfiles;

  function review(profile: string, services: string[]) {
    const before = profiles.find((p) => p.profile === profile)?.services ?? [];
    setEditing(null);
    setEdit({
      title: `Profile ${profile}`,
      diff: [{ file: 'profiles.yaml', lines: [...(before.length || profiles.some((p) => p.profile === profile) ? [{ kind: '-' as const, text: `  ${profile}: [${before.join(', ')}]` }] : []), { kind: '+', text: `  ${profile}: [${services.join(', ')}]` }] }],
      commit: async (comment, expectedRevision) => (await request(SetProfile, { profile, services, comment, expectedRevision })).setServiceProfile,
    });
  }

  function remove(profile: string) {
    const before = profiles.find((p) => p.profile === profile)?.services ?? [];
    setEdit({
      title: `Remove profile ${profile}`,
      diff: [{ file: 'profiles.yaml', lines: [{ kind: '-', text: `  ${profile}: [${before.join(', ')}]` }] }],
      commit: async (comment, expectedRevision) => (await request(RemoveProfile, { profile, comment, expectedRevision })).removeServiceProfile,
    });
  }

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Profiles</Title>
        {editor && <Button onClick={() => setEditing({ profile: '', services: [], isNew: true })}>New profile</Button>}
      </Group>
      <Table striped aria-label="Profiles">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Profile</Table.Th>
            <Table.Th>Services</Table.Th>
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {profiles.map((p) => (
            <Table.Tr key={p.profile}>
              <Table.Td fw={600}>{p.profile}</Table.Td>
              <Table.Td>
                <Group gap={4}>
                  {p.services.map((s) => (
                    <Badge key={s} variant="light" tt="none">
                      {s}
                    </Badge>
                  ))}
                </Group>
              </Table.Td>
              <Table.Td>
                {editor && (
                  <Group gap={4} justify="flex-end" wrap="nowrap">
                    <Button size="compact-xs" variant="default" onClick={() => setEditing({ profile: p.profile, services: p.services, isNew: false })}>
                      Edit
                    </Button>
                    <Button size="compact-xs" color="red" variant="light" onClick={() => remove(p.profile)}>
                      Remove
                    </Button>
                  </Group>
                )}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Modal opened={editing != null} onClose={() => setEditing(null)} title={editing?.isNew ? 'New profile' : `Profile ${editing?.profile}`}>
        {editing && (
          <Stack>
            {editing.isNew && <TextInput label="Name" value={editing.profile} onChange={(e) => setEditing({ ...editing, profile: e.currentTarget.value })} data-autofocus />}
            <MultiSelect label="Services" data={query.data.services} value={editing.services} onChange={(services) => setEditing({ ...editing, services })} searchable />
            <Group justify="flex-end">
              <Button onClick={() => review(editing.profile.trim(), editing.services)} disabled={!editing.profile.trim()}>
                Review
              </Button>
            </Group>
          </Stack>
        )}
      </Modal>
      <PageCommitDialog edit={edit} onClose={() => setEdit(null)} query={query} queryKey={['profiles']} />
    </Stack>
  );
}
