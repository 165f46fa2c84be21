// Keyboard: space pauses/resumes, `/` focuses the search, arrows move the
// selection, Enter expands it. Keys typed into a field stay with the field.

export interface KeyActions {
  pauseOrResume(): void;
  focusSearch(): void;
  moveSelection(delta: number): void;
  toggleSelected(): void;
}

function typing(t: EventTarget | null): boolean {
  if (!(t instanceof HTMLElement)) return false;
  return t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName);
}

export function bindKeys(a: KeyActions): void {
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    // A focused button or link already acts on space and Enter itself.
    const onControl = e.target instanceof HTMLButtonElement || e.target instanceof HTMLAnchorElement;
    switch (e.key) {
      case " ":
        if (onControl) return;
        a.pauseOrResume();
        break;
      case "/":
        a.focusSearch();
        break;
      case "ArrowDown":
        a.moveSelection(1);
        break;
      case "ArrowUp":
        a.moveSelection(-1);
        break;
      case "Enter":
        if (onControl) return;
        a.toggleSelected();
        break;
      default:
        return;
    }
    e.preventDefault();
  });
}
