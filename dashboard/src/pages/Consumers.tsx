//! Consumers: the distributions this one sends versions to (`consumers.yaml`), with what
//! each receives, what it reported having installed and its instances. Administrators
//! add, change and remove entries as commits; a consumer connects with its account's
//! access token (Accounts).
import { useState } from 'react';
import { Badge, Button, Group, Modal, Select, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { graphql } from '../gql';
import { request } from '../api/client';
import { useAllowed } from '../auth';
import { PageCommitDialog, type Edit } from '../components/CommitDialog';
import { Problem } from '../components/Problem';
import { time } from '../lib/format';
import { consumerLines, entryDiff, type ConsumerEntry } from '../lib/mesh';
import { loadTip } from '../lib/revision';

const Consumers = graphql(`
  query Consumers {
    consumers {
      distribution
      profile
      url
      testConsumer
      hasAccount
      offeredVersions {
        service
        version
      }
      installedVersions {
        service
        version
      }
      installedAt
      instances {
        instance
      }
    }
    serviceProfiles {
      profile
    }
  }
`);
const SetConsumer = graphql(`
  mutation SetConsumer($consumer: String!, $profile: String!, $url: String, $testConsumer: String, $comment: String!, $expectedRevision: String!) {
    setConsumer(consumer: $consumer, profile: $profile, url: $url, testConsumer: $testConsumer, comment: $comment, expectedRevision: $expectedRevision) {
      ...MadeCommit
    }
  }
`);
const RemoveConsumer = graphql(`
  mutation RemoveConsumer($consumer: String!, $comment: String!, $expectedRevision: String!) {
    removeConsumer(consumer: $consumer, comment: $comment, expectedRevision: $expectedRevision) {
      ...MadeCommit
    }
  }
`);

async function load() {
  const tip = await loadTip();
  return { tip, ...(await request(Consumers)) };
}

const EMPTY: ConsumerEntry = { consumer: '', profile: '', url: null, testConsumer: null };

export default function ConsumersPage() {
  const admin = useAllowed('ADMINISTRATOR');
  // Read once (and on "reload"), so an edit commits on the revision the user saw.
  const query = useQuery({ queryKey: ['consumers'], queryFn: load, staleTime: Infinity, refetchOnWindowFocus: false });
  const [editing, setEditing] = useState<{ entry: ConsumerEntry; isNew: boolean } | null>(null);
  const [edit, setEdit] = useState<Edit | null>(null);

  if (query.error) return <Problem error={query.error} />;
  if (!query.data) return <Text c="dimmed">Loading…</Text>;
  const consumers = query.data.consumers;
  const lines = (name: string) => {
    const c = consumers.find((x) => x.distribution === name);
    return c ? consumerLines({ consumer: c.distribution, profile: c.profile, url: c.url ?? null, testConsumer: c.testConsumer ?? null }) : null;
  };

  function review(entry: ConsumerEntry) {
    setEditing(null);
    setEdit({
      title: `Consumer ${entry.consumer}`,
      diff: [{ file: 'consumers.yaml', lines: entryDiff(lines(entry.consumer), consumerLines(entry)) }],
      commit: async (comment, expectedRevision) => (await request(SetConsumer, { ...entry, comment, expectedRevision })).setConsumer,
    });
  }

  function remove(name: string) {
    setEdit({
      title: `Remove consumer ${name}`,
      diff: [{ file: 'consumers.yaml', lines: entryDiff(lines(name), null) }],
      commit: async (comment, expectedRevision) => (await request(RemoveConsumer, { consumer: name, comment, expectedRevision })).removeConsumer,
    });
  }

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Consumers</Title>
        {admin && <Button onClick={() => setEditing({ entry: EMPTY, isNew: true })}>New consumer</Button>}
      </Group>
      <Text size="sm" c="dimmed">
        The distributions that receive this one's versions (<code>consumers.yaml</code>). Each connects with an access token of its consumer account (Accounts).
      </Text>
      <Table striped aria-label="Consumers">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Distribution</Table.Th>
            <Table.Th>Profile</Table.Th>
            <Table.Th>Test consumer</Table.Th>
            <Table.Th>Receives</Table.Th>
            <Table.Th>Installed</Table.Th>
            <Table.Th>Instances</Table.Th>
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {consumers.map((c) => (
            <Table.Tr key={c.distribution} data-consumer={c.distribution}>
              <Table.Td>
                <Text fw={600}>{c.distribution}</Text>
                {c.url && (
                  <Text size="xs" c="dimmed" ff="monospace">
                    {c.url}
                  </Text>
                )}
                {!c.hasAccount && (
                  <Badge color="orange" variant="light" tt="none">
                    no account yet
                  </Badge>
                )}
              </Table.Td>
              <Table.Td>{c.profile}</Table.Td>
              <Table.Td>{c.testConsumer ?? '—'}</Table.Td>
              <Table.Td>{c.offeredVersions.map((v) => `${v.service} ${v.version}`).join(', ') || '—'}</Table.Td>
              <Table.Td>
                {c.installedVersions.map((v) => `${v.service} ${v.version}`).join(', ') || '—'}
                {c.installedAt && (
                  <Text size="xs" c="dimmed">
                    {time(c.installedAt)}
                  </Text>
                )}
              </Table.Td>
              <Table.Td>{c.instances.length}</Table.Td>
              <Table.Td>
                {admin && (
                  <Group gap={4} justify="flex-end" wrap="nowrap">
                    <Button size="compact-xs" variant="default" onClick={() => setEditing({ entry: { consumer: c.distribution, profile: c.profile, url: c.url ?? null, testConsumer: c.testConsumer ?? null }, isNew: false })}>
                      Edit
                    </Button>
                    <Button size="compact-xs" color="red" variant="light" onClick={() => remove(c.distribution)}>
                      Remove
                    </Button>
                  </Group>
                )}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {consumers.length === 0 && <Text c="dimmed">No consumer distribution.</Text>}
      <Modal opened={editing != null} onClose={() => setEditing(null)} title={editing?.isNew ? 'New consumer' : `Consumer ${editing?.entry.consumer}`}>
        {editing && <ConsumerForm entry={editing.entry} isNew={editing.isNew} profiles={query.data.serviceProfiles.map((p) => p.profile)} onReview={review} />}
      </Modal>
      <PageCommitDialog edit={edit} onClose={() => setEdit(null)} query={query} queryKey={['consumers']} />
    </Stack>
  );
}

/** The form of an entry; "Review" opens the commit dialog with its diff. */
function ConsumerForm({ entry, isNew, profiles, onReview }: { entry: ConsumerEntry; isNew: boolean; profiles: string[]; onReview: (entry: ConsumerEntry) => void }) {
  const [value, setValue] = useState(entry);
  const trimmed = { consumer: value.consumer.trim(), profile: value.profile, url: value.url?.trim() || null, testConsumer: value.testConsumer?.trim() || null };
  return (
    <Stack>
      {isNew && <TextInput label="Consumer (its distribution name)" value={value.consumer} onChange={(e) => setValue({ ...value, consumer: e.currentTarget.value })} data-autofocus />}
      <Select label="Profile" description="The services it receives" data={profiles} value={value.profile || null} onChange={(profile) => setValue({ ...value, profile: profile ?? '' })} searchable />
      <TextInput label="URL" description="Its API, when this distribution calls it (remote builds)" value={value.url ?? ''} onChange={(e) => setValue({ ...value, url: e.currentTarget.value })} />
      <TextInput label="Test consumer" description="Only send what this consumer marked tested" value={value.testConsumer ?? ''} onChange={(e) => setValue({ ...value, testConsumer: e.currentTarget.value })} />
      <Group justify="flex-end">
        <Button onClick={() => onReview(trimmed)} disabled={!trimmed.consumer || !trimmed.profile}>
          Review
        </Button>
      </Group>
    </Stack>
  );
}
