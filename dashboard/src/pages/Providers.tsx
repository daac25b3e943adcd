//! Providers: the distributions this one takes versions from (`providers.yaml`), each
//! with where it stands (reachable, last sync, last error, what it offers, a change
//! waiting for review, the upload), never a token. People take an offer ("Take these
//! versions") as a commit; administrators add, change and remove entries as commits.
import { useState } from 'react';
import { Alert, Badge, Button, Card, Code, Group, Modal, Select, SimpleGrid, Stack, Switch, Text, TextInput, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { graphql } from '../gql';
import type { ProvidersQuery } from '../gql/graphql';
import { request } from '../api/client';
import { useAllowed } from '../auth';
import { PageCommitDialog, type Edit } from '../components/CommitDialog';
import { Problem } from '../components/Problem';
import { ago, short, time } from '../lib/format';
import { autoUpdateYaml, entryDiff, providerLines, providerState, type AutoUpdate, type ProviderEntry } from '../lib/mesh';
import { loadTip } from '../lib/revision';

const Providers = graphql(`
  query Providers {
    providers {
      distribution
      url
      accessTokenSecret
      secretSet
      autoUpdate
      testConsumer
      uploadState
      pinnedPublicKey
      reachable
      tokenRefused
      connectedBy
      lastSync
      lastError
      nextAttempt
      offered {
        service
        version
      }
      offeredRevision
      offersNewer
      pending {
        service
        version
      }
      preparing
      undeclared
      lastTakenCommit
      waitingChange {
        branch
        commit
        revision
      }
      upload {
        lastUpload
        lastError
        statesSent
        faultsSent
      }
    }
  }
`);
const SecretNames = graphql(`
  query SecretNames {
    secrets {
      name
    }
  }
`);
const TakeVersions = graphql(`
  mutation TakeProviderVersions($provider: String!, $comment: String!, $expectedRevision: String!) {
    takeProviderVersions(provider: $provider, comment: $comment, expectedRevision: $expectedRevision) {
      ...MadeCommit
    }
  }
`);
const SetProvider = graphql(`
  mutation SetProvider(
    $provider: String!
    $url: String!
    $accessTokenSecret: String!
    $autoUpdate: AutoUpdateMode!
    $testConsumer: String
    $uploadState: Boolean!
    $pinnedPublicKey: String
    $comment: String!
    $expectedRevision: String!
  ) {
    setProvider(
      provider: $provider
      url: $url
      accessTokenSecret: $accessTokenSecret
      autoUpdate: $autoUpdate
      testConsumer: $testConsumer
      uploadState: $uploadState
      pinnedPublicKey: $pinnedPublicKey
      comment: $comment
      expectedRevision: $expectedRevision
    ) {
      ...MadeCommit
    }
  }
`);
const RemoveProvider = graphql(`
  mutation RemoveProvider($provider: String!, $comment: String!, $expectedRevision: String!) {
    removeProvider(provider: $provider, comment: $comment, expectedRevision: $expectedRevision) {
      ...MadeCommit
    }
  }
`);

type Provider = ProvidersQuery['providers'][number];

/** The tip edits commit on: read once (and on "reload"), never by the page's polling. */
async function loadEditBase() {
  return { tip: await loadTip() };
}

/** The entry of `providers.yaml` a provider's state comes from. */
function entryOf(p: Provider): ProviderEntry {
  return { provider: p.distribution, url: p.url, accessTokenSecret: p.accessTokenSecret, autoUpdate: p.autoUpdate as AutoUpdate, testConsumer: p.testConsumer ?? null, uploadState: p.uploadState, pinnedPublicKey: p.pinnedPublicKey ?? null };
}

const EMPTY: ProviderEntry = { provider: '', url: '', accessTokenSecret: '', autoUpdate: 'OFF', testConsumer: null, uploadState: false, pinnedPublicKey: null };

export default function ProvidersPage() {
  const admin = useAllowed('ADMINISTRATOR');
  // Where providers stand changes by itself: read again every few seconds.
  const query = useQuery({ queryKey: ['providers', 'state'], queryFn: () => request(Providers), refetchInterval: 5_000 });
  const base = useQuery({ queryKey: ['providers', 'tip'], queryFn: loadEditBase, staleTime: Infinity, refetchOnWindowFocus: false });
  const secrets = useQuery({ queryKey: ['secrets', 'names'], queryFn: () => request(SecretNames), enabled: admin });
  const [editing, setEditing] = useState<{ entry: ProviderEntry; isNew: boolean } | null>(null);
  const [edit, setEdit] = useState<Edit | null>(null);

  if (query.error) return <Problem error={query.error} />;
  if (!query.data) return <Text c="dimmed">Loading…</Text>;
  const providers = query.data.providers;
  const lines = (name: string) => {
    const p = providers.find((x) => x.distribution === name);
    return p ? providerLines(entryOf(p)) : null;
  };

  function take(p: Provider) {
    setEdit({
      title: `Take the versions ${p.distribution} offers`,
      diff: [{ file: 'desired/client.yaml', lines: p.pending.map((v) => ({ kind: '+', text: `  ${v.service}: ${v.version}` })) }],
      defaultComment: `Take the versions ${p.distribution} offers at ${short(p.offeredRevision)}`,
      commit: async (comment, expectedRevision) => (await request(TakeVersions, { provider: p.distribution, comment, expectedRevision })).takeProviderVersions,
    });
  }

  function review(entry: ProviderEntry) {
    setEditing(null);
    setEdit({
      title: `Provider ${entry.provider}`,
      diff: [{ file: 'providers.yaml', lines: entryDiff(lines(entry.provider), providerLines(entry)) }],
      commit: async (comment, expectedRevision) => (await request(SetProvider, { ...entry, comment, expectedRevision })).setProvider,
    });
  }

  function remove(name: string) {
    setEdit({
      title: `Remove provider ${name}`,
      diff: [{ file: 'providers.yaml', lines: entryDiff(lines(name), null) }],
      commit: async (comment, expectedRevision) => (await request(RemoveProvider, { provider: name, comment, expectedRevision })).removeProvider,
    });
  }

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Providers</Title>
        {admin && <Button onClick={() => setEditing({ entry: EMPTY, isNew: true })}>New provider</Button>}
      </Group>
      <Text size="sm" c="dimmed">
        The distributions this one takes versions from (<code>providers.yaml</code>). Their access tokens are secrets kept on this distribution, never in Git.
      </Text>
      {providers.length === 0 && <Text c="dimmed">No provider.</Text>}
      {providers.map((p) => (
        <ProviderCard
          key={p.distribution}
          provider={p}
          admin={admin}
          onTake={() => take(p)}
          onEdit={() => setEditing({ entry: entryOf(p), isNew: false })}
          onRemove={() => remove(p.distribution)}
        />
      ))}
      <Modal opened={editing != null} onClose={() => setEditing(null)} title={editing?.isNew ? 'New provider' : `Provider ${editing?.entry.provider}`}>
        {editing && <ProviderForm entry={editing.entry} isNew={editing.isNew} secrets={secrets.data?.secrets.map((s) => s.name) ?? []} onReview={review} />}
      </Modal>
      <PageCommitDialog edit={edit} onClose={() => setEdit(null)} query={base} queryKey={['providers']} />
    </Stack>
  );
}

