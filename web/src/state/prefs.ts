// Choices remembered across visits. localStorage may be unavailable (private
// modes, disabled storage): then nothing is remembered and nothing breaks.

function get(key: string): string | null {
  try {
    return localStorage.getItem("taillight." + key);
  } catch {
    return null;
  }
}

function set(key: string, value: string): void {
  try {
    localStorage.setItem("taillight." + key, value);
  } catch {
    /* not remembered */
  }
}

export const prefs = {
  service: () => get("service"),
  setService: (s: string) => set("service", s),
  theme: () => get("theme"),
  setTheme: (t: string) => set("theme", t),
};
