//! Every edit of the state repo goes through this dialog: it shows the diff the commit
//! will make, asks for a comment (the commit message), commits on the revision the page
//! loaded, and then shows the commit made. When the branch moved meanwhile the server
//! refuses with `STALE`: the dialog says so and offers "Reload and re-apply" (the page
//! reloads and applies the same changes on the new tip), never a silent overwrite. Under
//! a `pullRequest` policy the commit goes to a branch of its own: the dialog then says
//! it is proposed on that branch and not yet on the followed one.
import { useEffect, useRef, useState } from 'react';
import { Alert, Box, Button, Code, Group, Modal, Stack, Text, Textarea } from '@mantine/core';
import { Link } from 'react-router';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { describe } from '../api/client';
import { graphql } from '../gql';
import type { FileDiff } from '../lib/diff';
import { short } from '../lib/format';
import { branchQuery, noteCommitted } from '../lib/revision';

/** What the dialog shows of the commit an edit made. */
export const MadeCommit = graphql(`
  fragment MadeCommit on StateRevision {
    id
    proposedBranch
    summary
    author {
      name
      email
    }
  }
`);

/** The commit the server made. */
export interface Made {
  id: string;
  /** The branch the commit was proposed on, when a policy sends edits to review. */
  proposedBranch?: string | null;
  summary: string;
  author: { name: string; email: string };
}

/** An edit ready to commit. */
export interface Edit {
  title: string;
  diff: FileDiff[];
  defaultComment?: string;
  /** Makes the commit on `expectedRevision` with `comment` as message. */
  commit: (comment: string, expectedRevision: string) => Promise<Made>;
  /** Whether an empty comment is allowed (the server writes one). */
  commentOptional?: boolean;
}

export function CommitDialog({
  edit,
  revision,
  onClose,
  onCommitted,
  onReapply,
}: {
  edit: Edit | null;
  revision: string | null | undefined;
  onClose: () => void;
  onCommitted: (made: Made) => void;
  onReapply: () => void;
}) {
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [made, setMade] = useState<Made | null>(null);
  const branch = useQuery({ ...branchQuery, enabled: made?.proposedBranch != null });

  const open = useRef(false);
  useEffect(() => {
    // A new edit starts from its default comment; a re-applied one keeps what was typed.
    if (!open.current || !edit) setComment(edit?.defaultComment ?? '');
    open.current = edit != null;
    setError(null);
    setMade(null);
  }, [edit]);

  const stale = describe(error).code === 'STALE';
  const empty = edit?.diff.every((f) => f.lines.length === 0) ?? true;

  async function submit() {
    if (!edit || !revision) return;
    setBusy(true);
    setError(null);
    try {
      const result = await edit.commit(comment.trim(), revision);
      // A commit proposed on a branch of its own leaves the followed branch where it was.
      if (!result.proposedBranch) noteCommitted(revision, result.id);
      setMade(result);
      onCommitted(result);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal opened={edit != null} onClose={onClose} title={edit?.title} size="lg">
      {edit && (
        <Stack>
          {made?.proposedBranch ? (
            <Alert color="blue" title="Proposed for review" data-testid="proposed">
              <Text size="sm">
                Proposed as branch <Code data-testid="proposed-branch">{made.proposedBranch}</Code> (commit <Code data-testid="commit-id">{short(made.id)}</Code>), not yet on{' '}
                <b>{branch.data ?? 'the followed branch'}</b>: it takes effect once someone merges it.
              </Text>
              <Text size="sm" mt="xs">
                <Link to="/proposed">See what merging it would do</Link>
              </Text>
            </Alert>
          ) : made ? (
            <Alert color="teal" title="Committed">
              <Text size="sm">
                Commit <Code data-testid="commit-id">{short(made.id)}</Code> by {made.author.name}: {made.summary}
              </Text>
              <Text size="sm" mt="xs">
                <Link to="/desired/developer?tab=history">See the history</Link>
              </Text>
            </Alert>
          ) : (
            <>
              <Text size="sm" c="dimmed">
                On revision <Code>{short(revision)}</Code>, this commit changes:
              </Text>
              {edit.diff.map((file) => (
                <Box key={file.file}>
                  <Text size="sm" fw={600} ff="monospace">
                    {file.file}
                  </Text>
                  <Box component="pre" data-testid="diff" m={0} p="xs" style={{ overflowX: 'auto', background: 'var(--mantine-color-default-hover)', borderRadius: 4 }}>
                    {file.lines.length === 0 ? (
                      <Text span c="dimmed">
                        (no change)
                      </Text>
                    ) : (
                      file.lines.map((line, i) => (
                        <Text key={i} span ff="monospace" size="sm" display="block" c={line.kind === '+' ? 'teal' : line.kind === '-' ? 'red' : 'dimmed'}>
                          {line.kind} {line.text}
                        </Text>
                      ))
                    )}
                  </Box>
                </Box>
              ))}
              <Textarea
                label="Comment (the commit message)"
                value={comment}
                onChange={(e) => setComment(e.currentTarget.value)}
                autosize
                minRows={2}
                required={!edit.commentOptional}
                data-autofocus
              />
              {error != null &&
                (stale ? (
                  <Alert color="orange" title="The branch moved" role="alert">
                    <Text size="sm">{describe(error).message}</Text>
                    <Text size="sm">Someone committed since this page loaded; nothing was written.</Text>
                    <Button mt="sm" size="xs" onClick={onReapply}>
                      Reload and re-apply
                    </Button>
                  </Alert>
                ) : (
                  <Alert color="red" title="Not committed" role="alert">
                    {describe(error).message} <code>({describe(error).code})</code>
                  </Alert>
                ))}
            </>
          )}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              {made ? 'Close' : 'Cancel'}
            </Button>
            {!made && (
              <Button onClick={submit} loading={busy} disabled={empty || (!edit.commentOptional && !comment.trim()) || !revision}>
                Commit
              </Button>
            )}
          </Group>
        </Stack>
      )}
    </Modal>
  );
}

/**
 * The dialog of a settings page whose query loads the tip it edits on (`data.tip`):
 * "reload and re-apply" reads the page again, a commit invalidates `queryKey`.
 */
export function PageCommitDialog({
  edit,
  onClose,
  query,
  queryKey,
}: {
  edit: Edit | null;
  onClose: () => void;
  query: { data?: { tip: string | null }; refetch: () => Promise<unknown> };
  queryKey: string[];
}) {
  const client = useQueryClient();
  return (
    <CommitDialog
      edit={edit}
      revision={query.data?.tip}
      onClose={onClose}
      onReapply={async () => {
        await query.refetch();
      }}
      onCommitted={() => void client.invalidateQueries({ queryKey })}
    />
  );
}
