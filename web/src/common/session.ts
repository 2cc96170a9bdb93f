// Where a page's token lives: typed in, or handed over in the URL fragment (#token=…), which
// browsers never send to a server; it is moved into sessionStorage (this tab only, gone when
// the tab closes; never localStorage, which other tabs and later visits could read) and the
// fragment is wiped from the address bar and the history at once. The token is never logged.

const TOKEN_KEY = "dispatch.token";

/** Take a token from the fragment if there is one; return the token of this tab, or null. */
export function takeToken(): string | null {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const given = fragment.get("token");
  if (given !== null) {
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(null, "", location.pathname + (rest ? `#${rest}` : ""));
    if (given.trim() !== "") sessionStorage.setItem(TOKEN_KEY, given.trim());
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function keepToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}