/** One provider and where it stands. */
function ProviderCard({ provider: p, admin, onTake, onEdit, onRemove }: { provider: Provider; admin: boolean; onTake: () => void; onEdit: () => void; onRemove: () => void }) {
  const state = providerState(p);
  return (
    <Card withBorder data-provider={p.distribution} aria-label={`Provider ${p.distribution}`}>
      <Stack gap="xs">
        <Group justify="space-between">
          <Group gap="sm">
            <Text fw={700}>{p.distribution}</Text>
            <Badge color={state.color} data-testid="provider-state">
              {state.label}
            </Badge>
            <Badge variant="light" color="gray" tt="none">
              autoUpdate: {autoUpdateYaml(p.autoUpdate as AutoUpdate)}
            </Badge>
          </Group>
          <Group gap={4}>
            {p.offersNewer && !p.waitingChange && <Button size="compact-sm" onClick={onTake}>Take these versions</Button>}
            {admin && (
              <>
                <Button size="compact-sm" variant="default" onClick={onEdit}>
                  Edit
                </Button>
                <Button size="compact-sm" color="red" variant="light" onClick={onRemove}>
                  Remove
                </Button>
              </>
            )}
          </Group>
        </Group>
        <SimpleGrid cols={{ base: 1, md: 3 }} spacing="xs">
          <Field label="URL" value={p.url} mono />
          <Field label="Access token secret" value={`${p.accessTokenSecret}${p.secretSet ? '' : ' (not set)'}`} mono />
          <Field label="Test consumer" value={p.testConsumer ?? '—'} />
          <Field label="Last sync" value={p.lastSync ? `${time(p.lastSync)} (${ago(p.lastSync)}${p.connectedBy ? `, ${p.connectedBy.toLowerCase()}` : ''})` : 'never'} />
          <Field label="Next attempt" value={time(p.nextAttempt)} />
          <Field label="Offer revision" value={short(p.offeredRevision)} mono />
        </SimpleGrid>
        {p.lastError && (
          <Alert color="red" title="Last error" data-testid="provider-error">
            <Text size="sm">{p.lastError}</Text>
          </Alert>
        )}
        {p.waitingChange && (
          <Alert color="yellow" title="A change waits for review">
            <Text size="sm">
              Branch <Code data-testid="waiting-branch">{p.waitingChange.branch}</Code> (commit <Code>{short(p.waitingChange.commit)}</Code>, provider revision {short(p.waitingChange.revision)}): merge it to take these versions.
            </Text>
          </Alert>
        )}
        {p.preparing && <Text size="sm">Preparing: {p.preparing}</Text>}
        {p.offered.length > 0 && (
          <Text size="sm">
            Offers:{' '}
            {p.offered.map((v) => (
              <Badge key={v.service} variant="light" tt="none" mr={4}>
                {v.service} {v.version}
              </Badge>
            ))}
          </Text>
        )}
        {p.pending.length > 0 && (
          <Text size="sm">
            Taking it would desire:{' '}
            {p.pending.map((v) => (
              <Badge key={v.service} variant="light" color="orange" tt="none" mr={4}>
                {v.service} {v.version}
              </Badge>
            ))}
          </Text>
        )}
        {p.undeclared.length > 0 && (
          <Text size="sm" c="orange">
            Offered but not declared here (add <code>services/&lt;name&gt;.yaml</code>): {p.undeclared.join(', ')}
          </Text>
        )}
        {p.lastTakenCommit && (
          <Text size="sm" c="dimmed">
            Last taken by commit <Code>{short(p.lastTakenCommit)}</Code>
          </Text>
        )}
        {p.upload && (
          <Text size="sm" c={p.upload.lastError ? 'red' : 'dimmed'}>
            Upload: {p.upload.statesSent} states and {p.upload.faultsSent} fault reports sent, last round {time(p.upload.lastUpload)}
            {p.upload.lastError && ` (failed: ${p.upload.lastError})`}
          </Text>
        )}
      </Stack>
    </Card>
  );
}

