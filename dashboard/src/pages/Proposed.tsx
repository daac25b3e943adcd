//! Proposed edits: the branches `policy.yaml` sent dashboard and API edits to, waiting for
//! a person to merge them, each with what merging it would do — the server's
//! `plan(base, head)` of the edit over the commit it was made on, in sentences: version
//! changes, builds needed, instances that would update, the rollout wave a new client
//! version starts with, known-bad versions desired again and validation problems.
import { Alert, Badge, Button, Card, Code, CopyButton, Group, List, Stack, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { graphql } from '../gql';
import type { ProposedEditsQuery } from '../gql/graphql';
import { request } from '../api/client';
import { Problem } from '../components/Problem';
import { short, time } from '../lib/format';
import { summarize } from '../lib/plan';

const ProposedEdits = graphql(`
  query ProposedEdits {
    status {
      stateRepo {
        branch
        tip
        proposedEdits {
          branch
          commit {
            id
            parents
            summary
            time
            author {
              name
              email
            }
          }
        }
      }
    }
  }
`);

const EditPlan = graphql(`
  query EditPlan($base: String!, $head: String!) {
    plan(base: $base, head: $head) {
      valid
      markdown
      commonSettingsChanged
      unknown
      problems {
        path
        line
        column
        message
      }
      baseProblems {
        path
        line
        column
        message
      }
      profiles {
        profile
        added
        removed
      }
      services {
        service
        change
        renamedFrom
        developer {
          from
          to
        }
        client {
          from
          to
        }
        developerImage
        clientImage
        consumers
        instances {
          role
          instances
        }
        knownBad {
          version
          reason
        }
        profilesJoined
        profilesLeft
        settingsChanged
        waves
      }
    }
  }
`);

type Proposal = ProposedEditsQuery['status']['stateRepo']['proposedEdits'][number];

/** What merging one proposal would do. */
function PlanOf({ base, head }: { base: string; head: string }) {
  const { data, error } = useQuery({ queryKey: ['proposed', 'plan', base, head], queryFn: () => request(EditPlan, { base, head }) });
  if (error) return <Problem error={error} />;
  if (!data) return <Text c="dimmed">Planning…</Text>;
  const plan = summarize(data.plan);
  return (
    <Stack gap="xs" data-testid="plan">
      <Group justify="space-between">
        <Text fw={600} c={plan.valid ? undefined : 'red'} data-testid="plan-headline">
          {plan.headline}
        </Text>
        <CopyButton value={data.plan.markdown}>
          {({ copied, copy }) => (
            <Button size="compact-xs" variant="default" onClick={copy}>
              {copied ? 'Copied' : 'Copy as Markdown'}
            </Button>
          )}
        </CopyButton>
      </Group>
      {plan.problems.length > 0 && (
        <Alert color="red" title="Validation problems" role="alert">
          {plan.problems.map((p) => (
            <Text key={p} size="sm" ff="monospace">
              {p}
            </Text>
          ))}
        </Alert>
      )}
      {plan.warnings.length > 0 && (
        <Alert color="orange" title="Warnings" data-testid="plan-warnings">
          {plan.warnings.map((w) => (
            <Text key={w} size="sm">
              {w}
            </Text>
          ))}
        </Alert>
      )}
      {plan.services.map((s) => (
        <div key={s.service} data-plan-service={s.service}>
          <Group gap="xs">
            <Text fw={600} size="sm">
              {s.service}
            </Text>
            {s.change && (
              <Badge size="sm" variant="light" tt="none">
                {s.change}
              </Badge>
            )}
            {s.builds && (
              <Badge size="sm" variant="light" color="blue">
                build
              </Badge>
            )}
          </Group>
          <List size="sm" spacing={0}>
            {s.lines.map((line) => (
              <List.Item key={line}>{line}</List.Item>
            ))}
          </List>
        </div>
      ))}
      {plan.notes.map((n) => (
        <Text key={n} size="sm" c="dimmed">
          {n}
        </Text>
      ))}
    </Stack>
  );
}

function ProposalCard({ proposal, branch, tip }: { proposal: Proposal; branch: string; tip: string | null | undefined }) {
  const { commit } = proposal;
  // The edit's own change: over the commit it was made on (a plan compares two trees,
  // so planning it over a tip that moved since would also undo the commits after).
  const base = commit.parents[0] ?? tip;
  return (
    <Card withBorder data-proposal={proposal.branch}>
      <Stack gap="xs">
        <Group justify="space-between">
          <Text fw={600}>{commit.summary}</Text>
          <Text size="sm" c="dimmed">
            {commit.author.name}, {time(commit.time)}
          </Text>
        </Group>
        <Text size="sm">
          Branch <Code>{proposal.branch}</Code>, commit <Code>{short(commit.id)}</Code>, not yet on <b>{branch}</b>.{' '}
          {base && base === tip ? (
            <>Made on its tip.</>
          ) : (
            <>
              Made on <Code>{short(base)}</Code>; {branch} has moved since (to <Code>{short(tip)}</Code>): merging applies this change on top, or conflicts.
            </>
          )}
        </Text>
        {base ? <PlanOf base={base} head={commit.id} /> : <Text c="dimmed">No commit to compare with.</Text>}
      </Stack>
    </Card>
  );
}

export default function ProposedPage() {
  const { data, error } = useQuery({ queryKey: ['proposed', 'list'], queryFn: () => request(ProposedEdits), refetchInterval: 10_000 });
  if (error) return <Problem error={error} />;
  if (!data) return <Text c="dimmed">Loading…</Text>;
  const repo = data.status.stateRepo;
  return (
    <Stack>
      <Title order={2}>Proposed edits</Title>
      <Text size="sm" c="dimmed">
        Edits <Code>policy.yaml</Code> sends to review: each is a branch waiting for someone to merge it into {repo.branch} in your Git host.
      </Text>
      {repo.proposedEdits.length === 0 && <Text c="dimmed">No edit is waiting.</Text>}
      {repo.proposedEdits.map((p) => (
        <ProposalCard key={p.branch} proposal={p} branch={repo.branch} tip={repo.tip} />
      ))}
    </Stack>
  );
}
