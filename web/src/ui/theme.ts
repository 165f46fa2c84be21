// Dark and light themes: the stored choice, else the system's preference.

import { prefs } from "../state/prefs";

type Theme = "dark" | "light";

function apply(t: Theme): void {
  document.documentElement.dataset.theme = t;
  const btn = document.getElementById("theme");
  if (btn) {
    btn.textContent = t === "dark" ? "☀ Light" : "☾ Dark";
    btn.setAttribute("aria-label", `Switch to the ${t === "dark" ? "light" : "dark"} theme`);
  }
}

export function initTheme(): void {
  const stored = prefs.theme();
  const system: Theme = matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  apply(stored === "dark" || stored === "light" ? stored : system);
  document.getElementById("theme")?.addEventListener("click", () => {
    const next: Theme = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    prefs.setTheme(next);
    apply(next);
  });
}
