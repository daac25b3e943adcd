//! Build settings, common and per service: developer builds (sources, environment,
//! macro values, private files) and client builds (settings repositories, the same
//! lists), shown as written in the state repo and edited as a commit.
import { useEffect, useState } from 'react';
import { Alert, Button, Card, Code, Group, Select, SimpleGrid, Stack, Text, Textarea, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { graphql } from '../gql';
import type { BuildSettingsQuery } from '../gql/graphql';
import { request } from '../api/client';
import { useAllowed } from '../auth';
import { PageCommitDialog, type Edit } from '../components/CommitDialog';
import { Problem } from '../components/Problem';
import { short } from '../lib/format';
import { loadTip } from '../lib/revision';
import { pairsText, parsePairs, parsePaths, parseRepos, reposText, textDiff, type SettingsText } from '../lib/settings';

const Settings = graphql(`
  query BuildSettings($service: String, $revision: String) {
    buildSettings(service: $service, merged: false, revision: $revision) {
      service
      developer {
        sources {
          name
          url
          branch
          subDirectory
          cloneSubmodules
        }
        environment {
          name
          value
        }
        macroValues {
          name
          value
        }
        privateFiles
      }
      client {
        settings {
          name
          url
          branch
          subDirectory
          cloneSubmodules
        }
        environment {
          name
          value
        }
        macroValues {
          name
          value
        }
        privateFiles
      }
    }
    services(revision: $revision)
  }
`);

const Save = graphql(`
  mutation SaveBuildSettings($service: String!, $developer: DeveloperSettingsInput, $client: ClientSettingsInput, $comment: String!, $expectedRevision: String!) {
    setBuildSettings(service: $service, developer: $developer, client: $client, comment: $comment, expectedRevision: $expectedRevision) {
      ...MadeCommit
    }
  }
`);

type Loaded = BuildSettingsQuery['buildSettings'];

function toText(part: Loaded['developer'] | Loaded['client'] | null | undefined, repos: 'sources' | 'settings'): SettingsText | null {
  if (!part) return null;
  const list = repos === 'sources' && 'sources' in part ? part.sources : 'settings' in part ? part.settings : [];
  return { repositories: reposText(list), environment: pairsText(part.environment), macroValues: pairsText(part.macroValues), privateFiles: part.privateFiles.join('\n') };
}

function Part({ title, repoLabel, value, onChange, readOnly }: { title: string; repoLabel: string; value: SettingsText | null; onChange: (v: SettingsText | null) => void; readOnly: boolean }) {
  return (
    <Card withBorder>
      <Group justify="space-between" mb="xs">
        <Text fw={600}>{title}</Text>
        {!readOnly &&
          (value ? (
            <Button size="compact-xs" variant="subtle" color="red" onClick={() => onChange(null)}>
              Remove
            </Button>
          ) : (
            <Button size="compact-xs" variant="subtle" onClick={() => onChange({ repositories: '', environment: '', macroValues: '', privateFiles: '' })}>
              Add
            </Button>
          ))}
      </Group>
      {value ? (
        <Stack gap="xs">
          <Textarea label={`${repoLabel} (name url branch [folder])`} value={value.repositories} onChange={(e) => onChange({ ...value, repositories: e.currentTarget.value })} autosize minRows={2} readOnly={readOnly} ff="monospace" />
          <Textarea label="Environment (NAME=value)" value={value.environment} onChange={(e) => onChange({ ...value, environment: e.currentTarget.value })} autosize minRows={2} readOnly={readOnly} />
          <Textarea label="Macro values (name=value)" value={value.macroValues} onChange={(e) => onChange({ ...value, macroValues: e.currentTarget.value })} autosize minRows={2} readOnly={readOnly} />
          <Textarea label="Private files (a path a line)" value={value.privateFiles} onChange={(e) => onChange({ ...value, privateFiles: e.currentTarget.value })} autosize minRows={1} readOnly={readOnly} />
        </Stack>
      ) : (
        <Text size="sm" c="dimmed">
          None.
        </Text>
      )}
    </Card>
  );
}

export default function BuildSettingsPage() {
  // Only administrators may change settings (the server refuses others).
  const editor = useAllowed('ADMINISTRATOR');
  const [service, setService] = useState<string>('');
  const query = useQuery({
    queryKey: ['build-settings', service],
    queryFn: async () => {
      const tip = await loadTip();
      return { tip, ...(await request(Settings, { service: service || null, revision: tip })) };
    },
    staleTime: Infinity,
    refetchOnWindowFocus: false,
  });
  const [developer, setDeveloper] = useState<SettingsText | null>(null);
  const [clientPart, setClientPart] = useState<SettingsText | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [edit, setEdit] = useState<Edit | null>(null);

  const loaded = query.data?.buildSettings;
  useEffect(() => {
    setDeveloper(toText(loaded?.developer, 'sources'));
    setClientPart(toText(loaded?.client, 'settings'));
    setError(null);
  }, [loaded]);

  if (query.error) return <Problem error={query.error} />;
  if (!query.data || !loaded) return <Text c="dimmed">Loading…</Text>;
  const file = service ? `services/${service}.yaml` : 'common.yaml';
  const before = { developer: toText(loaded.developer, 'sources'), client: toText(loaded.client, 'settings') };

  function review() {
    setError(null);
    try {
      const dev = developer && { sources: parseRepos(developer.repositories, 'developer sources'), environment: parsePairs(developer.environment, 'developer environment'), macroValues: parsePairs(developer.macroValues, 'developer macro values'), privateFiles: parsePaths(developer.privateFiles) };
      const cli = clientPart && { settings: parseRepos(clientPart.repositories, 'client settings'), environment: parsePairs(clientPart.environment, 'client environment'), macroValues: parsePairs(clientPart.macroValues, 'client macro values'), privateFiles: parsePaths(clientPart.privateFiles) };
      const empty: SettingsText = { repositories: '', environment: '', macroValues: '', privateFiles: '' };
      const lines = (label: string, a: SettingsText | null, b: SettingsText | null) =>
        (['repositories', 'environment', 'macroValues', 'privateFiles'] as const).flatMap((k) => textDiff(`${label}.${k}`, (a ?? empty)[k], (b ?? empty)[k]));
      setEdit({
        title: `Build settings of ${service || 'every service (common)'}`,
        diff: [{ file, lines: [...lines('developer', before.developer, developer), ...lines('client', before.client, clientPart)] }],
        commit: async (comment, expectedRevision) => (await request(Save, { service, developer: dev, client: cli, comment, expectedRevision })).setBuildSettings,
      });
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return (
    <Stack>
      <Group justify="space-between">
        <Title order={2}>Build settings</Title>
        <Select aria-label="Service" data={[{ value: '', label: 'Common (every service)' }, ...query.data.services.map((s) => ({ value: s, label: s }))]} value={service} onChange={(v) => setService(v ?? '')} allowDeselect={false} searchable w={260} />
      </Group>
      <Text size="sm" c="dimmed">
        <Code>{file}</Code> at <Code>{short(query.data.tip)}</Code>, as written (a service's own settings are merged over common's at build time).
      </Text>
      {error && (
        <Alert color="red" title="Cannot read the settings">
          {error}
        </Alert>
      )}
      <SimpleGrid cols={{ base: 1, lg: 2 }}>
        <Part title="Developer builds" repoLabel="Sources" value={developer} onChange={setDeveloper} readOnly={!editor} />
        <Part title="Client builds" repoLabel="Settings repositories" value={clientPart} onChange={setClientPart} readOnly={!editor} />
      </SimpleGrid>
      {editor && (
        <Group justify="flex-end">
          <Button variant="default" onClick={() => void query.refetch()}>
            Reload
          </Button>
          <Button onClick={review}>Review and commit</Button>
        </Group>
      )}
      <PageCommitDialog edit={edit} onClose={() => setEdit(null)} query={query} queryKey={['build-settings']} />
    </Stack>
  );
}
