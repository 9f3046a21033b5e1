// Several operations open at once, each tab with its own operation and variables, kept in
// localStorage across reloads.

import { button, element, load, loadJson, save } from "./store.js";

const KEY = "roster.console.tabs";
/** Where earlier versions kept their one operation. */
const OLD_QUERY = "roster.console.query";
const OLD_VARIABLES = "roster.console.variables";

export class Tabs {
  /** `onSwitch(tab)` loads a tab into the editors. */
  constructor(bar, addButton, welcome, onSwitch) {
    this.bar = bar;
    this.onSwitch = onSwitch;
    this.welcome = welcome;
    const saved = loadJson(KEY, null);
    if (saved && Array.isArray(saved.tabs) && saved.tabs.length) {
      this.tabs = saved.tabs;
      this.active = saved.tabs.some((t) => t.id === saved.active) ? saved.active : saved.tabs[0].id;
    } else {
      const first = this.make(load(OLD_QUERY) || welcome, load(OLD_VARIABLES) || "");
      this.tabs = [first];
      this.active = first.id;
    }
    addButton.addEventListener("click", () => this.add());
    this.render();
  }

  make(query, variables) {
    return { id: `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`, query, variables };
  }

  current() {
    return this.tabs.find((t) => t.id === this.active);
  }

  /** Keeps the current tab's text as it is edited. */
  update(changes) {
    Object.assign(this.current(), changes);
    this.persist();
    this.render();
  }

  add(query = "{\n  \n}\n", variables = "") {
    const tab = this.make(query, variables);
    this.tabs.push(tab);
    this.switchTo(tab.id);
  }

  close(id) {
    if (this.tabs.length === 1) return;
    const index = this.tabs.findIndex((t) => t.id === id);
    this.tabs.splice(index, 1);
    if (this.active === id) this.switchTo(this.tabs[Math.max(0, index - 1)].id);
    else {
      this.persist();
      this.render();
    }
  }

  switchTo(id) {
    this.active = id;
    this.persist();
    this.render();
    this.onSwitch(this.current());
  }

  persist() {
    save(KEY, { tabs: this.tabs, active: this.active });
  }

  /** A tab's title: its first operation's name, else its kind, else its number. */
  title(tab, index) {
    const named = /\b(query|mutation|subscription)\s+([A-Za-z_][A-Za-z0-9_]*)/.exec(tab.query.replace(/#.*$/gm, ""));
    if (named) return named[2];
    const kind = /^\s*(mutation|subscription)\b/m.exec(tab.query.replace(/#.*$/gm, ""));
    return kind ? `${kind[1]} ${index + 1}` : `Tab ${index + 1}`;
  }

  render() {
    this.bar.replaceChildren(
      ...this.tabs.map((tab, index) => {
        const item = element("div", "tab");
        item.setAttribute("role", "presentation");
        const pick = button("tab-title", this.title(tab, index), () => this.switchTo(tab.id));
        pick.setAttribute("role", "tab");
        pick.setAttribute("aria-selected", String(tab.id === this.active));
        item.append(pick);
        if (this.tabs.length > 1) {
          const shut = button("tab-close", "×", () => this.close(tab.id));
          shut.title = "Close this tab";
          shut.setAttribute("aria-label", `Close ${this.title(tab, index)}`);
          item.append(shut);
        }
        return item;
      }),
    );
  }
}
