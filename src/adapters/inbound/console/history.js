// The operations run, newest first, kept in localStorage; a click on one loads it back and
// runs it again.

import { button, element, loadJson, save } from "./store.js";

const KEY = "roster.console.history";
const KEEP = 50;

export class History {
  /** `onRerun(entry)` runs an entry again. */
  constructor(list, clearButton, onRerun) {
    this.list = list;
    this.onRerun = onRerun;
    this.entries = loadJson(KEY, []);
    if (!Array.isArray(this.entries)) this.entries = [];
    clearButton.addEventListener("click", () => {
      this.entries = [];
      save(KEY, this.entries);
      this.render();
    });
    this.render();
  }

  /** Records a run: `{ query, variables, headers, label }`; the same one twice is kept once. */
  add(entry) {
    const same = (e) => e.query === entry.query && e.variables === entry.variables;
    this.entries = [{ ...entry, at: new Date().toISOString() }, ...this.entries.filter((e) => !same(e))].slice(0, KEEP);
    save(KEY, this.entries);
    this.render();
  }

  render() {
    if (!this.entries.length) {
      this.list.replaceChildren(element("li", "empty", "Operations you run appear here."));
      return;
    }
    this.list.replaceChildren(
      ...this.entries.map((entry) => {
        const item = element("li");
        const run = button("link history-entry", entry.label, () => this.onRerun(entry));
        run.title = "Load this operation and run it again";
        const when = element("time", "", new Date(entry.at).toLocaleString());
        const preview = element("pre", "preview", entry.query.trim().split("\n").slice(0, 3).join("\n"));
        item.append(run, when, preview);
        return item;
      }),
    );
  }
}
