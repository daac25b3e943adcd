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

/** The tip of the followed branch (falling back to the commit in force). */
export async function loadTip(): Promise<string | null> {
  const { status } = await request(Tip);
  return status.stateRepo.tip ?? status.stateRepo.commit ?? null;
}
