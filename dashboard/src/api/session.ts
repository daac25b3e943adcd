//! The login session: the bearer token kept in localStorage (so a reload keeps you
//! logged in), its expiry, and what happens when it ends (back to the login page, with
//! the page you were on remembered).

const KEY = 'vupdate.session';

/** What is kept of a session. */
export interface Stored {
  token: string;
  account: string;
  expiresAt: string;
}

type Listener = () => void;
const listeners = new Set<Listener>();

function read(): Stored | null {
  try {
    const value = localStorage.getItem(KEY);
    if (!value) return null;
    const stored = JSON.parse(value) as Stored;
    if (new Date(stored.expiresAt).getTime() <= Date.now()) return null;
    return stored;
  } catch {
    return null;
  }
}

/** The current session and its changes. */
export const session = {
  /** The session, or null when logged out or expired. */
  current: read,
  /** The bearer token, or null. */
  token(): string | null {
    return read()?.token ?? null;
  },
  /** Keeps a new session. */
  start(stored: Stored) {
    localStorage.setItem(KEY, JSON.stringify(stored));
    listeners.forEach((l) => l());
  },
  /** Logs out. */
  end() {
    localStorage.removeItem(KEY);
    listeners.forEach((l) => l());
  },
  /** The server refused the token: log out and remember where we were. */
  expired() {
    if (!read() && !localStorage.getItem(KEY)) return;
    const here = window.location.pathname + window.location.search;
    if (!here.startsWith('/login')) sessionStorage.setItem('vupdate.next', here);
    sessionStorage.setItem('vupdate.expired', '1');
    session.end();
  },
  /** Subscribes to changes; returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};
