// The API key form and the "Forget key" button. The form opens when a call
// is refused for want of a (valid) key, with the server's reason. A key is
// tried (ListServices) before it is kept, so a wrong one is refused in the
// form; a good one is kept and the page reloads, which reopens the view the
// URL holds with every call sending the key.

import { ConnectError } from "@connectrpc/connect";
import { client } from "../api/client";
import { bearer, forgetKey, storedKey, storeKey } from "../api/key";

function $<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

export class KeyDialog {
  private readonly dialog = $<HTMLDialogElement>("key-dialog");
  private readonly form = $<HTMLFormElement>("key-form");
  private readonly input = $<HTMLInputElement>("api-key");
  private readonly submit = $<HTMLButtonElement>("api-key-submit");
  private readonly error = $<HTMLElement>("api-key-error");
  private readonly forget = $<HTMLButtonElement>("forget-key");

  constructor() {
    this.showForget();
    this.forget.addEventListener("click", () => {
      forgetKey();
      location.reload();
    });
    // Handled here: the CSP (form-action 'none') forbids a real submission.
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.tryKey();
    });
    // Escape would leave a page that can show nothing without a key.
    this.dialog.addEventListener("cancel", (e) => e.preventDefault());
  }

  /** Asks for a key; `message` is the server's reason. */
  show(message: string): void {
    this.showForget();
    // Already asking: what it says (a refusal of the key tried) stays.
    if (this.dialog.open) return;
    this.setError(message);
    this.dialog.showModal();
    this.input.focus();
  }

  private showForget(): void {
    this.forget.hidden = storedKey() === null;
  }

  private setError(message: string): void {
    this.error.textContent = message;
    this.error.hidden = !message;
  }

  private async tryKey(): Promise<void> {
    const key = this.input.value.trim();
    if (!key) return this.setError("Enter an API key.");
    this.submit.disabled = true;
    try {
      await client.listServices({}, { headers: { authorization: bearer(key) } });
      storeKey(key);
      location.reload();
    } catch (e) {
      this.setError(ConnectError.from(e).rawMessage);
      this.input.select();
      this.submit.disabled = false;
    }
  }
}
