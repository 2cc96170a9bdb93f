// Every page starts here: a token from the fragment or this tab's session, else the sign-in
// form. The form is a real <form> (Enter submits) with a password field, so the token is
// neither shown on a wall screen nor kept by the browser's autofill history.

import { byId } from "./dom";
import { t, translateStatic } from "./i18n";
import { forgetToken, keepToken, takeToken } from "./session";
import { unlockSound } from "./sound";

/** Resolve with a token: the one this tab holds, or one the user types in. */
export function signIn(error?: string): Promise<string> {
  const form = byId<HTMLFormElement>("signin");
  const app = byId("app");
  const held = error === undefined ? takeToken() : null;
  if (held !== null) {
    form.hidden = true;
    app.hidden = false;
    return Promise.resolve(held);
  }
  forgetToken();
  translateStatic(form);
  const message = byId("signin-error");
  message.textContent = error ?? "";
  form.hidden = false;
  app.hidden = true;
  const input = byId<HTMLInputElement>("signin-token");
  input.value = "";
  input.focus();
  return new Promise((resolve) => {
    form.onsubmit = (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (token === "") return;
      unlockSound();
      keepToken(token);
      input.value = "";
      form.hidden = true;
      app.hidden = false;
      resolve(token);
    };
  });
}

/** Forget the token and load the page afresh at the sign-in form. */
export function signOut(): void {
  forgetToken();
  location.reload();
}

export function refusedMessage(): string {
  return t("signin.bad");
}
