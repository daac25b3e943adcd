//! The branch tip a page edits on: read once when the page loads (and on "reload"), so
//! every commit names the revision the user saw.
import { graphql } from '../gql';
import { request } from '../api/client';

const Tip = graphql(`
  query Tip {
    status {
      stateRepo {
        tip
        commit
        branch
      }
    }
  }
`);

/**
 * The last commit made from this page on the followed branch, and the tip it was made on.
 * Right after a commit the server's `status` may still name that tip (its watcher has not
 * read the branch yet); an edit based on it would then be refused as stale, or undo what
 * the commit did.
 */
let lastMade: { parent: string; commit: string } | null = null;

/** Records that `commit` was made on `parent`, the tip the page had loaded. */
export function noteCommitted(parent: string, commit: string): void {
  lastMade = { parent, commit };
}

/** The followed branch's name (it does not change while the server runs). */
export const branchQuery = {
  queryKey: ['state-branch'],
  queryFn: async () => (await request(Tip)).status.stateRepo.branch,
  staleTime: Infinity,
};

/** The tip of the followed branch (falling back to the commit in force). */
export async function loadTip(): Promise<string | null> {
  const { status } = await request(Tip);
  const tip = status.stateRepo.tip ?? status.stateRepo.commit ?? null;
  return tip !== null && lastMade?.parent === tip ? lastMade.commit : tip;
}