function Field({ label, value, mono }: { label: string; value: string; mono?: boolean }) {
  return (
    <div>
      <Text size="xs" c="dimmed">
        {label}
      </Text>
      <Text size="sm" ff={mono ? 'monospace' : undefined} style={{ wordBreak: 'break-all' }}>
        {value}
      </Text>
    </div>
  );
}

/** The form of an entry; "Review" opens the commit dialog with its diff. */
function ProviderForm({ entry, isNew, secrets, onReview }: { entry: ProviderEntry; isNew: boolean; secrets: string[]; onReview: (entry: ProviderEntry) => void }) {
  const [value, setValue] = useState(entry);
  const trimmed = { ...value, provider: value.provider.trim(), url: value.url.trim(), accessTokenSecret: value.accessTokenSecret.trim(), testConsumer: value.testConsumer?.trim() || null, pinnedPublicKey: value.pinnedPublicKey?.trim() || null };
  const secretChoices = secrets.includes(value.accessTokenSecret) || !value.accessTokenSecret ? secrets : [...secrets, value.accessTokenSecret];
  return (
    <Stack>
      {isNew && <TextInput label="Provider (its distribution name)" value={value.provider} onChange={(e) => setValue({ ...value, provider: e.currentTarget.value })} data-autofocus />}
      <TextInput label="URL" placeholder="https://jetto.example.com/graphql" value={value.url} onChange={(e) => setValue({ ...value, url: e.currentTarget.value })} />
      <Select
        label="Access token secret"
        description="A secret set on the Secrets page"
        data={secretChoices}
        value={value.accessTokenSecret || null}
        onChange={(name) => setValue({ ...value, accessTokenSecret: name ?? '' })}
        searchable
      />
      <Select
        label="When it offers other versions"
        data={[
          { value: 'OFF', label: 'off: show them, take them by hand' },
          { value: 'COMMIT', label: 'commit: take them at once' },
          { value: 'PULL_REQUEST', label: 'pullRequest: push a branch for review' },
        ]}
        value={value.autoUpdate}
        onChange={(mode) => mode && setValue({ ...value, autoUpdate: mode as AutoUpdate })}
        allowDeselect={false}
      />
      <TextInput label="Test consumer" description="Only take what this consumer of the provider marked tested" value={value.testConsumer ?? ''} onChange={(e) => setValue({ ...value, testConsumer: e.currentTarget.value })} />
      <TextInput
        label="Pinned public key"
        description="For a provider with a self-signed certificate: the sha256//… pin it prints at start; empty trusts the system's authorities"
        placeholder="sha256//…"
        value={value.pinnedPublicKey ?? ''}
        onChange={(e) => setValue({ ...value, pinnedPublicKey: e.currentTarget.value })}
      />
      <Switch label="Upload states and fault reports to it" checked={value.uploadState} onChange={(e) => setValue({ ...value, uploadState: e.currentTarget.checked })} />
      <Group justify="flex-end">
        <Button onClick={() => onReview(trimmed)} disabled={!trimmed.provider || !trimmed.url || !trimmed.accessTokenSecret}>
          Review
        </Button>
      </Group>
    </Stack>
  );
}
